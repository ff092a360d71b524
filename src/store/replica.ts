/**
 * The journal applier: an engine rebuilt from a Store the way
 * recovery rebuilds it, and kept up to date by applying the journal's records in
 * order. Used twice:
 *  - openDurableEngine (recovery.ts): restore the newest snapshot, apply the whole
 *    tail once, then put the given configuration in force;
 *  - the snapshot worker (snapshot-worker.ts): a replica engine in a worker thread,
 *    restored the same way from a read-only view of the data directory, that applies
 *    the records the main thread reports committed and writes the snapshot files, so
 *    the main thread never copies its engine.
 * One code path for both, so a replica's snapshot is exactly the engine recovery
 * would build at that seq.
 *
 * Reads go through the public Store API only: latestSnapshotFile()/latestSnapshot(),
 * configText(), stats().firstSeq and since(afterSeq).
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';
import { loadSiteText, type Issue, type LoadedSite } from '../config/load.js';
import { createEngine, type CoreKind } from '../engine/engine.js';
import { checkReader, decodeMessage, parseTs } from '../engine/messages.js';
import { parseCred } from '../engine/cred.js';
import type { CoreOp, Engine } from '../engine/types.js';
import { ApbError } from '../errors.js';
import { configOf } from './common.js';
import { f64At, groupEvents, recordLength, type CompactGroup } from './compact-journal.js';
import type { CompactRun, EventRecord, SnapshotFileInfo, SnapshotInfo, Store } from './types.js';

/** pino-compatible subset */
export interface ReplicaLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export class JournalReplica {
  engine: Engine | undefined;
  /** the configuration text in force in `engine` */
  text: string | undefined;
  /** every journal record with seq <= position has been applied (records of failed commits never exist) */
  position = 0;
  /** seq of the snapshot restored (0: none) */
  fromSnapshot = 0;
  /** records applied (config records included) and records skipped as not replayable, since creation */
  replayed = 0;
  skipped = 0;
  /** compact groups applied whole (applyGroup), since creation */
  groups = 0;
  readonly timings = { read: 0, restore: 0, replay: 0 };
  private batch: CoreOp[] = [];
  private batchAt = 0;

  /**
   * @param fallbackText the configuration to assume when neither the snapshot, the journal nor the
   *   store names one (a journal written by an older version or by hand)
   */
  constructor(private readonly store: Store, private readonly core: CoreKind, private readonly fallbackText: string,
    private readonly log?: ReplicaLog) {}

  /**
   * Restores the newest snapshot (the file straight into the engine when the store keeps files).
   * A snapshot this core cannot restore (e.g. of the other core kind) is ignored when the whole
   * journal is still there (then everything is replayed); otherwise that is an error.
   */
  restoreSnapshot(): void {
    const t0 = performance.now();
    const snap = this.newestSnapshot();
    this.timings.read = performance.now() - t0;
    if (!snap) return;
    const engine = this.engineFor(snap); // a configuration that does not load is an error, as it always was
    try {
      this.restoreInto(engine, snap);
    } catch (e) {
      const first = this.store.stats().firstSeq;
      if (first > 1) throw new ApbError('internal', `cannot restore the snapshot at seq ${snap.seq} (${(e as Error).message}) and the journal before it was deleted by retention`);
      this.log?.warn({ seq: snap.seq, err: (e as Error).message }, 'snapshot not restorable by this engine core: replaying the whole journal');
    }
  }

  /**
   * Restores the newest snapshot instead of replaying up to it when it is more than `minGap` records
   * past `position` and not past `upTo` (the snapshot worker: a snapshot the main thread wrote after
   * this replica was restored, e.g. the inline one of a server that started on a long journal with
   * none; replaying 10 M records took a core for 12 s). The engine is the same either way: a
   * snapshot at seq S is the engine recovery builds at S. False, and nothing changed, when there is
   * no such snapshot or it cannot be restored.
   */
  jumpToSnapshot(upTo: number, minGap: number): boolean {
    const snap = this.newestSnapshot();
    if (!snap || snap.seq > upTo || snap.seq - this.position <= minGap) return false;
    try {
      this.restoreInto(this.engineFor(snap), snap);
      return true;
    } catch (e) {
      this.log?.warn({ seq: snap.seq, err: (e as Error).message }, 'newer snapshot not restorable: replaying the journal up to it');
      return false;
    }
  }

  private newestSnapshot(): SnapshotFileInfo | SnapshotInfo | undefined {
    return this.store.latestSnapshotFile?.() ?? this.store.latestSnapshot();
  }

  /** a fresh engine under the configuration in force at `snap` */
  private engineFor(snap: SnapshotFileInfo | SnapshotInfo): { engine: Engine; text: string } {
    const text = snap.configText ?? this.store.configText() ?? this.fallbackText;
    return { engine: createEngine(loadJournaledSite(text, 'configuration in force at the snapshot').site, { core: this.core }), text };
  }

  /** `snap` restored into `engine`, which is then in force from its seq (throws, changing nothing, if it cannot be restored) */
  private restoreInto({ engine, text }: { engine: Engine; text: string }, snap: SnapshotFileInfo | SnapshotInfo): void {
    const tr = performance.now();
    if ('bytes' in snap) engine.restore(snap.bytes);
    else restoreFromFile(engine, snap);
    this.timings.restore = performance.now() - tr;
    this.batch = [];
    this.engine = engine;
    this.text = text;
    this.position = snap.seq;
    this.fromSnapshot = snap.seq;
  }

  /**
   * Applies the journal's records after `position` with seq <= upTo, at most `max` of them
   * (records with an op; others are passed over). Ops with the same clock go to the engine as
   * one batch. Returns how many records were read; `position` becomes upTo when the journal held
   * nothing more up to it, else the seq of the last record read.
   */
  catchUp(upTo = Infinity, max = Infinity): number {
    const t0 = performance.now();
    let n = 0;
    let last = this.position;
    let more = false;
    const source: Iterable<EventRecord | CompactRun> = this.store.sinceGroups ? this.store.sinceGroups(this.position) : this.store.since(this.position);
    for (const item of source) {
      if ('group' in item) {
        const end = item.seq + item.group.n - 1;
        if (item.seq > upTo) break;
        if (n >= max) { more = true; break; }
        if (end <= upTo && n + item.group.n <= max) {
          this.applyGroup(item.group, item.seq);
          last = end;
          n += item.group.n;
          continue;
        }
        // a group that straddles upTo or max: record by record, as since() gives them
        let stop = false;
        for (const rec of groupEvents(item.group, item.seq)) {
          if (rec.seq! > upTo) { stop = true; break; }
          if (n >= max) { more = true; stop = true; break; }
          this.apply(rec);
          last = rec.seq!;
          n++;
        }
        if (stop) break;
        continue;
      }
      const seq = item.seq!;
      if (seq > upTo) break;
      if (n >= max) { more = true; break; }
      this.apply(item);
      last = seq;
      n++;
    }
    this.flush();
    this.position = !more && upTo !== Infinity ? Math.max(last, upTo) : last;
    this.timings.replay += performance.now() - t0;
    return n;
  }

  /**
   * A compact group's records, in order, without an EventRecord per record: the ops apply() would make
   * of groupEvents(g, seq), made straight from the record bytes (granted records only: a denied badge
   * changed nothing). Anything those checks would refuse sends the whole group through apply()
   * instead, record by record, so a bad record is skipped and counted exactly as there.
   */
  private applyGroup(g: CompactGroup, seq: number): void {
    const site = this.ensureEngine().site;
    const b = g.b;
    const ops: CoreOp[] = [];
    const ats: number[] = [];
    try {
      const readers = g.r.map((name) => { checkReader(name); return site.readerIndex.get(name) ?? -1; });
      let off = 0;
      for (let k = 0; k < g.n; k++) {
        if ((b[off + 26]! & 1) === 1) {
          const at = parseTs(f64At(b, off));
          const cred = parseCred(f64At(b, off + 16), 'cred');
          const reader = readers[b[off + 25]!];
          if (reader === undefined) throw new Error('reader index out of range');
          ops.push({ op: b[off + 24] === 1 ? 'passage' : 'badge', cred, reader });
          ats.push(at);
        }
        off += recordLength(g, off);
      }
    } catch {
      for (const rec of groupEvents(g, seq)) this.apply(rec);
      return;
    }
    this.groups++;
    for (let i = 0; i < ops.length; i++) {
      const at = ats[i]!;
      if (at !== this.batchAt) { this.flush(); this.batchAt = at; }
      this.batch.push(ops[i]!);
      this.replayed++;
    }
  }

  /** one journal record, in order (call flush() before using the engine) */
  apply(rec: EventRecord): void {
    if (rec.op === undefined || rec.op === null) return;
    const cfg = configOf(rec);
    if (cfg !== undefined) {
      this.flush();
      const site = loadJournaledSite(cfg, `configuration journaled at seq ${rec.seq}`).site;
      if (!this.engine) this.engine = createEngine(site, { core: this.core });
      else this.engine.reconfigure(site);
      this.text = cfg;
      this.replayed++;
      return;
    }
    const site = this.ensureEngine().site;
    let op: CoreOp | null;
    try {
      op = decodeMessage(rec.op as Record<string, unknown>, site, { mode: 'replay' }).op;
    } catch (e) {
      this.skipped++;
      if (this.skipped <= 5) this.log?.warn({ seq: rec.seq, err: (e as Error).message }, 'journal record not replayable; skipped');
      return;
    }
    if (!op) return;
    if (rec.at !== this.batchAt) { this.flush(); this.batchAt = rec.at; }
    this.batch.push(op);
    this.replayed++;
  }

  /** The engine, created when the journal starts without a config record (an older version's, or by hand). */
  private ensureEngine(): Engine {
    if (!this.engine) {
      this.text = this.store.configText() ?? this.fallbackText;
      this.engine = createEngine(loadJournaledSite(this.text, 'configuration in force').site, { core: this.core });
    }
    return this.engine;
  }

  flush(): void {
    if (this.batch.length) { this.engine!.apply(this.batch, this.batchAt); this.batch = []; }
  }
}

/**
 * Loads a configuration from the journal or a snapshot. It was valid when it was put in force, but a
 * later version may bound its fields more tightly (tokens of at least 16 characters), and
 * refusing history would make the data directory impossible to open. Those bounds guard new input:
 * when the only problems are tokens, they are replaced by placeholders. The engine never uses tokens,
 * and the configuration given at start-up (validated in full) is put in force at the end of recovery.
 */
export function loadJournaledSite(text: string, name: string): LoadedSite {
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
export function restoreFromFile(engine: Engine, file: SnapshotFileInfo): void {
  const fd = openSync(file.path, 'r');
  try {
    if (engine.restoreFromFile) engine.restoreFromFile(fd, 0, file.size);
    else engine.restore(readFileSync(fd));
  } finally { closeSync(fd); }
}
