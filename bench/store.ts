/**
 * Store benchmarks (issue 4):
 *  1. durable (LMDB) vs in-memory throughput at 1, 16 and 64 messages per
 *     frame, through the server's real decision pipeline (src/server/hub.ts:
 *     decode, idempotency, one engine.apply per frame, reply encoding, event
 *     records, store.append; replies released after the commit), in process,
 *     no sockets. Many frames in flight, as from many controllers.
 *  2. time from start to serving with 1 M and 10 M credentials: open the
 *     store + newest snapshot + journal tail replay (openDurableEngine).
 *  3. the journal alone: appends/s vs records per append, journal
 *     syncs/s vs offered rate, bytes written per record (what reached the disk: disk-writes.ts),
 *     against the previous layout's figures.
 *  4. D/index's cost per event as the store grows (bench/index-cost.ts).
 *  `node build/bench/store.js --journal [--quick]` runs only 3.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Hub, type ControllerCtx } from '../src/server/hub.js';
import { Metrics } from '../src/server/metrics.js';
import { openStore } from '../src/store/index.js';
import { openDurableEngine } from '../src/store/recovery.js';
import type { CoreOp, Engine } from '../src/engine/types.js';
import type { EventRecord, IdemRecord, Store } from '../src/store/types.js';
import type { LmdbStore } from '../src/store/lmdb-store.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';
import { indexCostTable } from './index-cost.js';
import { deviceWrittenBytes } from './disk-writes.js';

export const CONTROLLERS = 8;
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

/**
 * A Hub over `store` and `engine` on the bench site (no stream, silent log) with the contexts of its
 * controllers c0..c7, and a generator of random badge frames for controller c (ids counted per controller).
 */
export function benchHub(store: Store, engine: Engine, text: string): { hub: Hub; ctxs: ControllerCtx[]; frame(c: number, n: number, nCreds: number): Record<string, unknown>[] } {
  const hub = new Hub({
    store, engine, configText: text, log: pino({ level: 'silent' }), metrics: new Metrics(), sink: noSink,
    rebuild: async (t) => (await openDurableEngine({ store, configText: t })).engine,
  });
  const ctxs: ControllerCtx[] = Array.from({ length: CONTROLLERS }, (_, c) => hub.controller(`c${c}`)!);
  const ids = new Array<number>(CONTROLLERS).fill(0);
  let x = 0x9e3779b9;
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const frame = (c: number, n: number, nCreds: number): Record<string, unknown>[] => {
    const out = new Array(n);
    for (let k = 0; k < n; k++) {
      const r = rand();
      out[k] = { t: 'badge', id: ++ids[c]!, cred: 1_000_000 + (r % nCreds), reader: r & 1 ? `c${c}-out` : `c${c}-in` };
    }
    return out;
  };
  return { hub, ctxs, frame };
}

interface Run { decisions: number; seconds: number; perSec: number }

/** Drives the hub with `perFrame`-message frames for `ms`, keeping `window` frames in flight. */
export async function drive(store: Store, perFrame: number, ms: number, nCreds: number): Promise<Run> {
  const text = benchSiteText();
  const { engine } = await openDurableEngine({ store, configText: text, core: 'wasm' });
  const { hub, ctxs, frame: badges } = benchHub(store, engine, text);
  const frame = (c: number): Record<string, unknown>[] => badges(c, perFrame, nCreds);
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

// ---- the journal alone: group commit, syncs, bytes written ------------------------------

/** `per` general-path records (with their 40-byte replies) for one append, random credentials over 1 M */
function records(per: number, next: () => number): { events: EventRecord[]; idem: IdemRecord[] } {
  const events: EventRecord[] = [], idem: IdemRecord[] = [];
  const reply = new Uint8Array(40).fill(7);
  for (let k = 0; k < per; k++) {
    const id = next(), c = 1_000_000 + Math.floor(Math.random() * 1_000_000), ctl = `c${id & 7}`, reader = `${ctl}-in`;
    events.push({ at: 1_767_261_600_000 + id, kind: 'badge', controller: ctl, reader, cred: String(c), id, grant: true, reason: 'ok', violations: [], area: 'venue', op: { t: 'badge', cred: c, reader, ts: 1_767_261_600_000 + id } });
    idem.push({ controller: ctl, id, reply });
  }
  return { events, idem };
}

interface JournalRun { appendsPerS: number; eventsPerS: number; syncsPerS: number; eventsPerSync: number; bytesPerEvent: number; p50ms: number; p99ms: number }

/**
 * Appends `per` records per append.store.append for `ms`: closed loop with `window` appends in flight
 * (offered = 0), or open loop at `offered` appends per second. Bytes: what reached the disk
 * (disk-writes.ts) over the run plus the indexer catching up afterwards (D/index writes count too).
 */
async function journalRun(per: number, ms: number, window: number, offered = 0): Promise<JournalRun> {
  const dir = mkdtempSync(join(tmpdir(), 'apb-bench-journal-'));
  const store = await openStore(dir, { retention: { intervalMs: 0 } }) as LmdbStore;
  let id = 0;
  const next = (): number => ++id;
  try {
    for (let i = 0; i < 20_000 / per; i++) { const r = records(per, next); await store.append(r.events, r.idem); } // warm, and a store that is not empty
    await store.settle();
    const b0 = deviceWrittenBytes(dir), s0 = store.syncs, t0 = performance.now();
    let inflight = 0, appends = 0;
    const lat: number[] = [];
    const one = (): void => {
      const r = records(per, next);
      const t = performance.now();
      inflight++;
      store.append(r.events, r.idem).then(() => { inflight--; appends++; if (lat.length < 200_000) lat.push(performance.now() - t); }, () => { inflight--; });
    };
    await new Promise<void>((resolve) => {
      let issued = 0;
      const pump = (): void => {
        const now = performance.now();
        if (now - t0 >= ms) { if (inflight === 0) resolve(); else setImmediate(pump); return; }
        if (offered > 0) {
          const due = Math.floor(((now - t0) / 1000) * offered);
          while (issued < due) { one(); issued++; }
          setTimeout(pump, 1);
        } else {
          for (let n = 0; inflight < window && n < window; n++) one();
          setImmediate(pump);
        }
      };
      pump();
    });
    const seconds = (performance.now() - t0) / 1000;
    const syncs = store.syncs - s0;
    await store.settle();
    const bytes = deviceWrittenBytes(dir) - b0;
    lat.sort((a, b) => a - b);
    const events = appends * per;
    return {
      appendsPerS: appends / seconds, eventsPerS: events / seconds, syncsPerS: syncs / seconds, eventsPerSync: events / Math.max(1, syncs),
      bytesPerEvent: bytes / events, p50ms: lat[Math.floor(lat.length * 0.5)] ?? NaN, p99ms: lat[Math.floor(lat.length * 0.99)] ?? NaN,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The numbers of the previous layout (indexes written by the main thread into the journal's own
 * transactions), measured once with the same method (closed loop, 4 s, 4096 records in flight) at
 * commit 7fbbc67, before the journal-only layout: kept here as the baseline because that layout no longer exists.
 */
const PREVIOUS_LAYOUT: Record<number, { eventsPerS: number; syncsPerS: number; bytesPerEvent: number }> = {
  1: { eventsPerS: 68_540, syncsPerS: 19, bytesPerEvent: 7370 },
  64: { eventsPerS: 75_595, syncsPerS: 21, bytesPerEvent: 7965 },
};

export async function journalTables(opts: BenchOptions): Promise<{ tables: BenchTable[]; notes: string[] }> {
  const ms = opts.quick ? 1500 : 4000;
  const groups: BenchTable = {
    title: 'The journal alone: appends/s vs records per append (closed loop, 4096 records in flight; each append = one frame)',
    headers: ['records per append', 'appends/s', 'records/s', 'journal syncs/s', 'records per sync', 'bytes written per record', 'previous layout: records/s', 'previous layout: bytes per record', 'ratio bytes new/previous'],
    rows: [],
  };
  for (const per of [1, 8, 64, 256]) {
    const r = await journalRun(per, ms, Math.max(4, Math.ceil(4096 / per)));
    opts.log(`  store: journal ${per}/append ${Math.round(r.eventsPerS)} records/s, ${Math.round(r.syncsPerS)} syncs/s, ${Math.round(r.bytesPerEvent)} B/record`);
    const old = PREVIOUS_LAYOUT[per];
    groups.rows.push([per, Math.round(r.appendsPerS), Math.round(r.eventsPerS), Math.round(r.syncsPerS), Math.round(r.eventsPerSync), Math.round(r.bytesPerEvent),
      old ? old.eventsPerS : '-', old ? old.bytesPerEvent : '-', old ? (r.bytesPerEvent / old.bytesPerEvent).toFixed(3) : '-']);
  }
  const rates: BenchTable = {
    title: 'Continuous group commit: journal syncs/s vs offered rate (open loop, 1 record per append)',
    headers: ['offered appends/s', 'achieved appends/s', 'journal syncs/s', 'records per sync', 'bytes written per record', 'commit p50 ms', 'commit p99 ms'],
    rows: [],
  };
  for (const offered of opts.quick ? [1000, 10_000, 50_000] : [500, 2000, 5000, 10_000, 20_000, 50_000, 100_000]) {
    const r = await journalRun(1, ms, 0, offered);
    opts.log(`  store: offered ${offered}/s: ${Math.round(r.syncsPerS)} syncs/s, ${r.eventsPerSync.toFixed(1)} per sync`);
    rates.rows.push([offered, Math.round(r.appendsPerS), Math.round(r.syncsPerS), r.eventsPerSync.toFixed(1), Math.round(r.bytesPerEvent), r.p50ms.toFixed(2), r.p99ms.toFixed(2)]);
  }
  const notes = [
    'Syncs: fdatasyncs of the write-ahead log (apb_storage_syncs_total), the only write on the reply path; the LMDB journal is put behind it in gathered transactions. Under the default durability (commit) a sync starts at most every 5 ms (SYNC_GAP_MS, src/store/wal.ts) and covers every write since the previous one, so the rate stays under 200/s and records per sync = offered rate / sync rate; under flush each sync starts when the previous ends (bounded by 1 / fdatasync time).',
    `Bytes written per record: what the disk holding the store received (its device counter, after a sync of the file system) over the run plus the indexer catching up. Until 2026-12-07 this was /proc/self/io write_bytes, which on this kernel counts a whole page-cache folio (up to 2 MiB) each time a page of it is dirtied again after a sync; the previous layout's figures (indexes inside the journal's transactions, commit 7fbbc67) were measured that way.`,
  ];
  return { tables: [groups, rates], notes };
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
  const journal = await journalTables(opts);
  const ixCost = await indexCostTable(opts);
  return { name: 'store', tables: [tput, ...journal.tables, ...ixCost.tables, rs], notes: [...notes, ...journal.notes, ...ixCost.notes] };
}

// `node build/bench/store.js [--quick]` runs this section alone
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/')) && process.argv[1].endsWith('bench/store.js')) {
  const quick = process.argv.includes('--quick');
  const run = process.argv.includes('--journal')
    ? (o: BenchOptions): Promise<BenchSection> => journalTables(o).then((j) => ({ name: 'store', ...j }))
    : bench;
  run({ quick, log: (l) => process.stderr.write(l + '\n') }).then((s) => {
    for (const t of s.tables) { console.log(`\n${t.title}\n${t.headers.join(' | ')}`); for (const r of t.rows) console.log(r.join(' | ')); }
    for (const n of s.notes) console.log('- ' + n);
  }, (e) => { console.error(e); process.exitCode = 1; });
}
