/**
 * Outbound webhooks: each violation (or other configured kind) is POSTed as
 * JSON to every configured URL. Never on the decision path: events arrive
 * here after the reply was released (setImmediate in the hub), the queue is
 * bounded (drop-oldest, counted) and failed deliveries are retried with
 * exponential backoff.
 *
 * A target without `kinds` gets violations only (DEFAULT_KINDS). Redirects
 * are never followed (a 3xx is a failed delivery: a redirect must not move
 * events to a URL nobody configured), the receiver's response body is never
 * read, and URLs are logged without userinfo, query or fragment (they often
 * carry secrets).
 */
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import type { HubEvent } from './hub.js';
import { toJson } from './codec.js';

export interface WebhookTarget { url: string; kinds?: string[] }

/** what a target without `kinds` receives */
export const DEFAULT_KINDS: readonly string[] = ['violation'];

/** A URL as it may appear in a log: scheme, host and path only. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

export interface WebhookOptions {
  maxQueue?: number;      // deliveries waiting, default 10000
  maxAttempts?: number;   // default 6
  baseDelayMs?: number;   // first retry after this, doubling, default 200
  maxDelayMs?: number;    // default 30000
  timeoutMs?: number;     // per attempt, default 5000
  concurrency?: number;   // deliveries in flight, default 4
}

interface Delivery { url: string; body: string; attempt: number; notBefore: number }

/**
 * fetch refuses URLs with userinfo: `https://user:pass@host/…` is sent to
 * the URL without it and an Authorization: Basic header instead.
 */
export function requestOf(url: string): { url: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  let u: URL;
  try { u = new URL(url); } catch { return { url, headers }; }
  if (!u.username && !u.password) return { url, headers };
  const cred = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  headers.authorization = 'Basic ' + Buffer.from(cred, 'utf8').toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.toString(), headers };
}

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

  /** the kinds some target wants (asked for every decided frame: a Set, not a scan of the targets) */
  private wanted = new Set<string>();
  setTargets(targets: WebhookTarget[]): void {
    this.targets = targets.slice();
    this.wanted = new Set(this.targets.flatMap((t) => (t.kinds && t.kinds.length ? t.kinds : DEFAULT_KINDS)));
  }

  get size(): number { return this.queue.length + this.inFlight; }

  wants(kind: string): boolean { return this.wanted.has(kind); }

  enqueue(ev: HubEvent): void {
    if (this.closed) return;
    let body: string | undefined;
    for (const t of this.targets) {
      const kinds = t.kinds && t.kinds.length ? t.kinds : DEFAULT_KINDS;
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
    const rq = requestOf(d.url);
    fetch(rq.url, { method: 'POST', headers: rq.headers, body: d.body, redirect: 'manual', signal: AbortSignal.timeout(this.o.timeoutMs) })
      .then(async (r) => {
        await r.body?.cancel().catch(() => undefined); // whatever it says, it could be large: not read
        if (r.status >= 300 && r.status < 400) throw new Error(`HTTP ${r.status}: redirects are not followed`);
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        this.metrics.webhookSent++;
      })
      .catch((e: unknown) => {
        this.metrics.webhookFailed++;
        if (d.attempt >= this.o.maxAttempts || this.closed) {
          this.metrics.webhookDropped++;
          this.log.warn({ url: redactUrl(d.url), attempts: d.attempt, err: String((e as Error)?.message).split(d.url).join(redactUrl(d.url)).split(rq.url).join(redactUrl(d.url)) }, 'webhook dropped after retries');
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
