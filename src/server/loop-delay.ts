/**
 * How late the event loop runs (GET /metrics: apb_event_loop_delay_seconds): every reply, every
 * commit hand-off and every socket write waits on it, so a stall here is a stall of every
 * controller's answers at once. A timer is due every RESOLUTION_MS (node:perf_hooks
 * monitorEventLoopDelay); each sample is how much later than due it ran. Quantiles come from the last
 * complete window of WINDOW_MS (from the current one until a first window has ended), and the
 * current window's largest delay is reported as well, so a stall shows at the next scrape.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export const RESOLUTION_MS = 5;
export const WINDOW_MS = 10_000;

export interface LoopDelayWindow { p50: number; p99: number; max: number; samples: number }

export class LoopDelay {
  private readonly h: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: LoopDelayWindow | null = null;

  constructor(windowMs = WINDOW_MS) {
    this.h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.h.enable();
    this.timer = setInterval(() => { this.last = this.current(); this.h.reset(); }, windowMs);
    this.timer.unref();
  }

  /** seconds past due: the histogram holds whole intervals (nanoseconds), the resolution included */
  private late(ns: number): number { return Math.max(0, ns / 1e9 - RESOLUTION_MS / 1000); }

  /** the window in progress */
  current(): LoopDelayWindow {
    const h = this.h;
    if (h.count === 0) return { p50: 0, p99: 0, max: 0, samples: 0 };
    return { p50: this.late(h.percentile(50)), p99: this.late(h.percentile(99)), max: this.late(h.max), samples: h.count };
  }

  /** the last complete window, or the current one before any has ended */
  window(): LoopDelayWindow { return this.last ?? this.current(); }

  stop(): void { clearInterval(this.timer); this.h.disable(); }
}
