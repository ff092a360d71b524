/**
 * The controller WebSocket `/v1/controller` (PROTOCOL.md). Limits, all set
 * explicitly:
 *   - FRAME_LIMIT (1 MiB): a larger frame is answered `too_large` (no id)
 *     and nothing in it is decided; frames beyond HARD_PAYLOAD_LIMIT (4 MiB)
 *     make uWS close the socket (1009) without reading them into memory.
 *   - batches of more than hub.maxBatch messages are answered `too_large`.
 *   - idleTimeout 120 s with automatic pings: a dead peer is dropped.
 *   - MAX_BACKPRESSURE (1 MiB) with closeOnBackpressureLimit: a controller
 *     that stops reading its replies is disconnected once 1 MiB is queued
 *     for it, so it can neither grow the server's memory without bound nor
 *     slow the others (sends never block). It reconnects and resends; ids
 *     make the resend safe (same replies, nothing applied twice).
 *   - per-controller rate limit (token bucket, `rateLimit` msgs/s) in the hub.
 * The bearer token is checked at the upgrade: 401 before any frame.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import { ApbError, isApbError } from '../errors.js';
import { Auth } from './auth.js';
import type { Hub, Reply } from './hub.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import { concatArray, decodeFrame, encode } from './codec.js';
import { statusLine } from './http-util.js';

export const FRAME_LIMIT = 1 << 20;
export const HARD_PAYLOAD_LIMIT = 4 << 20;
export const MAX_BACKPRESSURE = 1 << 20;
export const IDLE_TIMEOUT_S = 120;

/** Per socket. `tail`: the reply of the newest frame still waiting for its commit (replies leave in frame order). */
interface Conn { controller: string; token: string; closed: boolean; tail: Promise<void> | null }

export class ControllerSocket {
  private sockets = new Set<WebSocket<Conn>>();
  private perController = new Map<string, number>();

  constructor(app: TemplatedApp, private readonly deps: { hub: Hub; auth: () => Auth; metrics: Metrics; log: Logger; accepting: () => boolean }) {
    app.ws<Conn>('/v1/controller', {
      maxPayloadLength: HARD_PAYLOAD_LIMIT,
      idleTimeout: IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      maxBackpressure: MAX_BACKPRESSURE,
      closeOnBackpressureLimit: 1, // typed as a number in index.d.ts; truthy = close
      upgrade: (res, req, ctx) => this.upgrade(res, req, ctx),
      open: (ws) => this.open(ws),
      message: (ws, msg) => this.message(ws, msg),
      close: (ws, code) => this.close(ws, code),
    });
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const key = req.getHeader('sec-websocket-key');
    const proto = req.getHeader('sec-websocket-protocol');
    const ext = req.getHeader('sec-websocket-extensions');
    const token = Auth.bearer(req.getHeader('authorization'));
    try {
      if (!this.deps.accepting()) throw new ApbError('not_ready', 'the server is shutting down');
      const c = this.deps.auth().requireController(token);
      res.cork(() => res.upgrade<Conn>({ controller: c.id, token, closed: false, tail: null }, key, proto, ext, context));
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

  private close(ws: WebSocket<Conn>, code: number): void {
    const c = ws.getUserData();
    c.closed = true;
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
    if (msg.byteLength > FRAME_LIMIT) {
      metrics.inc(metrics.errors, 'too_large');
      this.reply(ws, conn, encode({ t: 'error', code: 'too_large', message: `frame of ${msg.byteLength} bytes exceeds the limit of ${FRAME_LIMIT}` }), t0);
      return;
    }
    const ctrl = hub.controller(conn.controller);
    if (!ctrl) { ws.end(1008, 'controller removed from the configuration'); return; }
    let value: unknown;
    try {
      value = decodeFrame(new Uint8Array(msg));
    } catch (e) {
      const err = isApbError(e) ? e : new ApbError('bad_frame', String(e));
      metrics.inc(metrics.errors, 'bad_frame');
      this.reply(ws, conn, encode({ t: 'error', code: 'bad_frame', message: err.message }), t0);
      return;
    }
    const batch = Array.isArray(value);
    if (batch && (value as unknown[]).length > hub.maxBatch) {
      metrics.inc(metrics.errors, 'too_large');
      this.reply(ws, conn, encode({ t: 'error', code: 'too_large', message: `batch of ${(value as unknown[]).length} messages exceeds the limit of ${hub.maxBatch}` }), t0);
      return;
    }
    const r = hub.handle(ctrl, value);
    if (Array.isArray(r)) this.reply(ws, conn, frameOf(r, batch), t0);
    else this.reply(ws, conn, r.then((rs) => frameOf(rs, batch)), t0);
  }

  /** Sends a frame's reply, after the replies of every earlier frame of this socket. */
  private reply(ws: WebSocket<Conn>, conn: Conn, bytes: Uint8Array | Promise<Uint8Array>, t0: number): void {
    if (!(bytes instanceof Promise) && conn.tail === null) { this.sendNow(ws, conn, bytes, t0); return; }
    const p: Promise<void> = (conn.tail ?? Promise.resolve())
      .then(() => bytes)
      .then((b) => this.sendNow(ws, conn, b, t0), (e) => this.deps.log.error({ err: e }, 'frame failed'))
      .finally(() => { if (conn.tail === p) conn.tail = null; });
    conn.tail = p;
  }

  private sendNow(ws: WebSocket<Conn>, conn: Conn, bytes: Uint8Array, t0: number): void {
    this.deps.metrics.observeLatency((performance.now() - t0) / 1000);
    if (conn.closed) return; // the controller went away; it will resend and get the stored reply
    const status = ws.send(bytes, true);
    if (status === 2) this.deps.metrics.backpressureCloses++;
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

/** A single message's reply, or one array frame for a batch (elements already encoded). */
function frameOf(rs: Reply[], batch: boolean): Uint8Array {
  if (!batch) return rs[0]!.bytes;
  return concatArray(rs.map((r) => r.bytes));
}
