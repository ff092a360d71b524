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
import { closeSync, openSync, readFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';
import { loadSiteText, type Issue, type LoadedSite } from '../config/load.js';
import type { CompiledSite } from '../config/types.js';
import { createEngine } from '../engine/engine.js';
import { decodeMessage } from '../engine/messages.js';
import type { CoreOp, Engine } from '../engine/types.js';
import { ApbError } from '../errors.js';
import { configOf } from './common.js';
import type { EventRecord, SnapshotFileInfo, Store } from './types.js';

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
  let engine: Engine | undefined;
  let text: string | undefined;
  let from = 0;

  // a store that keeps snapshots in files hands over the file: the engine reads it straight into its own memory
  const file = store.latestSnapshotFile?.();
  const snap = file ?? store.latestSnapshot();
  const timings = { read: performance.now() - t0, restore: 0, replay: 0 };
  if (snap) {
    text = snap.configText ?? store.configText() ?? opts.configText;
    engine = createEngine(loadJournaledSite(text, 'configuration in force at the snapshot').site, { core });
    try {
      const tr = performance.now();
      if ('bytes' in snap) engine.restore(snap.bytes);
      else restoreFromFile(engine, snap);
      timings.restore = performance.now() - tr;
      from = snap.seq;
    } catch (e) {
      // e.g. a snapshot of the other core kind: replay the whole journal when it is still all there
      const first = store.stats().firstSeq;
      if (first > 1) throw new ApbError('internal', `cannot restore the snapshot at seq ${snap.seq} (${(e as Error).message}) and the journal before it was deleted by retention`);
      log?.warn({ seq: snap.seq, err: (e as Error).message }, 'snapshot not restorable by this engine core: replaying the whole journal');
      engine = undefined; text = undefined;
    }
  }

  // replay the journal; ops with the same clock go to the engine as one batch
  const tReplay = performance.now();
  let replayed = 0;
  let skipped = 0;
  let batch: CoreOp[] = [];
  let batchAt = 0;
  const flush = (): void => {
    if (batch.length) { engine!.apply(batch, batchAt); batch = []; }
  };
  for (const rec of store.since(from)) {
    if (rec.op === undefined || rec.op === null) continue;
    const cfg = configOf(rec);
    if (cfg !== undefined) {
      flush();
      const site = loadJournaledSite(cfg, `configuration journaled at seq ${rec.seq}`).site;
      if (!engine) engine = createEngine(site, { core });
      else engine.reconfigure(site);
      text = cfg;
      replayed++;
      continue;
    }
    if (!engine) {
      // the journal starts without a config record (written by an older version or by hand)
      text = store.configText() ?? opts.configText;
      engine = createEngine(loadJournaledSite(text, 'configuration in force').site, { core });
    }
    let op: CoreOp | null;
    try {
      op = decodeMessage(rec.op as Record<string, unknown>, engine.site, { mode: 'replay' }).op;
    } catch (e) {
      skipped++;
      if (skipped <= 5) log?.warn({ seq: rec.seq, err: (e as Error).message }, 'journal record not replayable; skipped');
      continue;
    }
    if (!op) continue;
    if (rec.at !== batchAt) { flush(); batchAt = rec.at; }
    batch.push(op);
    replayed++;
  }
  flush();
  timings.replay = performance.now() - tReplay;

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

/**
 * Loads a configuration from the journal or a snapshot. It was valid when it was put in force, but a
 * later version may bound its fields more tightly (issue 10: tokens of at least 16 characters), and
 * refusing history would make the data directory impossible to open. Those bounds guard new input:
 * when the only problems are tokens, they are replaced by placeholders. The engine never uses tokens,
 * and the configuration given at start-up (validated in full) is put in force at the end of recovery.
 */
function loadJournaledSite(text: string, name: string): LoadedSite {
  try {
    return loadSiteText(text, name);
  } catch (e) {
    const errors = (e as { detail?: { errors?: Issue[] } }).detail?.errors;
    if (!(e instanceof ApbError) || e.code !== 'invalid_config' || !errors?.length || !errors.every((i) => /\.token$/.test(i.path))) throw e;
    const doc = parseDocument(text, { intAsBigInt: true });
    for (const list of ['controllers', 'users']) {
      const items = doc.get(list);
      if (!isSeq(items)) continue;
      items.items.forEach((item, k) => { if (isMap(item) && item.has('token')) item.set('token', `journaled-${list}-${k}-token-placeholder`); });
    }
    return loadSiteText(doc.toString(), name);
  }
}

/** engine.restore of a snapshot file, read directly into the engine when it can (no intermediate buffer) */
function restoreFromFile(engine: Engine, file: SnapshotFileInfo): void {
  const fd = openSync(file.path, 'r');
  try {
    if (engine.restoreFromFile) engine.restoreFromFile(fd, 0, file.size);
    else engine.restore(readFileSync(fd));
  } finally { closeSync(fd); }
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
}

export interface Snapshotter {
  /** takes a snapshot now if anything changed since the last one; resolves with its seq (or undefined) */
  snapshotNow(): Promise<number | undefined>;
  /** the engine was rebuilt (e.g. after a storage failure) */
  setEngine(e: Engine): void;
  stop(): Promise<void>;
}

/**
 * Snapshots the engine on a schedule. The engine image and store.lastSeq are
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
    const bytes = e.snapshot();       // synchronous: consistent with `seq`
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
