/**
 * The controller WebSocket `/v1/controller` (PROTOCOL.md). Limits, all set
 * explicitly:
 *   - FRAME_LIMIT (1 MiB): a larger frame is answered `too_large` (no id)
 *     and nothing in it is decided; frames beyond HARD_PAYLOAD_LIMIT (4 MiB)
 *     make uWS drop the connection without a close frame (the client sees
 *     1006) and without reading them into memory.
 *   - batches of more than hub.maxBatch messages are answered `too_large`.
 *   - idleTimeout 120 s with automatic pings: a dead peer is dropped.
 *   - MAX_BACKPRESSURE (1 MiB): a controller that stops reading its replies
 *     is disconnected at once (a hard close: uWS's own closeOnBackpressureLimit
 *     only stops reading, and the socket then sits on its queued replies until
 *     the idle timeout) once 1 MiB is queued for it; frames it sent before
 *     that are dropped unread. So it can neither grow the server's memory
 *     without bound nor slow the others (sends never block). It reconnects
 *     and resends; ids make the resend safe (same replies, nothing applied twice).
 *   - per-controller rate limit (token bucket, `rateLimit` msgs/s) in the hub;
 *     a frame of a controller whose bucket is empty is answered rate_limited
 *     without being decoded (its message count read from the array header);
 *     one that still sends with over half a second's worth owed is disconnected
 *     (hard close, no close frame). The debt lives in the controller's bucket,
 *     so reconnecting does not clear it.
 * The bearer token is checked at the upgrade: 401 before any frame.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import { ApbError, isApbError } from '../errors.js';
import { Auth } from './auth.js';
import type { ControllerCtx, Hub, Reply } from './hub.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import { concatArray, decodeFrame, encodeReply as encode, forgetFrame } from './codec.js';
import { statusLine } from './http-util.js';
import { AuthThrottle } from './auth-throttle.js';
import { FastFlight } from './fast-flight.js';

export const FRAME_LIMIT = 1 << 20;
export const HARD_PAYLOAD_LIMIT = 4 << 20;
export const MAX_BACKPRESSURE = 1 << 20;
export const IDLE_TIMEOUT_S = 120;

/**
 * A frame's reply waiting its turn on its socket: a fast-path frame (FastFlight) or a general one.
 * `done` once its reply is known (`reply` null: none is sent, the frame failed).
 */
interface Waiting { done: boolean; reply: Uint8Array | null; t0: number }

/**
 * Per socket. `queue`: the replies of frames still waiting for their commit, oldest first (replies
 * leave in frame order: a reply leaves once every earlier one has).
 * `out`: replies released by a commit in this turn, not yet written (see release()); not empty exactly
 * while the socket is on this turn's list. The array is the connection's own, emptied once written.
 */
interface Conn { controller: string; token: string; closed: boolean; queue: Waiting[]; out: Uint8Array[] }

export class ControllerSocket {
  private sockets = new Set<WebSocket<Conn>>();
  private perController = new Map<string, number>();
  /** sockets with released replies waiting for the end of this turn (release()) */
  private pending: WebSocket<Conn>[] = [];
  private pendingConns: Conn[] = [];
  /** the other pair of pending lists (writeReleased swaps them: no new arrays per turn) */
  private sparePending: WebSocket<Conn>[] = [];
  private spareConns: Conn[] = [];

  constructor(app: TemplatedApp, private readonly deps: { hub: Hub; auth: () => Auth; metrics: Metrics; log: Logger; accepting: () => boolean; throttle?: AuthThrottle }) {
    app.ws<Conn>('/v1/controller', {
      maxPayloadLength: HARD_PAYLOAD_LIMIT,
      idleTimeout: IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      maxBackpressure: MAX_BACKPRESSURE,
      closeOnBackpressureLimit: 1, // typed as a number in index.d.ts; truthy = close
      upgrade: (res, req, ctx) => this.upgrade(res, req, ctx),
      open: (ws) => this.open(ws),
      message: (ws, msg) => this.message(ws, msg),
      close: (ws, code, reason) => this.close(ws, code, reason),
    });
    deps.hub.onFastSettled = (f) => { if (f.ws !== null) this.flush(f.ws as WebSocket<Conn>, f.conn as Conn); };
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const key = req.getHeader('sec-websocket-key');
    const proto = req.getHeader('sec-websocket-protocol');
    const ext = req.getHeader('sec-websocket-extensions');
    const token = Auth.bearer(req.getHeader('authorization'));
    try {
      if (!this.deps.accepting()) throw new ApbError('not_ready', 'the server is shutting down');
      const check = (): ReturnType<Auth['requireController']> => this.deps.auth().requireController(token);
      const c = this.deps.throttle ? this.deps.throttle.guard(() => AuthThrottle.addressOf(res), token, check) : check();
      res.cork(() => res.upgrade<Conn>({ controller: c.id, token, closed: false, queue: [], out: [] }, key, proto, ext, context));
    } catch (e) {
      const err = isApbError(e) ? e : new ApbError('internal', String(e));
      // a wrong user-token is as much "not a controller" as a wrong one: 401 at the upgrade
      const status = err.code === 'forbidden' ? 401 : err.status;
      res.cork(() => res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json').end(JSON.stringify({ code: status === 401 ? 'unauthorized' : err.code, message: err.message }), true));
    }
  }

  private open(ws: WebSocket<Conn>): void {
    const c = ws.getUserData();
    this.sockets.add(ws);
    this.perController.set(c.controller, (this.perController.get(c.controller) ?? 0) + 1);
    this.deps.log.debug({ controller: c.controller }, 'controller connected');
  }

  private close(ws: WebSocket<Conn>, code: number, reason?: ArrayBuffer): void {
    const c = ws.getUserData();
    c.closed = true;
    if (code === 1006 && reason && reason.byteLength > 0) {
      // uWS dropped the socket itself: a frame over HARD_PAYLOAD_LIMIT ("Received too big message"), or a
      // protocol error. It sends no close frame (the peer sees 1006) and gives no hook before it: log why.
      const why = Buffer.from(reason).toString('utf8');
      if (/too big/i.test(why)) this.deps.metrics.inc(this.deps.metrics.errors, 'too_large');
      this.deps.log.warn({ controller: c.controller, reason: why }, 'controller socket dropped by the WebSocket layer');
    }
    this.sockets.delete(ws);
    const n = (this.perController.get(c.controller) ?? 1) - 1;
    if (n <= 0) this.perController.delete(c.controller); else this.perController.set(c.controller, n);
    this.deps.log.debug({ controller: c.controller, code }, 'controller disconnected');
  }

  private message(ws: WebSocket<Conn>, msg: ArrayBuffer): void {
    const t0 = performance.now();
    const conn = ws.getUserData();
    const { hub, metrics } = this.deps;
    metrics.frames++;
    // a socket that does not read its replies gets no more work (frames already read are dropped)
    if (conn.closed) return;
    if (ws.getBufferedAmount() > MAX_BACKPRESSURE) { this.dropSlowReader(ws, conn); return; }
    const ctrl = hub.controller(conn.controller);
    if (!ctrl) { ws.end(1008, 'controller removed from the configuration'); return; }
    // over its rate limit: answered without decoding (O(1)); the frame's messages are still owed
    const bytes = new Uint8Array(msg); // one view for the count and the frame (valid in this callback only)
    if (!hub.admit(ctrl, frameMessages(bytes), t0)) {
      // still sending with half a second's worth owed: a flood, not a burst; it is dropped (it may reconnect)
      if (ctrl.bucket.exhausted()) { this.dropFlooder(ws, conn); return; }
      this.reply(ws, conn, hub.limitedReply(ctrl), t0);
      return;
    }
    this.reply(ws, conn, frameResult(hub, metrics, ctrl, bytes, t0), t0);
  }

  private dropFlooder(ws: WebSocket<Conn>, conn: Conn): void {
    conn.closed = true;
    this.deps.metrics.rateLimitCloses++;
    this.deps.log.warn({ controller: conn.controller }, 'controller keeps sending past its rate limit: disconnected');
    // a hard close: after end() uWS would keep reading (and discarding) whatever a flooder still sends
    try { ws.close(); } catch { /* closed */ }
  }

  /** Hard close (no close frame: it could not be sent past the queued replies anyway). */
  private dropSlowReader(ws: WebSocket<Conn>, conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    this.deps.metrics.backpressureCloses++;
    this.deps.log.debug({ controller: conn.controller }, 'controller does not read its replies: disconnected');
    try { ws.close(); } catch { /* closed */ }
  }

  /** Sends a frame's reply, after the replies of every earlier frame of this socket. */
  private reply(ws: WebSocket<Conn>, conn: Conn, r: Uint8Array | Promise<Uint8Array> | FastFlight, t0: number): void {
    const queue = conn.queue;
    if (r instanceof FastFlight) { r.ws = ws; r.conn = conn; r.t0 = t0; queue.push(r); return; } // hub.onFastSettled → flush
    if (r instanceof Uint8Array) {
      if (queue.length === 0) this.sendNow(ws, conn, r, t0);
      else queue.push({ done: true, reply: r, t0 }); // behind an earlier frame still waiting
      return;
    }
    const w: Waiting = { done: false, reply: null, t0 };
    queue.push(w);
    r.then(
      (b) => { w.reply = b; w.done = true; this.flush(ws, conn); },
      (e) => { w.done = true; this.deps.log.error({ err: e }, 'frame failed'); this.flush(ws, conn); },
    );
  }

  /** Releases the replies at the head of the socket's queue that are known, in order. */
  private flush(ws: WebSocket<Conn>, conn: Conn): void {
    const queue = conn.queue;
    while (queue.length > 0 && queue[0]!.done) {
      const w = queue.shift()!;
      if (w.reply !== null) this.release(ws, conn, w.reply, w.t0);
    }
  }

  /** A reply decided inside uWS's message callback: uWS corks it with the others of that read. */
  private sendNow(ws: WebSocket<Conn>, conn: Conn, bytes: Uint8Array, t0: number): void {
    this.deps.metrics.observeLatency((performance.now() - t0) / 1000);
    if (conn.closed) return; // the controller went away; it will resend and get the stored reply
    let status = 0;
    ws.cork(() => { status = ws.send(bytes, true); });
    if (status === 2 || ws.getBufferedAmount() > MAX_BACKPRESSURE) this.dropSlowReader(ws, conn); // 2: dropped (backpressure limit)
  }

  /**
   * A reply released by a commit (outside uWS's callbacks). One commit releases the replies of many
   * frames at once; sent one by one, each would be a write system call of its own. They are queued per
   * socket and written at the end of this turn (process.nextTick runs once the promise callbacks of
   * the commit have all run), one corked write per socket. No frame can arrive in between (frames
   * are read in a later turn), so the order per socket is unchanged.
   */
  private release(ws: WebSocket<Conn>, conn: Conn, bytes: Uint8Array, t0: number): void {
    this.deps.metrics.observeLatency((performance.now() - t0) / 1000);
    if (conn.closed) return;
    if (conn.out.length === 0) {
      this.pendingConns.push(conn);
      if (this.pending.push(ws) === 1) process.nextTick(this.writeReleased);
    }
    conn.out.push(bytes);
  }

  private readonly writeReleased = (): void => {
    const socks = this.pending, conns = this.pendingConns;
    this.pending = this.sparePending;
    this.pendingConns = this.spareConns;
    try { this.writeAll(socks, conns); } finally {
      socks.length = 0;
      conns.length = 0;
      this.sparePending = socks;
      this.spareConns = conns;
    }
  };

  private writeAll(socks: WebSocket<Conn>[], conns: Conn[]): void {
    for (let k = 0; k < socks.length; k++) {
      const ws = socks[k]!, conn = conns[k]!; // a closed socket's getUserData() throws: its Conn is kept
      const out = conn.out;
      if (conn.closed) { out.length = 0; continue; }
      let status = 0;
      try {
        ws.cork(() => { for (let i = 0; i < out.length && status !== 2; i++) status = ws.send(out[i]!, true); });
        if (status === 2 || ws.getBufferedAmount() > MAX_BACKPRESSURE) this.dropSlowReader(ws, conn); // 2: dropped (backpressure limit)
      } catch { conn.closed = true; } // closed under us: it resends and gets the stored replies; the other sockets still get theirs
      out.length = 0;
    }
  }

  connected(id: string): boolean { return (this.perController.get(id) ?? 0) > 0; }
  get count(): number { return this.sockets.size; }
  controllers(): string[] { return [...this.perController.keys()]; }

  backpressure(): number {
    let n = 0;
    for (const ws of this.sockets) { try { n += ws.getBufferedAmount(); } catch { /* closing */ } }
    return n;
  }

  /** After a reload: drop sockets of controllers that are gone or whose token changed. */
  revalidate(auth: Auth): void {
    for (const ws of [...this.sockets]) {
      const c = ws.getUserData();
      if (auth.controller(c.token)?.id !== c.controller) { try { ws.end(1008, 'controller removed or token changed'); } catch { /* closed */ } }
    }
  }

  closeAll(): void {
    for (const ws of [...this.sockets]) { try { ws.end(1001, 'server shutting down'); } catch { /* closed */ } }
  }
}

/**
 * The reply to one admitted frame of `ctrl` (its bytes valid only during
 * the call): the fast path when it takes the frame (hub.fastFrame), else
 * the general path (decode with msgpackr, hub.handle). Frames over
 * FRAME_LIMIT, non-MessagePack frames and batches over hub.maxBatch are
 * refused whole: counted, logged (bounded), answered with an error without id.
 */
export function frameReply(hub: Hub, metrics: Metrics, ctrl: ControllerCtx, bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
  const r = frameResult(hub, metrics, ctrl, bytes);
  return r instanceof FastFlight ? r.commit.then(() => r.reply ?? Promise.reject(new Error('the frame failed'))) : r;
}

/**
 * frameReply, with a fast-path frame as its FastFlight (the socket is told when it settles: no promise
 * per frame). `arrived`: when the frame came (performance.now(); the rate limit's clock).
 */
function frameResult(hub: Hub, metrics: Metrics, ctrl: ControllerCtx, bytes: Uint8Array, arrived = performance.now()): Uint8Array | Promise<Uint8Array> | FastFlight {
  const refuse = (code: 'too_large' | 'bad_frame', message: string): Uint8Array => {
    metrics.inc(metrics.errors, code);
    hub.refuseFrame(ctrl, code, message);
    return encode({ t: 'error', code, message });
  };
  if (bytes.byteLength > FRAME_LIMIT) return refuse('too_large', `frame of ${bytes.byteLength} bytes exceeds the limit of ${FRAME_LIMIT}`);
  const fast = hub.fastFrame(ctrl, bytes, arrived);
  if (fast !== null) return fast;
  let value: unknown;
  try {
    value = decodeFrame(bytes);
  } catch (e) {
    const err = isApbError(e) ? e : new ApbError('bad_frame', String(e));
    return refuse('bad_frame', err.message);
  }
  const batch = Array.isArray(value);
  if (batch && (value as unknown[]).length > hub.maxBatch) {
    forgetFrame();
    return refuse('too_large', `batch of ${(value as unknown[]).length} messages exceeds the limit of ${hub.maxBatch}`);
  }
  let r: Reply[] | Promise<Reply[]>;
  try { r = hub.handle(ctrl, value); } finally { forgetFrame(); } // the frame's memory is only valid in this callback
  if (Array.isArray(r)) return frameOf(r, batch);
  return r.then((rs) => frameOf(rs, batch));
}

/** How many messages a frame holds, from its first bytes (an array header; anything else counts as one). */
export function frameMessages(b: Uint8Array): number {
  if (b.length === 0) return 1;
  const t = b[0]!;
  if (t >= 0x90 && t <= 0x9f) return Math.max(1, t & 0x0f);
  if (t === 0xdc && b.length >= 3) return Math.max(1, (b[1]! << 8) | b[2]!);
  if (t === 0xdd && b.length >= 5) return Math.max(1, ((b[1]! << 24) | (b[2]! << 16) | (b[3]! << 8) | b[4]!) >>> 0);
  return 1;
}

/** A single message's reply, or one array frame for a batch (elements already encoded). */
function frameOf(rs: Reply[], batch: boolean): Uint8Array {
  if (!batch) return rs[0]!.bytes;
  return concatArray(rs.map((r) => r.bytes));
}
