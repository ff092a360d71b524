/**
 * The bridge's one WebSocket to the engine, speaking the native controller
 * protocol v1 (plain MessagePack on /v1/controller, bearer token at the
 * upgrade):
 *  - messages queued within one event-loop turn leave as one batch frame
 *    (an array; the engine answers with one array in the same order);
 *  - replies are matched to messages by frame order and checked by id;
 *  - the link drops → messages marked `resend` (passages, offline uploads)
 *    go out again, first and in order, with the same ids once reconnected
 *    (the engine answers a known id with its first reply and changes
 *    nothing); the others (badges: the door has moved on) fail at once;
 *  - reconnects wait reconnectMin·2^n ms, capped at reconnectMax, each
 *    delay drawn uniformly from its upper half (jitter: many bridges
 *    restarting with the engine do not return in step);
 *  - a WebSocket ping every pingEvery ms; no pong before the next one
 *    closes the link (a hung engine or a dead route is noticed).
 * Integers beyond 32 bits (ids, ts) are sent as 64-bit integers, never floats.
 */
import type { Logger } from 'pino';
import { Packr, Unpackr } from 'msgpackr';
import { ApbError } from '../../errors.js';
import { connectWs, type WsConnection } from './ws-client.js';

// 'auto' (numbers when safe, BigInt beyond 2^53) works at run time but is missing from msgpackr's typings
const INT64 = 'auto' as unknown as 'bigint';
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: INT64 });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, int64AsType: INT64, mapsAsObjects: true });

/** at most this many messages per frame (the engine accepts 4096) */
const MAX_BATCH = 256;

export type Reply = Record<string, unknown> & { t: string };
export interface OutMessage { t: 'badge' | 'passage' | 'offline'; id: number; [k: string]: unknown }

interface Pending { msg: OutMessage; resend: boolean; resolve(r: Reply): void; reject(e: Error): void }

export interface LinkSettings { url: string; token: string; reconnectMin: number; reconnectMax: number; pingEvery: number }

export type LinkState = 'connecting' | 'up' | 'down';

/** a 64-bit-safe wire integer: msgpackr writes a JS number beyond 32 bits as a float */
const wireInt = (n: number): number | bigint => (n > 0xffffffff ? BigInt(n) : n);

export class EngineLink {
  state: LinkState = 'down';
  /** messages waiting to be sent */
  private outbox: Pending[] = [];
  /** frames sent, oldest first, awaiting their reply frame */
  private inflight: Pending[][] = [];
  private ws: WsConnection | null = null;
  private attempt = 0;
  private stopped = false;
  private flushQueued = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private awaitingPong = false;
  private readonly upHooks: (() => void)[] = [];
  private readonly downHooks: ((why: string) => void)[] = [];
  readonly counters = { connects: 0, disconnects: 0, framesOut: 0, framesIn: 0, resent: 0, badReplies: 0 };

  constructor(private readonly s: LinkSettings, private readonly log: Logger) {}

  onUp(cb: () => void): void { this.upHooks.push(cb); }
  onDown(cb: (why: string) => void): void { this.downHooks.push(cb); }
  get up(): boolean { return this.state === 'up'; }
  get queued(): number { return this.outbox.length + this.inflight.reduce((n, f) => n + f.length, 0); }

  start(): void { void this.connect(); }

  /** Sends a message; resolves with its reply (a decision, ack or error map). */
  send(msg: OutMessage, resend = false): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.stopped) { reject(new ApbError('not_ready', 'the bridge is stopping')); return; }
      if (!resend && this.state !== 'up') { reject(new ApbError('not_ready', 'the engine link is down')); return; }
      this.outbox.push({ msg, resend, resolve, reject });
      this.scheduleFlush();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    const gone = new Error('the bridge is stopping');
    for (const p of [...this.inflight.flat(), ...this.outbox]) p.reject(gone);
    this.inflight = []; this.outbox = [];
    if (ws) {
      const closed = new Promise<void>((r) => ws.onClose(() => r()));
      ws.close(1001);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    }
    this.state = 'down';
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.state = 'connecting';
    let ws: WsConnection;
    try {
      ws = await connectWs(this.s.url.replace(/\/+$/, '') + '/v1/controller', { Authorization: `Bearer ${this.s.token}` });
    } catch (e) {
      this.state = 'down';
      const err = e as ApbError;
      // a wrong token will not heal by itself: say so loudly, every time
      this.log[err.code === 'unauthorized' || this.attempt === 0 ? 'error' : 'debug']({ err: err.message }, 'engine link: cannot connect');
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) { ws.close(1001); return; }
    this.ws = ws;
    this.state = 'up';
    this.attempt = 0;
    this.counters.connects++;
    this.log.info({ url: this.s.url }, 'engine link up');
    ws.onMessage((d) => this.onFrame(d));
    ws.onPong(() => { this.awaitingPong = false; });
    ws.onClose((code, why) => this.onClosed(ws, `${code} ${why}`));
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      if (this.awaitingPong) { this.log.warn({ pingEvery: this.s.pingEvery }, 'engine link: no pong, closing'); ws.close(4000); return; }
      this.awaitingPong = true;
      ws.ping();
    }, this.s.pingEvery);
    for (const h of this.upHooks) h();
    this.scheduleFlush();
  }

  private onClosed(ws: WsConnection, why: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    if (this.pingTimer) { clearInterval(this.pingTimer); this.pingTimer = null; }
    if (this.stopped) return;
    this.state = 'down';
    this.counters.disconnects++;
    this.log.warn({ why }, 'engine link down');
    // unanswered messages: uploads and passages go out again first (same ids), badges fail now
    const keep: Pending[] = [];
    const lost = new ApbError('not_ready', `the engine link went down (${why})`);
    for (const p of [...this.inflight.flat(), ...this.outbox]) {
      if (p.resend) keep.push(p); else p.reject(lost);
    }
    this.counters.resent += this.inflight.flat().filter((p) => p.resend).length;
    this.inflight = [];
    this.outbox = keep;
    for (const h of this.downHooks) h(why);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const cap = Math.min(this.s.reconnectMax, this.s.reconnectMin * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.attempt++;
    this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.connect(); }, delay);
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => { this.flushQueued = false; this.flush(); });
  }

  private flush(): void {
    const ws = this.ws;
    if (!ws || this.state !== 'up') return;
    while (this.outbox.length) {
      const batch = this.outbox.splice(0, MAX_BATCH);
      const frame = batch.map((p) => {
        const m: Record<string, unknown> = { ...p.msg, id: wireInt(p.msg.id) };
        if (typeof m.ts === 'number') m.ts = wireInt(m.ts);
        return m;
      });
      this.inflight.push(batch);
      this.counters.framesOut++;
      ws.send(packr.pack(frame));
    }
  }

  private onFrame(data: Uint8Array): void {
    this.counters.framesIn++;
    const batch = this.inflight.shift();
    let v: unknown;
    try { v = unpackr.unpack(data); } catch { v = undefined; }
    if (!batch) { this.counters.badReplies++; this.log.warn('engine link: a reply frame nobody waits for'); return; }
    if (Array.isArray(v) && v.length === batch.length) {
      batch.forEach((p, i) => {
        const r = v[i] as Reply | undefined;
        if (!r || typeof r !== 'object' || (r.id !== undefined && String(r.id) !== String(p.msg.id))) {
          this.counters.badReplies++;
          p.reject(new ApbError('bad_frame', `reply ${i} of the frame does not answer id ${p.msg.id}`));
        } else p.resolve(r);
      });
      return;
    }
    // one error for the whole frame (bad_frame, too_large): every message gets it
    const err = v && typeof v === 'object' && !Array.isArray(v) ? (v as Reply) : { t: 'error', code: 'bad_frame', message: 'undecodable reply frame' };
    this.counters.badReplies++;
    for (const p of batch) p.resolve(err);
  }
}
