/**
 * A controller swarm: N WebSocket connections sending `badge` frames of 1,
 * 16 or 64 messages, run as its own process (`node build/src/sim/swarm.js
 * '<json options>'`, one JSON result line on stdout) so the load generator
 * does not share an event loop with what it measures.
 *
 *  - closed loop: each connection keeps `inflight` frames outstanding and
 *    sends the next on every reply: peak throughput.
 *  - open loop: frames are scheduled by the clock at the offered rate,
 *    whatever the replies do, and latency is measured from each frame's
 *    intended send time, so a stalled server shows up in the tail instead
 *    of silently slowing the client (no coordinated omission).
 *
 * Frames are hand-encoded MessagePack (a map per message, an array per
 * batch; a single map when batch = 1) from a per-connection template where
 * only the `id` (uint64) and `cred` (uint32) bytes change:
 *   84                      fixmap, 4 entries
 *   a1 't'    a5 'badge'
 *   a2 'id'   cf <8 bytes>  id, big-endian      ← patched
 *   a4 'cred' ce <4 bytes>  credential          ← patched
 *   a6 'reader' <str>       reader id
 * Against the echo baseline the reply is the frame itself.
 */
import hdr from 'hdr-histogram-js';
import { Unpackr } from 'msgpackr';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export interface SwarmOptions {
  url: string;                                   // ws://host:port/v1/controller
  conns: { token: string; readers: string[] }[]; // one entry per connection
  batch: number;
  mode: 'closed' | 'open';
  inflight?: number;                             // closed loop: frames outstanding per connection (default 4)
  rate?: number;                                 // open loop: messages per second offered in total
  durationMs: number;
  warmupMs?: number;
  creds?: number;                                // credential space (default 1 000 000)
  /** replies are echoes of the frames (bare baseline): do not check them as decisions */
  echo?: boolean;
  idBase?: number;
}

export interface SwarmResult {
  mode: 'closed' | 'open'; batch: number; connections: number;
  messages: number; frames: number; seconds: number;
  msgsPerSec: number; framesPerSec: number;
  offeredPerSec: number | null;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  /** replies that were errors, by code (checked on every 8th reply frame) */
  errors: Record<string, number>;
  checkedFrames: number;
  unanswered: number;
}

const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' }); // 'auto' (bigint only above 2^53) exists at runtime, not in msgpackr's types

function str(s: string): Buffer {
  const b = Buffer.from(s);
  if (b.length < 32) return Buffer.concat([Buffer.of(0xa0 | b.length), b]);
  return Buffer.concat([Buffer.of(0xd9, b.length), b]);
}

interface Template { buf: Buffer; idAt: number[]; credAt: number[] }

function template(readers: string[], batch: number): Template {
  const parts: Buffer[] = [];
  const idAt: number[] = [], credAt: number[] = [];
  let off = 0;
  const push = (b: Buffer) => { parts.push(b); off += b.length; };
  if (batch > 1) push(batch < 16 ? Buffer.of(0x90 | batch) : Buffer.of(0xdc, batch >> 8, batch & 0xff));
  for (let i = 0; i < batch; i++) {
    push(Buffer.of(0x84)); push(str('t')); push(str('badge')); push(str('id'));
    idAt.push(off + 1); push(Buffer.alloc(9, 0)); parts[parts.length - 1]![0] = 0xcf;
    push(str('cred')); credAt.push(off + 1); push(Buffer.alloc(5, 0)); parts[parts.length - 1]![0] = 0xce;
    push(str('reader')); push(str(readers[i % readers.length]!));
  }
  return { buf: Buffer.concat(parts), idAt, credAt };
}

export async function runSwarm(o: SwarmOptions): Promise<SwarmResult> {
  const inflight = o.inflight ?? 4, warmup = o.warmupMs ?? 300, credSpace = o.creds ?? 1_000_000;
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const errors: Record<string, number> = {};
  let checkedFrames = 0, frames = 0;
  // message ids rise per controller, from a base above any earlier run's: Date.now() * 1000 stays
  // ahead of the previous run only while one counter takes fewer than 1,000 ids per ms, so each
  // controller (token) counts on its own (one shared counter at 1.1 M messages/s overtook the next
  // run's base, and a server then takes every id of that run for an out-of-order one)
  const base = o.idBase ?? Date.now() * 1000;
  const counters = new Map<string, { next: number }>();
  const counterOf = (token: string): { next: number } => {
    let k = counters.get(token);
    if (!k) counters.set(token, (k = { next: base }));
    return k;
  };
  let seed = 12345;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };
  let measuring = false, stopping = false, mStart = 0, mEnd = 0;

  interface C { ws: WebSocket; tpl: Template; times: number[]; head: number; n: number; ids: { next: number } }
  const opened = await Promise.allSettled(o.conns.map((c) => new Promise<C>((res, rej) => {
    const ws = new WebSocket(o.url, { headers: { authorization: `Bearer ${c.token}` }, perMessageDeflate: false, handshakeTimeout: 10_000 });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => res({ ws, tpl: template(c.readers, o.batch), times: [], head: 0, n: 0, ids: counterOf(c.token) }));
    ws.once('unexpected-response', (_q, r) => rej(new Error(`swarm: upgrade refused with HTTP ${r.statusCode}`)));
    ws.once('error', rej);
  })));
  const conns = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const refused = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (refused) { for (const c of conns) c.ws.terminate(); throw refused.reason; }

  const send = (c: C, t: number) => {
    const b = Buffer.from(c.tpl.buf);
    for (let i = 0; i < c.tpl.idAt.length; i++) {
      const id = c.ids.next++;
      b.writeUInt32BE(Math.floor(id / 4294967296), c.tpl.idAt[i]!);
      b.writeUInt32BE(id >>> 0, c.tpl.idAt[i]! + 4);
      b.writeUInt32BE(rnd() % credSpace, c.tpl.credAt[i]!);
    }
    c.times.push(t);
    c.ws.send(b);
  };
  const check = (data: Buffer) => {
    checkedFrames++;
    let v: unknown;
    try { v = unpackr.unpack(data); } catch { errors.bad_reply = (errors.bad_reply ?? 0) + 1; return; }
    for (const r of (Array.isArray(v) ? v : [v]) as { t?: string; code?: string }[]) {
      if (r.t === 'error') errors[r.code ?? 'error'] = (errors[r.code ?? 'error'] ?? 0) + 1;
      else if (r.t !== 'decision') errors[`unexpected_${r.t}`] = (errors[`unexpected_${r.t}`] ?? 0) + 1;
    }
  };
  let done: () => void = () => {};
  const drained = new Promise<void>((r) => { done = r; });
  let outstanding = 0;
  for (const c of conns) {
    c.ws.on('message', (data: Buffer) => {
      const now = performance.now();
      const t = c.times[c.head++]!;
      if (c.head > 4096) { c.times = c.times.slice(c.head); c.head = 0; }
      outstanding--;
      if (measuring && t >= mStart && t < mEnd) { frames++; hist.recordValue(Math.max(1, Math.round((now - t) * 1000))); }
      if (!o.echo && (++c.n & 7) === 0) check(data);
      if (o.mode === 'closed' && !stopping) { outstanding++; send(c, performance.now()); }
      if (stopping && outstanding === 0) done();
    });
  }

  const t0 = performance.now();
  mStart = t0 + warmup; mEnd = mStart + o.durationMs;
  setTimeout(() => { measuring = true; }, 0);
  let offered: number | null = null;
  if (o.mode === 'closed') {
    for (const c of conns) for (let i = 0; i < inflight; i++) { outstanding++; send(c, performance.now()); }
    await new Promise((r) => setTimeout(r, warmup + o.durationMs));
  } else {
    const fps = (o.rate ?? 1000) / o.batch;
    offered = fps * o.batch;
    let k = 0;
    await new Promise<void>((res) => {
      const pump = () => {
        const now = performance.now();
        if (now >= mEnd) { res(); return; }
        for (;;) {
          const due = t0 + (k / fps) * 1000;
          if (due > now) break;
          outstanding++; send(conns[k % conns.length]!, due); k++;
        }
        const next = t0 + (k / fps) * 1000 - performance.now();
        if (next > 1.5) setTimeout(pump, next - 1); else setImmediate(pump);
      };
      pump();
    });
  }
  stopping = true;
  const giveUp = setTimeout(done, 3000);
  if (outstanding > 0) await drained;
  clearTimeout(giveUp);
  measuring = false;
  // frames still unanswered after 3 s count as 3 s late: a stall must not vanish from the tail
  const unanswered = Math.max(0, outstanding);
  for (let i = 0; i < Math.min(unanswered, 100_000); i++) hist.recordValue(3_000_000);
  for (const c of conns) c.ws.terminate();
  const seconds = o.durationMs / 1000;
  return {
    mode: o.mode, batch: o.batch, connections: conns.length,
    messages: frames * o.batch, frames, seconds,
    msgsPerSec: (frames * o.batch) / seconds, framesPerSec: frames / seconds, offeredPerSec: offered,
    latencyUs: { p50: hist.getValueAtPercentile(50), p99: hist.getValueAtPercentile(99), p999: hist.getValueAtPercentile(99.9), max: hist.maxValue },
    errors, checkedFrames, unanswered,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runSwarm(JSON.parse(process.argv[2] ?? '{}') as SwarmOptions).then(
    (r) => { process.stdout.write(JSON.stringify(r) + '\n'); process.exit(0); },
    (e: unknown) => { process.stderr.write(`swarm: ${(e as Error).stack ?? String(e)}\n`); process.exit(1); },
  );
}
