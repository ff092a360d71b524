/**
 * Recovery and snapshots (SPEC 9, issue 4).
 *
 * The event log is the journal: every record that changed (or may have
 * changed) engine state carries `op`, the SPEC 11 replay object of the core
 * op, and `at`, the engine clock it was applied at. The engine is
 * deterministic in the sequence of apply()/reconfigure() calls and their
 * clocks, so:
 *
 *   engine at seq N = restore(snapshot at S) + replay of records S < seq <= N
 *
 * where a record with op.t === 'config' is a reconfigure to op.text and any
 * other op goes through decodeMessage(op, site, {mode:'replay'}) and
 * engine.apply([op], at). Idempotency replies are not in the engine: they
 * live in the log beside their events (the store keeps them exact).
 */
import { loadSiteText } from '../config/load.js';
import type { CompiledSite } from '../config/types.js';
import { createEngine } from '../engine/engine.js';
import type { Engine } from '../engine/types.js';
import { JournalReplica } from './replica.js';
import { canSnapshotInWorker, startReplicaSnapshotter } from './replica-snapshotter.js';
import type { EventRecord, Store } from './types.js';

/** pino-compatible subset */
export interface RecoveryLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DurableEngine {
  engine: Engine;
  site: CompiledSite;
  /** journal records re-applied after the snapshot */
  replayed: number;
  /** seq of the snapshot restored (0: none, replayed from the start) */
  fromSnapshot: number;
  /** the given configText differed from the one in force and was swapped in (and journaled) */
  configChanged: boolean;
  /** ms spent (restore + replay) */
  ms: number;
  /** where the time went: reading the snapshot, engine.restore, journal replay (ms) */
  timings: { read: number; restore: number; replay: number };
}

export async function openDurableEngine(opts: {
  store: Store; configText: string; core?: 'wasm' | 'reference'; log?: RecoveryLog | undefined;
}): Promise<DurableEngine> {
  const { store, log } = opts;
  const core = opts.core ?? 'wasm';
  const t0 = performance.now();
  // newest snapshot (a store that keeps snapshots in files hands over the file: the engine reads it
  // straight into its own memory), then the journal after it; ops with the same clock as one batch
  // (replica.ts: the snapshot worker's replica engine is built by the same code)
  const replica = new JournalReplica(store, core, opts.configText, log);
  replica.restoreSnapshot();
  replica.catchUp();
  const { replayed, skipped, fromSnapshot: from, timings } = replica;
  let engine = replica.engine;
  let text = replica.text;

  let configChanged = false;
  if (!engine) {
    // a new data directory: the first record of the journal is the configuration
    text = opts.configText;
    engine = createEngine(loadSiteText(text).site, { core });
    await journalConfig(store, engine, text);
  } else if (text !== opts.configText) {
    engine.reconfigure(loadSiteText(opts.configText).site);
    text = opts.configText;
    configChanged = true;
    await journalConfig(store, engine, text);
  }
  const ms = performance.now() - t0;
  log?.info({ fromSnapshot: from, replayed, skipped, configChanged, ms: Math.round(ms) }, 'engine recovered from the store');
  return { engine, site: engine.site, replayed, fromSnapshot: from, configChanged, ms, timings };
}

async function journalConfig(store: Store, engine: Engine, text: string): Promise<void> {
  const rec: EventRecord = { at: Math.max(Date.now(), engine.clock), kind: 'config', who: 'startup', op: { t: 'config', text } };
  await store.append([rec], []);
  await store.saveConfig(text);
}

// ---------- snapshots ----------

export interface SnapshotterOptions {
  /** snapshot at least this often while events arrive; default 60 s */
  intervalMs?: number;
  /** and after this many events; default 500 000 */
  everyEvents?: number;
  /** how often the conditions are checked; default 1 s */
  checkMs?: number;
  /** take a last snapshot in stop() (fast restart); default true */
  onStop?: boolean;
  log?: RecoveryLog | undefined;
  /**
   * 'worker' (the default for stores that keep snapshot files, i.e. LMDB): a replica engine in a
   * worker thread, fed from the journal, writes the snapshots; the main thread never copies its
   * engine (replica-snapshotter.ts). 'inline': engine.snapshot() on the calling thread, which
   * stalls it for the copy (~1 s at 10 M credentials); what memory stores use (their journal is
   * not readable from another thread), and the baseline of bench/snapshot-stall.ts.
   */
  mode?: 'worker' | 'inline';
  /** worker mode: a worker that does not become ready or answer within this is restarted; default 10 min */
  workerTimeoutMs?: number;
  /** worker mode: first restart delay after the worker failed (doubles up to 60 s); default 1 s */
  restartMs?: number;
  /** worker mode: while no worker is ready, an engine with fewer credentials than this is snapshotted inline; default 20 000 */
  inlineBelow?: number;
}

export interface Snapshotter {
  /** takes a snapshot now if anything changed since the last one; resolves with its seq (or undefined) */
  snapshotNow(): Promise<number | undefined>;
  /** the engine was rebuilt (e.g. after a storage failure) */
  setEngine(e: Engine): void;
  stop(): Promise<void>;
}

/**
 * Snapshots the engine on a schedule. With a store that keeps snapshot files (LMDB) a replica
 * engine in a worker thread writes them (replica-snapshotter.ts, snapshot-worker.ts) and the
 * calling thread never copies its engine; otherwise (memory stores, or mode 'inline'):
 *
 * The engine image and store.lastSeq are
 * read together, synchronously (the hub applies a frame before appending
 * it, so every record up to lastSeq is in the image); the bytes are written
 * after every append up to that seq has committed, and only if none failed
 * (a failed commit means the image may hold an effect that is not in the
 * journal; the server rebuilds the engine, and setEngine() lifts the ban).
 * Events older than a snapshot stay in the log (it is also the audit log);
 * recovery simply starts after the snapshot, and retention deletes by age
 * and size. The store keeps the newest two snapshots.
 */
export function startSnapshotter(store: Store, engine: Engine | (() => Engine), opts: SnapshotterOptions = {}): Snapshotter {
  if (opts.mode !== 'inline' && canSnapshotInWorker(store)) {
    // a plain engine is followed through setEngine() (only for the small-engine fallback while the worker starts)
    let fixed = typeof engine === 'function' ? undefined : engine;
    const current = typeof engine === 'function' ? engine : (): Engine => fixed!;
    const s = startReplicaSnapshotter(store, current, opts);
    const setEngine = s.setEngine.bind(s);
    s.setEngine = (e: Engine): void => { if (typeof engine !== 'function') fixed = e; setEngine(e); };
    return s;
  }
  return startInlineSnapshotter(store, engine, opts);
}

/** engine.snapshot() on the calling thread (memory stores; the baseline of bench/snapshot-stall.ts) */
function startInlineSnapshotter(store: Store, engine: Engine | (() => Engine), opts: SnapshotterOptions): Snapshotter {
  // a getter follows the server's engine as it is rebuilt; a plain engine is replaced by setEngine()
  let fixed: Engine | undefined = typeof engine === 'function' ? undefined : engine;
  const getter = typeof engine === 'function' ? engine : undefined;
  const current = (): Engine => getter ? getter() : fixed!;
  const intervalMs = opts.intervalMs ?? 60_000;
  const everyEvents = opts.everyEvents ?? 500_000;
  let lastSeq = store.latestSnapshot()?.seq ?? 0;
  let lastAt = Date.now();
  let seenEngine: Engine | undefined = current();
  let failuresAtEngine = store.failures;
  let running: Promise<number | undefined> | undefined;
  let stopped = false;

  const take = async (): Promise<number | undefined> => {
    const e = current();
    if (e !== seenEngine) { seenEngine = e; failuresAtEngine = store.failures; }
    if (!store.healthy || store.failures !== failuresAtEngine) return undefined;
    const seq = store.lastSeq;
    if (seq <= lastSeq) return undefined;
    const failures = store.failures;
    const bytes = e.snapshot(store.takeSnapshotBuffer?.()); // synchronous: consistent with `seq`
    const text = store.configText();
    const at = e.clock;
    await store.whenCommitted();      // every record up to `seq` is in the journal, or one failed
    if (store.failures !== failures) return undefined;
    const t0 = performance.now();
    await store.saveSnapshot(seq, bytes, text, at);
    lastSeq = seq;
    lastAt = Date.now();
    opts.log?.info({ seq, bytes: bytes.length, ms: Math.round(performance.now() - t0) }, 'snapshot written');
    return seq;
  };
  const snapshotNow = (): Promise<number | undefined> => {
    running ??= take().catch((err: unknown) => {
      opts.log?.warn({ err: (err as Error).message }, 'snapshot failed');
      return undefined;
    }).finally(() => { running = undefined; });
    return running;
  };
  const timer = setInterval(() => {
    if (stopped || running) return;
    const due = store.lastSeq - lastSeq >= everyEvents || (store.lastSeq > lastSeq && Date.now() - lastAt >= intervalMs);
    if (due) void snapshotNow();
  }, opts.checkMs ?? 1000);
  timer.unref();

  return {
    snapshotNow,
    setEngine(e: Engine): void {
      if (!getter) fixed = e;
      seenEngine = e; failuresAtEngine = store.failures;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      if (opts.onStop !== false) await snapshotNow();
    },
  };
}
