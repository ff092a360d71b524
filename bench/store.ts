/**
 * Store benchmarks (issue 4):
 *  1. durable (LMDB) vs in-memory throughput at 1, 16 and 64 messages per
 *     frame, through the server's real decision pipeline (src/server/hub.ts:
 *     decode, idempotency, one engine.apply per frame, reply encoding, event
 *     records, store.append; replies released after the commit), in process,
 *     no sockets. Many frames in flight, as from many controllers.
 *  2. time from start to serving with 1 M and 10 M credentials: open the
 *     store + newest snapshot + journal tail replay (openDurableEngine).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Hub, type ControllerCtx } from '../src/server/hub.js';
import { Metrics } from '../src/server/metrics.js';
import { openStore } from '../src/store/index.js';
import { openDurableEngine } from '../src/store/recovery.js';
import type { CoreOp } from '../src/engine/types.js';
import type { Store } from '../src/store/types.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';

const CONTROLLERS = 8;
/** a flat site: 8 controllers with an in and an out reader each, no rate limit in the way */
export function benchSiteText(): string {
  const lines = ['site: bench-store', 'timezone: UTC', 'areas:', '  - { id: venue, entry: hard, exit: soft }', 'readers:'];
  for (let c = 0; c < CONTROLLERS; c++) {
    lines.push(`  - { id: c${c}-in, from: outside, to: venue, controller: c${c} }`, `  - { id: c${c}-out, from: venue, to: outside, controller: c${c} }`);
  }
  lines.push('controllers:');
  for (let c = 0; c < CONTROLLERS; c++) lines.push(`  - { id: c${c}, token: bench-token-${c}-long-test-token, protocol: native, rateLimit: 100000000 }`);
  lines.push('users:', '  - { name: admin, token: bench-admin-token, role: admin }');
  return lines.join('\n') + '\n';
}

const noSink = { active: () => false, emit: () => undefined, changed: () => undefined };

interface Run { decisions: number; seconds: number; perSec: number }

/** Drives the hub with `perFrame`-message frames for `ms`, keeping `window` frames in flight. */
export async function drive(store: Store, perFrame: number, ms: number, nCreds: number): Promise<Run> {
  const text = benchSiteText();
  const { engine } = await openDurableEngine({ store, configText: text, core: 'wasm' });
  const hub = new Hub({
    store, engine, configText: text, log: pino({ level: 'silent' }), metrics: new Metrics(), sink: noSink,
    rebuild: async (t) => (await openDurableEngine({ store, configText: t })).engine,
  });
  const ctxs: ControllerCtx[] = Array.from({ length: CONTROLLERS }, (_, c) => hub.controller(`c${c}`)!);
  const ids = new Array<number>(CONTROLLERS).fill(0);
  let x = 0x9e3779b9;
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const frame = (c: number): Record<string, unknown>[] => {
    const out = new Array(perFrame);
    for (let k = 0; k < perFrame; k++) {
      const r = rand();
      out[k] = { t: 'badge', id: ++ids[c]!, cred: 1_000_000 + (r % nCreds), reader: r & 1 ? `c${c}-out` : `c${c}-in` };
    }
    return out;
  };
  const window = Math.max(64, Math.ceil(16384 / perFrame)); // frames in flight (many controllers)
  let inflight = 0, done = 0, errors = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      const now = performance.now();
      if (now >= end) { if (inflight === 0) resolve(); else setImmediate(pump); return; }
      let issued = 0;
      while (inflight < window && issued < window) {
        const c = (done + inflight) % CONTROLLERS;
        const r = hub.handle(ctxs[c]!, frame(c));
        inflight++; issued++;
        const fin = (replies: { code?: string }[]): void => {
          inflight--; done += replies.length;
          for (const rep of replies) if (rep.code) errors++;
        };
        if (Array.isArray(r)) fin(r); else r.then(fin, () => { inflight--; errors++; });
      }
      setImmediate(pump);
    };
    pump();
  });
  const seconds = (performance.now() - t0) / 1000;
  if (errors) throw new Error(`bench: ${errors} messages answered with an error`);
  return { decisions: done, seconds, perSec: done / seconds };
}

async function withStore<T>(durable: boolean, fn: (s: Store) => Promise<T>): Promise<T> {
  const dir = durable ? mkdtempSync(join(tmpdir(), 'apb-bench-store-')) : ':memory:';
  const store = await openStore(dir, { retention: { intervalMs: 0 } });
  try { return await fn(store); } finally {
    await store.close();
    if (durable) rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds an engine holding `n` credentials, snapshots it into a fresh store with a journal tail, then measures restart. */
async function restart(n: number, tail: number, log: (l: string) => void): Promise<{ ms: number; snapshotMB: number; replayed: number; openMs: number; read: number; restore: number; replay: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'apb-bench-restart-'));
  try {
    const text = benchSiteText();
    {
      const store = await openStore(dir, { retention: { intervalMs: 0 } });
      const { engine } = await openDurableEngine({ store, configText: text, core: 'wasm' });
      const reader = engine.site.readerIndex.get('c0-in')!;
      const B = 65_536;
      let t = 1_767_261_600_000;
      for (let i = 0; i < n; i += B) {
        const ops: CoreOp[] = [];
        for (let k = i; k < Math.min(n, i + B); k++) ops.push({ op: 'badge', cred: { kind: 'int', value: BigInt(1_000_000 + k) }, reader });
        engine.apply(ops, t++);
      }
      log(`  store: ${n} credentials loaded into the engine`);
      await store.saveSnapshot(store.lastSeq, engine.snapshot(), text, engine.clock);
      // a journal tail after the snapshot, as after a crash between snapshots
      const recs = [];
      for (let k = 0; k < tail; k++) recs.push({ at: t + k, kind: 'badge' as const, controller: 'c0', id: k + 1, cred: String(5_000_000_000 + k), reader: 'c0-in', op: { t: 'badge', cred: 5_000_000_000 + k, reader: 'c0-in', ts: t + k } });
      for (let k = 0; k < recs.length; k += 256) await store.append(recs.slice(k, k + 256), []);
      await store.close();
    }
    const t0 = performance.now();
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    const openMs = performance.now() - t0;
    const r = await openDurableEngine({ store, configText: text, core: 'wasm' });
    const ms = performance.now() - t0;
    const snapshotMB = store.latestSnapshot()!.bytes.length / 2 ** 20;
    if (r.engine.core.size() < n) throw new Error(`restart: ${r.engine.core.size()} credentials, expected ${n}`);
    await store.close();
    return { ms, snapshotMB, replayed: r.replayed, openMs, ...r.timings };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(opts: BenchOptions): Promise<BenchSection> {
  const ms = opts.quick ? 1500 : 4000;
  const nCreds = 1_000_000;
  const tput: BenchTable = {
    title: 'Durable vs in-memory decisions through the hub (in process, no sockets)',
    headers: ['messages/frame', 'in-memory decisions/s', 'durable (LMDB) decisions/s', 'ratio durable/memory'],
    rows: [],
  };
  const notes: string[] = [];
  let at64 = 0, ratio64 = 0;
  // warm-up (JIT, WASM)
  await withStore(false, (s) => drive(s, 16, 300, nCreds));
  for (const perFrame of [1, 16, 64]) {
    const mem = await withStore(false, (s) => drive(s, perFrame, ms, nCreds));
    opts.log(`  store: ${perFrame}/frame memory ${Math.round(mem.perSec)}/s`);
    const dur = await withStore(true, (s) => drive(s, perFrame, ms, nCreds));
    opts.log(`  store: ${perFrame}/frame durable ${Math.round(dur.perSec)}/s`);
    const ratio = dur.perSec / mem.perSec;
    tput.rows.push([perFrame, Math.round(mem.perSec), Math.round(dur.perSec), ratio.toFixed(2)]);
    if (perFrame === 64) { at64 = dur.perSec; ratio64 = ratio; }
  }
  notes.push(`Throughput: measured through src/server/hub.ts in process (decode, idempotency check, one engine.apply per frame, reply encoding, event records, store.append; a frame's replies are released after its commit), ${CONTROLLERS} controllers, random badges over ${nCreds / 1e6} M credentials, up to 16384 messages in flight. The WebSocket layer is measured by the ws benchmark.`);
  notes.push(`Target durable >= 0.8x in-memory at 64/frame: ${ratio64 >= 0.8 ? 'met' : 'NOT met'} (${ratio64.toFixed(2)}x). Target >= 1 M durable decisions/s at 64/frame: ${at64 >= 1e6 ? 'met' : 'NOT met'} (${(at64 / 1e6).toFixed(2)} M/s).`);

  const rs: BenchTable = {
    title: 'Time from start to serving (open store + newest snapshot + journal tail replay)',
    headers: ['credentials', 'snapshot MB', 'tail events replayed', 'open store ms', 'read snapshot ms', 'engine restore ms', 'replay ms', 'total ms', 'ratio to 2 s target'],
    rows: [],
  };
  for (const n of opts.quick ? [1_000_000] : [1_000_000, 10_000_000]) {
    const r = await restart(n, 10_000, opts.log);
    opts.log(`  store: restart with ${n} credentials: ${Math.round(r.ms)} ms`);
    rs.rows.push([n.toLocaleString('en-US'), r.snapshotMB.toFixed(1), r.replayed, Math.round(r.openMs), Math.round(r.read), Math.round(r.restore), Math.round(r.replay), Math.round(r.ms), (r.ms / 2000).toFixed(2)]);
    if (n === 10_000_000) notes.push(`Restart with 10 M credentials: ${Math.round(r.ms)} ms (target <= 2000 ms: ${r.ms <= 2000 ? 'met' : 'NOT met'}).`);
  }
  if (opts.quick) notes.push('Quick mode: restart measured at 1 M credentials only.');
  return { name: 'store', tables: [tput, rs], notes };
}

// `node build/bench/store.js [--quick]` runs this section alone
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/')) && process.argv[1].endsWith('bench/store.js')) {
  const quick = process.argv.includes('--quick');
  bench({ quick, log: (l) => process.stderr.write(l + '\n') }).then((s) => {
    for (const t of s.tables) { console.log(`\n${t.title}\n${t.headers.join(' | ')}`); for (const r of t.rows) console.log(r.join(' | ')); }
    for (const n of s.notes) console.log('- ' + n);
  }, (e) => { console.error(e); process.exitCode = 1; });
}
