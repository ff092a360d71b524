/**
 * Outbound webhooks: each violation (or other configured kind) is POSTed as
 * JSON to every configured URL. Never on the decision path: events arrive
 * here after the reply was released (setImmediate in the hub), the queue is
 * bounded (drop-oldest, counted) and failed deliveries are retried with
 * exponential backoff.
 */
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import type { HubEvent } from './hub.js';
import { toJson } from './codec.js';

export interface WebhookTarget { url: string; kinds?: string[] }

export interface WebhookOptions {
  maxQueue?: number;      // deliveries waiting, default 10000
  maxAttempts?: number;   // default 6
  baseDelayMs?: number;   // first retry after this, doubling, default 200
  maxDelayMs?: number;    // default 30000
  timeoutMs?: number;     // per attempt, default 5000
  concurrency?: number;   // deliveries in flight, default 4
}

interface Delivery { url: string; body: string; attempt: number; notBefore: number }

export class Webhooks {
  private targets: WebhookTarget[] = [];
  private queue: Delivery[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly o: Required<WebhookOptions>;

  constructor(private readonly metrics: Metrics, private readonly log: Logger, opts: WebhookOptions = {}) {
    this.o = { maxQueue: 10000, maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 30000, timeoutMs: 5000, concurrency: 4, ...opts };
  }

  setTargets(targets: WebhookTarget[]): void { this.targets = targets.slice(); }

  get size(): number { return this.queue.length + this.inFlight; }

  wants(kind: string): boolean {
    return this.targets.some((t) => (t.kinds && t.kinds.length ? t.kinds : ['violation']).includes(kind));
  }

  enqueue(ev: HubEvent): void {
    if (this.closed) return;
    let body: string | undefined;
    for (const t of this.targets) {
      const kinds = t.kinds && t.kinds.length ? t.kinds : ['violation'];
      if (!kinds.includes(ev.kind)) continue;
      body ??= toJson(ev);
      if (this.queue.length >= this.o.maxQueue) { this.queue.shift(); this.metrics.webhookDropped++; }
      this.queue.push({ url: t.url, body, attempt: 0, notBefore: 0 });
    }
    this.pump();
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    let next = Infinity;
    for (let i = 0; i < this.queue.length && this.inFlight < this.o.concurrency; ) {
      const d = this.queue[i]!;
      if (d.notBefore <= now) { this.queue.splice(i, 1); this.send(d); } else { next = Math.min(next, d.notBefore); i++; }
    }
    if (next !== Infinity && !this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, Math.max(1, next - now));
      this.timer.unref?.();
    }
  }

  private send(d: Delivery): void {
    this.inFlight++;
    d.attempt++;
    fetch(d.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: d.body, signal: AbortSignal.timeout(this.o.timeoutMs) })
      .then(async (r) => {
        await r.arrayBuffer().catch(() => undefined);
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        this.metrics.webhookSent++;
      })
      .catch((e: unknown) => {
        this.metrics.webhookFailed++;
        if (d.attempt >= this.o.maxAttempts || this.closed) {
          this.metrics.webhookDropped++;
          this.log.warn({ url: d.url, attempts: d.attempt, err: (e as Error).message }, 'webhook dropped after retries');
          return;
        }
        d.notBefore = Date.now() + Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (d.attempt - 1));
        if (this.queue.length >= this.o.maxQueue) { this.queue.shift(); this.metrics.webhookDropped++; }
        this.queue.push(d);
      })
      .finally(() => { this.inFlight--; this.pump(); });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}
