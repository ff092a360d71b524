/**
 * Plays a scenario's events against a running server over its controller
 * WebSockets (PROTOCOL.md): one connection per controller, batched frames,
 * every reply checked against the ground truth.
 *
 * Ordering: a connection's frames are decided in order, but frames of
 * different controllers race. Frames are pipelined (up to `window` events in
 * flight) except when a credential still in flight at one controller shows
 * up at another: then everything in flight is awaited first, so each
 * person's events reach the engine in order.
 *
 * Pacing: as fast as possible by default; `speed` plays simulated time X
 * times faster than real time, `rate` caps events per second.
 *
 * A lost connection (the server restarted, crashed, or answered `not_ready`
 * while shutting down, or `storage_unavailable`) is not the end of the run:
 * the connection is opened again with backoff (100 ms doubling to 2 s, for
 * at most `reconnectMs`), and every frame not answered yet is sent again, in
 * order, with the SAME message ids. The server's idempotency answers a frame
 * it had already decided with the very reply it sent (or would have sent), and
 * decides the others now, so every event is decided exactly once and the
 * check stays exact. A frame is only counted once its definitive reply came.
 */
import hdr from 'hdr-histogram-js';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { Checker, type CheckSummary } from './check.js';
import { BADGE, type SimEvent } from './scenario.js';
import type { TruthSite } from './truth.js';

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' }); // 'auto' (bigint only above 2^53) exists at runtime, not in msgpackr's types

export interface DriveOptions {
  url: string;                                // ws://host:port (path /v1/controller is added when missing)
  site: TruthSite;
  tokens: Record<string, string>;             // controller id → bearer token
  events: SimEvent[];
  frame?: number;                             // max messages per frame (default 64)
  window?: number;                            // max events in flight (default 2048)
  speed?: number;                             // simulated seconds per real second (0 = as fast as possible)
  rate?: number;                              // events per second cap (0 = none)
  /** stop sending after this many ms of wall time (the result covers the events sent; any prefix checks exactly) */
  deadlineMs?: number;
  /** first message id per controller (default Date.now() * 1000: fresh across runs against a persistent server) */
  idBase?: number;
  onProgress?: (done: number, total: number) => void;
  /** how long a lost connection may stay down before the run fails (default 60 000 ms) */
  reconnectMs?: number;
  /** a connection was lost (`why`) or is back (`resent` frames sent again): for the user's log */
  onConnection?: (e: { controller: string; state: 'lost' | 'back'; why?: string; resent?: number; downMs?: number }) => void;
}

export interface DriveResult {
  summary: CheckSummary;
  /** events sent (fewer than given when the deadline stopped the run) */
  sent: number;
  seconds: number;
  eventsPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  /** connections opened again after they were lost, and frames sent again on them */
  reconnects: number;
  resent: number;
}

interface Msg { t: string; id: number; cred: number; reader: string }
/** a frame not answered yet: `msgs` (ids included) is what is sent again after a reconnect */
interface Pending { events: SimEvent[]; msgs: Msg[]; sentAt: number; tries: number; resolve: () => void; reject: (e: Error) => void }

/**
 * One controller's connection. `queue`: every frame not answered yet, in the order sent; replies come in
 * that order, so the head is the frame the next reply answers. `ws` is null while the connection is down.
 */
class Conn {
  readonly queue: Pending[] = [];
  nextId: number;
  ws: WebSocket | null = null;
  downSince = 0;
  constructor(readonly controller: string, idBase: number) { this.nextId = idBase; }
}

/** replies that mean "not decided, nothing changed": the frame is sent again on a new connection */
const RETRY = new Set(['not_ready', 'storage_unavailable']);
/** a frame answered RETRY this many times ends the run */
const MAX_TRIES = 40;

export function controllerUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/controller';
  return u.toString();
}

/** an open WebSocket, or an error (`status`: the HTTP status of a refused upgrade) */
function open(url: string, controller: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(controllerUrl(url), { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, handshakeTimeout: 10_000 });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(Object.assign(new Error(`controller ${controller}: upgrade refused with HTTP ${res.statusCode}${res.statusCode === 401 ? ' (wrong token?)' : ''}`), { status: res.statusCode }));
    });
    ws.once('error', (e) => reject(new Error(`controller ${controller}: ${e.message}`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function driveServer(o: DriveOptions): Promise<DriveResult> {
  const frameMax = o.frame ?? 64, windowMax = o.window ?? 2048;
  const idBase = o.idBase ?? Date.now() * 1000;
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const check = new Checker((r) => o.site.readers[r]!.id);
  const used = [...new Set(o.events.map((e) => o.site.readers[e.reader]!.controller))];
  for (const c of used) if (!o.tokens[c]) throw new Error(`no token for controller "${c}" (pass --tokens ${c}=TOKEN)`);
  const conns = new Map<string, Conn>();
  let failure: Error | null = null;
  let done = false, reconnects = 0, resent = 0;
  const reconnectMs = o.reconnectMs ?? 60_000;
  /** ends the run: every wait (barrier, throttle) rejects with the first failure */
  const fail = (conn: Conn, e: Error): void => {
    failure ??= e;
    for (const p of conn.queue.splice(0)) p.reject(failure);
  };

  /** sockets given up on: replies they still deliver (already received, emitted after terminate) are not read */
  const dropped = new WeakSet<WebSocket>();

  /** a reply frame for the head of conn's queue */
  const onReply = (conn: Conn, ws: WebSocket, data: Buffer): void => {
    const p = conn.queue[0];
    if (!p) { fail(conn, new Error(`controller ${conn.controller}: unexpected frame`)); return; }
    let reply: unknown;
    try { reply = unpackr.unpack(data); } catch (e) { fail(conn, new Error(`controller ${conn.controller}: reply is not MessagePack: ${(e as Error).message}`)); return; }
    const replies = (Array.isArray(reply) ? reply : [reply]) as { t?: string; grant?: boolean; violations?: { code: string; mode?: string }[]; code?: string }[];
    if (replies.length !== p.events.length) { fail(conn, new Error(`controller ${conn.controller}: ${replies.length} replies for ${p.events.length} messages: ${JSON.stringify(reply).slice(0, 300)}`)); return; }
    if (replies.some((r) => r.t === 'error' && RETRY.has(String(r.code)))) {
      // not decided (the server is shutting down, or cannot persist): again, in order, on a new connection
      if (++p.tries >= MAX_TRIES) { fail(conn, new Error(`controller ${conn.controller}: the server answered ${replies.find((r) => r.code)!.code} ${p.tries} times to the same frame`)); return; }
      dropped.add(ws); // the replies to later frames may still arrive on it: they are answered again after the reconnect
      ws.terminate();
      return;
    }
    conn.queue.shift();
    const us = Math.max(1, Math.round((performance.now() - p.sentAt) * 1000));
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i]!;
      const ev = p.events[i]!;
      hist.recordValue(us);
      if (r.t === 'decision' && ev.kind === BADGE) check.badge(ev, r.grant === true, r.violations ?? []);
      else if (r.t === 'ack' && ev.kind !== BADGE) check.passage();
      else if (r.t === 'error') check.error(String(r.code));
      else check.error(`unexpected reply ${String(r.t)}`);
    }
    p.resolve();
  };

  const attach = (conn: Conn, ws: WebSocket): void => {
    conn.ws = ws;
    ws.on('message', (data: Buffer) => { if (conn.ws === ws && !dropped.has(ws)) onReply(conn, ws, data); });
    ws.on('error', () => { /* 'close' follows */ });
    ws.on('close', (code, why) => {
      if (conn.ws !== ws) return;
      conn.ws = null;
      if (done || failure) return;
      conn.downSince = performance.now();
      o.onConnection?.({ controller: conn.controller, state: 'lost', why: `${code}${why.length ? ' ' + why.toString() : ''}` });
      void reconnect(conn);
    });
  };

  /** opens conn again (backoff 100 ms .. 2 s, at most reconnectMs) and sends every unanswered frame again, in order */
  const reconnect = async (conn: Conn): Promise<void> => {
    let delay = 100, last = '';
    while (!done && !failure) {
      if (performance.now() - conn.downSince > reconnectMs) { fail(conn, new Error(`controller ${conn.controller}: connection lost and not back within ${reconnectMs} ms (${last})`)); return; }
      await sleep(delay);
      delay = Math.min(2000, delay * 2);
      let ws: WebSocket;
      try { ws = await open(o.url, conn.controller, o.tokens[conn.controller]!); } catch (e) {
        const status = (e as { status?: number }).status;
        if (status === 401 || status === 403) { fail(conn, e as Error); return; } // the token is no longer good: retrying will not help
        last = (e as Error).message;
        continue;
      }
      if (done || failure) { ws.close(); return; }
      attach(conn, ws);
      reconnects++;
      resent += conn.queue.length;
      for (const p of conn.queue) ws.send(packr.pack(p.msgs));
      o.onConnection?.({ controller: conn.controller, state: 'back', resent: conn.queue.length, downMs: Math.round(performance.now() - conn.downSince) });
      return;
    }
  };

  const opened = await Promise.allSettled(used.map(async (c) => { const conn = new Conn(c, idBase); conns.set(c, conn); attach(conn, await open(o.url, c, o.tokens[c]!)); }));
  const refused = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (refused) { done = true; for (const c of conns.values()) c.ws?.terminate(); throw refused.reason; }

  // in flight: frames sent and not yet answered, and which controller each credential is in flight at
  const inflight = new Set<Promise<void>>();
  const owner = new Map<number, { controller: string; n: number }>();
  let inflightEvents = 0;
  const send = (conn: Conn, events: SimEvent[]): void => {
    const msgs: Msg[] = events.map((ev) => ({ t: ev.kind === BADGE ? 'badge' : 'passage', id: conn.nextId++, cred: ev.cred, reader: o.site.readers[ev.reader]!.id }));
    const answered = new Promise<void>((resolve, reject) => {
      if (failure) { reject(failure); return; }
      conn.queue.push({ events, msgs, sentAt: performance.now(), tries: 0, resolve, reject });
    });
    inflightEvents += events.length;
    const tracked = answered.then(() => {
      inflight.delete(tracked);
      inflightEvents -= events.length;
      for (const ev of events) { const w = owner.get(ev.cred)!; if (--w.n === 0) owner.delete(ev.cred); }
    });
    tracked.catch(() => {});   // surfaced through `failure` / the barrier
    inflight.add(tracked);
    conn.ws?.send(packr.pack(msgs)); // while the connection is down the frame waits in the queue for the reconnect
  };
  // events collected per controller, not sent yet
  const unsent = new Map<string, SimEvent[]>();
  let unsentCount = 0;
  const sendUnsent = () => {
    for (const [c, evs] of unsent) {
      const conn = conns.get(c)!;
      for (let i = 0; i < evs.length; i += frameMax) send(conn, evs.slice(i, i + frameMax));
    }
    unsent.clear(); unsentCount = 0;
  };
  /** sends what is collected and waits until nothing is in flight */
  const barrier = async () => {
    sendUnsent();
    while (inflight.size) await Promise.all([...inflight]);
    if (failure) throw failure;
  };
  /** waits until fewer than `max` events are in flight */
  const throttle = async (max: number) => {
    while (inflightEvents >= max && inflight.size) await Promise.race([...inflight]);
    if (failure) throw failure;
  };

  const total = o.events.length;
  const t0 = performance.now();
  const simT0 = o.events[0]?.at ?? 0;
  let lastProgress = 0;
  let sent = total;
  try {
    for (let i = 0; i < total; i++) {
      if (o.deadlineMs !== undefined && performance.now() - t0 > o.deadlineMs) { sent = i; break; }
      const ev = o.events[i]!;
      let due = 0;
      if (o.speed) due = (ev.at - simT0) / o.speed;
      if (o.rate) due = Math.max(due, (i / o.rate) * 1000);
      // events due within the next 5 ms go out now (pacing granularity)
      if (due > performance.now() - t0 + 5) {
        sendUnsent();
        const wait = due - (performance.now() - t0);
        if (wait > 0) await sleep(wait);
      }
      if (failure) throw failure;
      const c = o.site.readers[ev.reader]!.controller;
      const w = owner.get(ev.cred);
      // the same person at another controller: everything before must be decided first
      if (w && w.controller !== c) await barrier();
      const w2 = owner.get(ev.cred);
      if (w2) w2.n++; else owner.set(ev.cred, { controller: c, n: 1 });
      let list = unsent.get(c);
      if (!list) unsent.set(c, (list = []));
      list.push(ev); unsentCount++;
      if (list.length >= frameMax) { send(conns.get(c)!, list); unsent.delete(c); unsentCount -= list.length; }
      if (unsentCount >= Math.max(frameMax, windowMax / 4)) sendUnsent();
      if (inflightEvents >= windowMax) { sendUnsent(); await throttle(windowMax); }
      if (o.onProgress && performance.now() - lastProgress > 100) { lastProgress = performance.now(); o.onProgress(i, total); }
    }
    await barrier();
    o.onProgress?.(sent, total);
  } finally {
    done = true;
    for (const c of conns.values()) c.ws?.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    summary: check.s, sent, seconds, eventsPerSec: sent / seconds,
    latencyUs: { p50: hist.getValueAtPercentile(50), p99: hist.getValueAtPercentile(99), p999: hist.getValueAtPercentile(99.9), max: hist.maxValue },
    reconnects, resent,
  };
}
