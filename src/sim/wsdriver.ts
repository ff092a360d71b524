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
}

export interface DriveResult {
  summary: CheckSummary;
  /** events sent (fewer than given when the deadline stopped the run) */
  sent: number;
  seconds: number;
  eventsPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
}

interface Pending { events: SimEvent[]; sentAt: number; resolve: () => void; reject: (e: Error) => void }

class Conn {
  readonly queue: Pending[] = [];
  nextId: number;
  constructor(readonly controller: string, readonly ws: WebSocket, idBase: number) { this.nextId = idBase; }
}

export function controllerUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/controller';
  return u.toString();
}

function open(url: string, controller: string, token: string, idBase: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(controllerUrl(url), { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, handshakeTimeout: 10_000 });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => resolve(new Conn(controller, ws, idBase)));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`controller ${controller}: upgrade refused with HTTP ${res.statusCode} (wrong token?)`)));
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
  const opened = await Promise.allSettled(used.map(async (c) => { conns.set(c, await open(o.url, c, o.tokens[c]!, idBase)); }));
  const refused = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (refused) { for (const c of conns.values()) c.ws.terminate(); throw refused.reason; }
  for (const conn of conns.values()) {
    conn.ws.on('message', (data: Buffer) => {
      const p = conn.queue.shift();
      if (!p) { failure = new Error(`controller ${conn.controller}: unexpected frame`); return; }
      const us = Math.max(1, Math.round((performance.now() - p.sentAt) * 1000));
      let reply: unknown;
      try { reply = unpackr.unpack(data); } catch (e) { p.reject(new Error(`controller ${conn.controller}: reply is not MessagePack: ${(e as Error).message}`)); return; }
      const replies = Array.isArray(reply) ? reply : [reply];
      if (replies.length !== p.events.length) { p.reject(new Error(`controller ${conn.controller}: ${replies.length} replies for ${p.events.length} messages: ${JSON.stringify(reply).slice(0, 300)}`)); return; }
      for (let i = 0; i < replies.length; i++) {
        const r = replies[i] as { t?: string; grant?: boolean; violations?: { code: string; mode?: string }[]; code?: string };
        const ev = p.events[i]!;
        hist.recordValue(us);
        if (r.t === 'decision' && ev.kind === BADGE) check.badge(ev, r.grant === true, r.violations ?? []);
        else if (r.t === 'ack' && ev.kind !== BADGE) check.passage();
        else if (r.t === 'error') check.error(String(r.code));
        else check.error(`unexpected reply ${String(r.t)}`);
      }
      p.resolve();
    });
    conn.ws.on('close', (code, why) => {
      if (conn.queue.length) failure = new Error(`controller ${conn.controller}: connection closed (${code} ${why.toString()}) with ${conn.queue.length} frames unanswered`);
      for (const p of conn.queue.splice(0)) p.reject(failure!);
    });
  }

  // in flight: frames sent and not yet answered, and which controller each credential is in flight at
  const inflight = new Set<Promise<void>>();
  const owner = new Map<number, { controller: string; n: number }>();
  let inflightEvents = 0;
  const send = (conn: Conn, events: SimEvent[]): void => {
    const msgs = events.map((ev) => ({ t: ev.kind === BADGE ? 'badge' : 'passage', id: conn.nextId++, cred: ev.cred, reader: o.site.readers[ev.reader]!.id }));
    const done = new Promise<void>((resolve, reject) => { conn.queue.push({ events, sentAt: performance.now(), resolve, reject }); });
    inflightEvents += events.length;
    const tracked = done.then(() => {
      inflight.delete(tracked);
      inflightEvents -= events.length;
      for (const ev of events) { const w = owner.get(ev.cred)!; if (--w.n === 0) owner.delete(ev.cred); }
    });
    tracked.catch(() => {});   // surfaced through `failure` / the barrier
    inflight.add(tracked);
    conn.ws.send(packr.pack(msgs));
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
    for (const c of conns.values()) c.ws.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    summary: check.s, sent, seconds, eventsPerSec: sent / seconds,
    latencyUs: { p50: hist.getValueAtPercentile(50), p99: hist.getValueAtPercentile(99), p999: hist.getValueAtPercentile(99.9), max: hist.maxValue },
  };
}
