/**
 * Longest event-loop stall during a snapshot, at 1 M and
 * 10 M credentials, old against new in the same run:
 *  - "inline" (the baseline, the old snapshotter): engine.snapshot() on the
 *    main thread, then the file is written;
 *  - "worker": a replica engine in a worker thread, fed from the journal,
 *    writes the file; the main thread only posts two messages and records the
 *    entry (src/store/replica-snapshotter.ts).
 *
 * Setup: a real LMDB data directory and the server's decision pipeline
 * (src/server/hub.ts) in process. The engine is filled with N credentials
 * through WasmCore.badgeInts (fast, as bench/core.ts), a seed snapshot of it
 * is written once, then a paced load of badges runs through the hub (8
 * controllers, frames of 8, one frame per ms: ~8 k decisions/s, journaled)
 * while snapshots are taken. Measured on the main thread during each snapshot:
 * the longest gap of a 1 ms timer ping loop (the stall a decision waiting in
 * the queue would see), perf_hooks.monitorEventLoopDelay max, and the longest
 * time from hub.handle() to its replies.
 *
 * `node build/bench/snapshot-stall.js [--quick] [--creds N]` runs it alone;
 * `bench(opts)` is the bench-runner module interface (bench/types.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openStore } from '../src/store/index.js';
import { openDurableEngine, startSnapshotter, type Snapshotter } from '../src/store/recovery.js';
import type { ReplicaSnapshotter } from '../src/store/replica-snapshotter.js';
import type { WasmCore } from '../src/engine/wasm-core.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';
import { CONTROLLERS, benchHub, benchSiteText } from './store.js';

const T0 = 1_767_261_600_000;

export interface StallRun {
  mode: 'inline' | 'worker';
  /** per snapshot: wall time of snapshotNow() and the longest main-thread stall while it ran (ms) */
  snapshots: { ms: number; stallMs: number; loopDelayMaxMs: number; replyMaxMs: number }[];
  /** the same measured with no snapshot running (the noise floor of this machine and load) */
  idle: { stallMs: number; loopDelayMaxMs: number; replyMaxMs: number };
}
export interface StallResult { creds: number; snapshotMB: number; decisionsPerSec: number; runs: StallRun[] }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Fills an engine with `creds` credentials on a fresh LMDB directory, then measures `rounds`
 * snapshots per mode (inline first, then worker) under a paced hub load.
 */
export async function measureSnapshotStall(opts: { creds: number; rounds?: number; log?: (l: string) => void }): Promise<StallResult> {
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'apb-bench-snapstall-'));
  const text = benchSiteText();
  const store = await openStore(dir, { retention: { intervalMs: 0 } });
  try {
    const { engine } = await openDurableEngine({ store, configText: text, core: 'wasm' });
    const core = engine.core as WasmCore;
    const reader = engine.site.readerIndex.get('c0-in')!;
    engine.tick(T0);
    const chunk = 1 << 16;
    const lo = new Uint32Array(chunk), hi = new Uint32Array(chunk), rd = new Int32Array(chunk).fill(reader), g = new Uint8Array(chunk);
    const t0 = performance.now();
    for (let base = 0; base < opts.creds; base += chunk) {
      const k = Math.min(chunk, opts.creds - base);
      for (let i = 0; i < k; i++) lo[i] = 1_000_000 + base + i;
      core.badgeInts(lo.subarray(0, k), hi.subarray(0, k), rd.subarray(0, k), T0, g.subarray(0, k));
    }
    log(`  snapshot-stall: ${opts.creds.toLocaleString('en-US')} credentials loaded in ${Math.round(performance.now() - t0)} ms`);
    // the seed snapshot (setup only): what the replica restores, as after any restart
    const seed = engine.snapshot();
    const snapshotMB = seed.length / 2 ** 20;
    await store.saveSnapshot(store.lastSeq, seed, text, engine.clock);
    log(`  snapshot-stall: seed snapshot ${snapshotMB.toFixed(0)} MB written`);

    const { hub, ctxs, frame: badges } = benchHub(store, engine, text);

    // ── paced load and the probes ──
    let decided = 0, errors = 0, replyMax = 0, stallMax = 0, turn = 0;
    const load = setInterval(() => {
      const c = turn++ % CONTROLLERS;
      const frame = badges(c, 8, opts.creds);
      const t = performance.now();
      const fin = (replies: { code?: string }[]): void => {
        decided += replies.length;
        for (const rep of replies) if (rep.code) errors++;
        replyMax = Math.max(replyMax, performance.now() - t);
      };
      const r = hub.handle(ctxs[c]!, frame);
      if (Array.isArray(r)) fin(r); else r.then(fin, () => { errors++; });
    }, 1);
    let last = performance.now(), pinging = true;
    const ping = (): void => {
      const now = performance.now();
      stallMax = Math.max(stallMax, now - last);
      last = now;
      if (pinging) setTimeout(ping, 1);
    };
    setTimeout(ping, 1);
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const window = async (fn: () => Promise<unknown>): Promise<{ ms: number; stallMs: number; loopDelayMaxMs: number; replyMaxMs: number }> => {
      stallMax = 0; replyMax = 0; last = performance.now(); h.reset();
      const t = performance.now();
      await fn();
      const ms = performance.now() - t;
      await sleep(20); // replies of frames queued behind a stall arrive
      return { ms, stallMs: stallMax, loopDelayMaxMs: h.max / 1e6, replyMaxMs: replyMax };
    };

    const started = performance.now();
    const runs: StallRun[] = [];
    try {
      await sleep(500); // warm-up
      for (const mode of ['inline', 'worker'] as const) {
        const snap: Snapshotter = startSnapshotter(store, () => hub.engine, { mode, everyEvents: 1e15, intervalMs: 1e15, onStop: false, log: undefined });
        if (mode === 'worker') {
          const tr = performance.now();
          await (snap as ReplicaSnapshotter).whenReady();
          log(`  snapshot-stall: worker ready (restored ${snapshotMB.toFixed(0)} MB) in ${Math.round(performance.now() - tr)} ms`);
        }
        const idle = await window(() => sleep(1000));
        log(`  snapshot-stall: ${mode}, no snapshot for 1 s: longest stall ${idle.stallMs.toFixed(1)} ms, reply max ${idle.replyMaxMs.toFixed(1)} ms`);
        const run: StallRun = { mode, snapshots: [], idle };
        for (let k = 0; k < rounds; k++) {
          await sleep(300);
          let seq: number | undefined;
          const w = await window(async () => { seq = await snap.snapshotNow(); });
          if (seq === undefined) throw new Error(`snapshot-stall: the ${mode} snapshot was not taken`);
          run.snapshots.push(w);
          log(`  snapshot-stall: ${mode} snapshot ${k + 1}: ${Math.round(w.ms)} ms, longest stall ${w.stallMs.toFixed(1)} ms, reply max ${w.replyMaxMs.toFixed(1)} ms`);
        }
        await snap.stop();
        runs.push(run);
      }
    } finally {
      clearInterval(load);
      pinging = false;
      h.disable();
    }
    const seconds = (performance.now() - started) / 1000;
    await hub.drain();
    if (errors) throw new Error(`snapshot-stall: ${errors} messages answered with an error`);
    return { creds: opts.creds, snapshotMB, decisionsPerSec: decided / seconds, runs };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(opts: BenchOptions & { creds?: number[] }): Promise<BenchSection> {
  const sizes = opts.creds ?? (opts.quick ? [1_000_000] : [1_000_000, 10_000_000]);
  const table: BenchTable = {
    title: 'Longest main-thread stall during a snapshot (paced load ~8 k decisions/s through the hub, LMDB)',
    headers: ['credentials', 'snapshot MB', 'snapshotter', 'snapshot wall ms', 'longest stall ms (1 ms ping)', 'event-loop delay max ms', 'longest reply ms', 'no-snapshot stall ms', 'stall ratio to inline'],
    rows: [],
  };
  const notes: string[] = [];
  let at10: number | undefined;
  for (const creds of sizes) {
    const r = await measureSnapshotStall({ creds, rounds: opts.quick ? 2 : 3, log: opts.log });
    const worst = (run: StallRun, k: 'ms' | 'stallMs' | 'loopDelayMaxMs' | 'replyMaxMs'): number => Math.max(...run.snapshots.map((s) => s[k]));
    const base = worst(r.runs[0]!, 'stallMs');
    for (const run of r.runs) {
      table.rows.push([creds.toLocaleString('en-US'), r.snapshotMB.toFixed(0), run.mode === 'inline' ? 'inline (before: engine.snapshot() on the main thread)' : 'worker (after: replica engine in a worker thread)',
        Math.round(worst(run, 'ms')), worst(run, 'stallMs').toFixed(1), worst(run, 'loopDelayMaxMs').toFixed(1), worst(run, 'replyMaxMs').toFixed(1),
        run.idle.stallMs.toFixed(1), (worst(run, 'stallMs') / base).toFixed(3)]);
      if (creds === 10_000_000 && run.mode === 'worker') at10 = worst(run, 'stallMs');
    }
  }
  notes.push('Stall = the longest gap between two callbacks of a 1 ms timer on the main thread while snapshotNow() runs (worst of the rounds); "no-snapshot stall" is the same over 1 s without a snapshot, the floor set by the load and this shared machine. The worker row\'s memory cost: a second copy of the engine state (the replica) plus, while a snapshot is written, the snapshot bytes, both in the worker.');
  if (at10 !== undefined) notes.push(`Target "a snapshot never stalls the event loop for more than a few milliseconds at 10 M credentials": longest stall ${at10.toFixed(1)} ms with the worker.`);
  return { name: 'snapshot', tables: [table], notes };
}

// `node build/bench/snapshot-stall.js [--quick] [--creds N]` runs this section alone
if (process.argv[1]?.endsWith('bench/snapshot-stall.js')) {
  const quick = process.argv.includes('--quick');
  const ci = process.argv.indexOf('--creds');
  const creds = ci > 0 ? [Number(process.argv[ci + 1])] : undefined;
  const o: BenchOptions & { creds?: number[] } = { quick, log: (l) => process.stderr.write(l + '\n') };
  if (creds) o.creds = creds;
  bench(o).then((s) => {
    for (const t of s.tables) { console.log(`\n${t.title}\n${t.headers.join(' | ')}`); for (const r of t.rows) console.log(r.join(' | ')); }
    for (const n of s.notes) console.log('- ' + n);
  }, (e) => { console.error(e); process.exitCode = 1; });
}
