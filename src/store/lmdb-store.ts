/**
 * The durable Store on lmdb-js (SPEC 9; only the journal on the reply path).
 *
 * Data directory (`--data D`, any directory path, dots in its name included):
 *   D/data.mdb, D/lock.mdb     the JOURNAL: one LMDB environment, the sub-databases below
 *   D/index/                   derived indexes (derived-index.ts): their own LMDB environment,
 *                              written by a background indexer, rebuilt from the journal when lost
 *   D/snapshots/<seq>.snap     engine snapshots (raw engine bytes), the newest 2 kept
 * It holds every bearer token (journaled site files): D, index/ and snapshots/ are created 0700,
 * files 0600, and a writable open takes group/other permissions off existing ones.
 *
 * Journal sub-databases (keys in lmdb-js ordered-binary, values msgpack):
 *   log      batchKey → Batch          (journal-batch.ts) one value per append() turn or appendCompact()
 *                                      call; batchKey = seq of its first record: appends at the right edge
 *   snaps    seq → { seq, at, file, size, configText }
 *   meta     'config' → text in force; 'journalId' → this journal's id (D/index must name it);
 *            'idmax' → { s, m: [controller, max numeric id, max string id | null][] }: the idempotency
 *            high-water marks of every batch up to seq s (a checkpoint written now and then in a journal
 *            commit, so an open reads only the journal after it)
 * (Directories of the previous layout also had icred/ireader/itime/iidem here: they are dropped at the
 * first writable open, in one journal transaction that frees their pages, and D/index is built from
 * the journal instead.)
 *
 * Reply path = the journal only: ONE put per append turn (the whole turn's records and replies in one
 * msgpack value) or per compact group, nothing else. lmdb-js batches every write issued while the
 * previous transaction commits into the next one (eventTurnBatching; one transaction at a time, each one
 * fsync with overlappingSync, the Linux default): that is the continuous group commit, counted in
 * `syncs`. The put's promise resolves when its transaction has committed; append() resolves then
 * (durability 'commit') or after the following fsync (durability 'flush').
 *
 * Idempotency: per controller a window of its last ids with their batch keys and its high-water
 * mark (id-window.ts); older ids: D/index's idem index, then the unindexed journal tail.
 * Queries: D/index for the indexed prefix + a range scan of the journal after it (never held in memory).
 */
import { chmodSync, closeSync, mkdirSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open as fsOpen, rename, unlink } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { asBinary, open, type Database, type RootDatabase } from 'lmdb';
import { ApbError } from '../errors.js';
import {
  HealthListeners, RETENTION_DEFAULTS, configOf, normalizeId, storageError,
  validateAppend,
} from './common.js';
import type { CompactRun, EventPage, EventPageQuery, EventQuery, EventRecord, IdemRecord, SnapshotEntry, SnapshotFileInfo, SnapshotInfo, Store, StoreOptions, StoreStats } from './types.js';
import { cursorKey, legacySpec, pageAsc, pageDesc, pageSpec, type BatchView, type PageSpec } from './event-cursor.js';
import type { DataLock } from './lock.js';
import { HEADROOM_BYTES, hasHeadroom } from './headroom.js';
import { endNativeWriteLine, routeLibraryOutput } from './lmdb-output.js';
import { f64At, groupProblem, groupsOf, recordLength, type CompactGroup } from './compact-journal.js';
import { CompactPacker, type CompactBatch } from './compact-pack.js';
import { batchEnd, batchEvents, forEachId, replyIn, type Batch } from './journal-batch.js';
import { IdWindow } from './id-window.js';
import { DerivedIndex, indexable, spanOf, type BatchSpan } from './derived-index.js';
import { Indexer } from './indexer.js';
import { eraseRecords, Wal, walTail } from './wal.js';
import { Packr } from 'msgpackr';

export { MAX_INDEXED_NAME_BYTES } from './derived-index.js';

/** the journal batch as the WAL holds it: plain msgpack, u64 values back as bigint */
const walPackr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'auto' } as never);

interface SnapMeta { seq: number; at: number; file: string; size: number; configText?: string }
interface IdCheckpoint { s: number; m: [string, number, string | null][] }

/** lmdb-js rejects every write of a failed commit with an error whose `commitError` is one more
 *  (shared) rejected promise; it must be handled or Node reports an unhandled rejection. */
function absorb(err: unknown): void {
  const cause = (err as { commitError?: Promise<unknown> } | undefined)?.commitError;
  if (cause && typeof cause.catch === 'function') cause.catch(() => undefined);
}
const noop = absorb;

/**
 * lmdb-js 3.x also rejects a commit promise of its own that nobody can hold (write.js, the
 * event-turn batch start), so every failed commit would surface as an unhandled rejection and,
 * under Node's default `--unhandled-rejections=throw`, kill the process. This listener absorbs
 * exactly those (the store has already seen the failure through its own writes) and re-throws
 * anything else, which keeps Node's default behaviour for every other rejection.
 */
let rejectionFilterInstalled = false;
function installRejectionFilter(): void {
  if (rejectionFilterInstalled) return;
  rejectionFilterInstalled = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && 'commitError' in reason && reason.message.startsWith('Commit failed')) { absorb(reason); return; }
    throw reason;
  });
}
const MAX_KEY = Number.MAX_SAFE_INTEGER;
/** records per log value; more appends in the same turn start another value (same transaction) */
const BATCH_EVENTS = 256;
/** an idempotency checkpoint (meta 'idmax') is written after this many seqs, or this long, whichever first */
const CHECKPOINT_SEQS = 65_536;
const CHECKPOINT_MS = 5_000;
/**
 * Batches the WAL holds durably are put into LMDB together, every STORE_EVERY_MS (or at once when
 * STORE_MAX_BATCHES are waiting): one LMDB transaction, whose commit rewrites the B-tree path and the
 * meta page and is fsynced, for all of them. Put per event-loop turn instead, single-message frames
 * at 16 k/s made about a thousand commits a second (12 KB written per message). Reads see the waiting
 * batches through walOnly meanwhile.
 */
const STORE_EVERY_MS = 10;
const STORE_MAX_BATCHES = 512;
/** sub-databases of the previous layout (indexes inside the journal), dropped on a writable open */
const OLD_INDEXES = ['icred', 'ireader', 'itime', 'iidem'];
/** `mode` without group/other bits, for files that hold tokens */
function tighten(path: string, mode: number): void {
  try { if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, mode); } catch { /* not ours or gone: leave it */ }
}

/** A batch written in the current turn or in flight: its promise settles when its put commits (or fails). */
/**
 * `payload`: the batch as the WAL holds it (set by write()); the journal stores these same bytes.
 * `rep`: cluster mode, the replicated journal's acknowledgement the replies also wait for.
 */
interface Pending { batch: Batch; cfg?: string; payload?: Uint8Array; promise: Promise<void>; resolve(): void; reject(e: unknown): void; rep?: Promise<void> }

/**
 * A compact turn batch once packed (write()): its header and bytes, its groups decoded again only if a
 * read needs them before LMDB has the value (a query of the last milliseconds, a resend).
 */
class PackedBatch implements Batch {
  readonly s: number; readonly n: number; readonly a0: number; readonly a1: number;
  private groups: CompactGroup[] | undefined;
  constructor(b: Batch, private readonly payload: Uint8Array) { this.s = b.s; this.n = b.n; this.a0 = b.a0; this.a1 = b.a1; }
  get k(): CompactGroup[] { return (this.groups ??= groupsOf((walPackr.unpack(this.payload) as Batch).k).slice()); }
}

/**
 * A batch's journal value: the bytes the WAL already holds. They are plain MessagePack, what the log
 * database's own encoder (no record structures) writes for the same batch and decodes on read, so
 * the batch is encoded once, not twice (asBinary stores bytes as they are).
 */
function journalValue(t: Pending): Batch {
  return (t.payload ? asBinary(t.payload) : t.batch) as unknown as Batch;
}

export class LmdbStore implements Store {
  readonly kind = 'lmdb' as const;
  private readonly root: RootDatabase;
  private readonly log: Database<Batch, number>;
  private readonly snaps: Database<SnapMeta, number>;
  private readonly meta: Database<unknown, string>;
  private readonly snapDir: string;
  private readonly indexDir: string;
  /** D/index, read by this thread (written by the indexer); null: none usable (read-only opens) */
  private ix: DerivedIndex | null = null;
  private indexer: Indexer | undefined;
  private journalId = '';
  /** the MAC key of event-log cursors (event-cursor.ts), derived from journalId on first use */
  private cursorSecret: Buffer | undefined;

  private seq = 0;
  /** end seq of the newest committed batch */
  private committedSeq = 0;
  private config: string | undefined;
  /** batches whose put has not committed yet (the current turn's included), by key */
  private readonly inflight = new Map<number, Batch>();
  /** per controller: recent ids → batch keys, and the high-water mark */
  private readonly windows = new Map<string, IdWindow>();
  /** ids of batches up to this key were not loaded into the windows at open (the checkpoint's seq) */
  private cold = 0;
  private checkpointSeq = 0;
  private checkpointAt = 0;
  private readonly lock: DataLock | undefined;
  private unrouteOutput: (() => void) | undefined;
  /** the write-ahead log (wal.ts): the reply path's only write; undefined for read-only opens */
  private wal: Wal<Pending> | undefined;
  /** batches durable in the WAL, not committed to LMDB yet, by key in seq order (reads merge them in) */
  private readonly walOnly = new Map<number, Batch>();
  /** batches durable in the WAL whose LMDB put failed: put again by the probe before the store is healthy */
  private unstored: Pending[] = [];
  /** unstored batches being put again (putUnstored), until that commits */
  private retrying: Pending[] = [];
  /** openWal put batches back into holes of the journal: D/index is rebuilt (openIndex) */
  private holesRepaired = false;

  private isHealthy = true;
  private failureCount = 0;
  private lastError: Error | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private compacting: Promise<number> | undefined;
  private closed = false;
  /** the batch collecting this event-loop turn's appends: general (append) or compact (appendCompact) */
  private turn: Pending | undefined;
  private inflightCount = 0;
  private lastWrite: Promise<unknown> = Promise.resolve();
  private readonly listeners = new HealthListeners();
  private readonly retention: Required<typeof RETENTION_DEFAULTS>;
  private readonly now: () => number;
  private readonly flush: boolean;
  private readonly probeMs: number;
  private readonly readOnly: boolean;
  private readonly headroom: number;
  private readonly onOutput: StoreOptions['onLibraryOutput'];
  private readonly replicate: StoreOptions['replicate'];

  constructor(readonly dir: string, opts: StoreOptions = {}) {
    this.retention = { ...RETENTION_DEFAULTS, ...opts.retention };
    this.now = opts.now ?? Date.now;
    this.flush = opts.durability === 'flush';
    this.probeMs = opts.probeIntervalMs ?? 1000;
    this.readOnly = opts.readOnly === true;
    this.headroom = opts.headroomBytes ?? HEADROOM_BYTES;
    this.snapDir = join(dir, 'snapshots');
    this.indexDir = join(dir, 'index');
    this.lock = opts.lock;
    this.onOutput = opts.onLibraryOutput;
    this.replicate = opts.replicate;
    checkDataPath(dir);
    installRejectionFilter();
    let dropOld: string[] = [];
    try {
      if (this.readOnly) {
        if (!existsSync(join(dir, 'data.mdb'))) throw new ApbError('not_found', `no apb data directory at ${dir} (no data.mdb)`);
      } else {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        mkdirSync(this.snapDir, { recursive: true, mode: 0o700 });
        tighten(this.snapDir, 0o700);
        for (const f of ['data.mdb', 'lock.mdb']) tighten(join(dir, f), 0o600);
      }
      if (opts.onLibraryOutput) this.unrouteOutput = routeLibraryOutput(opts.onLibraryOutput);
      this.root = open({
        path: dir,
        // lmdb-js takes a path with a dot-extension (`site.v2`, `x.mdb`) for a file name and would put
        // `<path>-lock` beside it: the data directory is always a directory holding data.mdb and lock.mdb
        noSubdir: false,
        permissionsMode: 0o600,
        mapSize: opts.mapSize ?? 2 ** 30,
        maxDbs: 16,
        readOnly: this.readOnly,
        noSync: false,          // durability: never skip the fsync
        eventTurnBatching: true, // writes issued while a commit is in flight go into the next one: group commit
      } as never);
      const ob = { keyEncoding: 'ordered-binary' as const };
      this.log = this.root.openDB<Batch, number>('log', {
        ...ob, encoding: 'msgpack', sharedStructuresKey: Symbol.for('structures'),
        // bigints beyond 2^53 (u64 credentials and ids) must come back exact. New values are written
        // without record structures: a commit that fails (a full disk) after adding a structure left
        // later values referring to one the file never got, which no reader could decode (values of
        // earlier versions still decode: the structures they name stay under the key)
        encoder: { int64AsType: 'auto', useRecords: false },
      } as never);
      this.snaps = this.root.openDB('snaps', { ...ob, encoding: 'msgpack' });
      this.meta = this.root.openDB('meta', { ...ob, encoding: 'msgpack' });
      if (!this.readOnly) {
        // the root database lists the named ones
        const names = new Set<unknown>(this.root.getKeys() as Iterable<unknown>);
        dropOld = OLD_INDEXES.filter((name) => names.has(name));
      }
    } catch (err) {
      this.unrouteOutput?.();
      if (err instanceof ApbError) throw err;
      throw new ApbError('storage_unavailable', `cannot open the data directory ${dir}: ${(err as Error).message}`);
    }
    if (!this.readOnly) this.openWal(opts);
    else this.readWalTail();
    this.loadState();
    if (!this.readOnly) {
      if (dropOld.length > 0) this.dropOldIndexes(dropOld);
      this.cleanSnapshotFiles();
      if (this.retention.intervalMs > 0) {
        this.retentionTimer = setInterval(() => { void this.compact().catch(() => undefined); }, this.retention.intervalMs);
        this.retentionTimer.unref();
      }
    }
    this.openIndex(opts);
  }

  // ---- open ---------------------------------------------------------------------------------

  /**
   * Puts every batch the WAL holds past the journal's end into the journal (one transaction), then
   * opens the WAL for writing. A WAL of another journal (a data.mdb swapped under it) is discarded.
   */
  private openWal(opts: StoreOptions): void {
    const dir = join(this.dir, 'wal');
    const idFile = join(dir, 'journal-id');
    let id = this.meta.get('journalId') as string | undefined;
    let walId: string | undefined;
    try { walId = readFileSync(idFile, 'utf8'); } catch { /* no WAL yet */ }
    if (walId !== undefined && walId !== id) {
      this.onOutput?.('warn', `the write-ahead log in ${dir} belongs to another journal: discarded`);
      rmSync(dir, { recursive: true, force: true });
    }
    const last = this.lastBatch();
    // a journal seeded from a cluster snapshot (seedFromSnapshot) starts after its base seq
    let end = last ? batchEnd(last) : this.baseSeq();
    const { tail, gap, maxSeg, before, voided } = walTail(dir, end);
    // Holes: batches the log holds inside the journal's range that the journal lacks. An LMDB put that
    // failed (a full disk) while a later batch's put committed, then a crash before the storage probe
    // put it again (putUnstored): it was acknowledged from the log, so it goes back. Retention deletes
    // a prefix of the journal and records how far (meta 'trimmed'): records up to there are not holes.
    const trimmed = Math.max(this.baseSeq(), (this.meta.get('trimmed') as number | undefined) ?? 0);
    const seen = new Set<number>();
    const holes = before.filter((r) => r.s > trimmed && !seen.has(r.s) && (seen.add(r.s), !this.log.doesExist(r.s)));
    if (tail.length > 0 || holes.length > 0) {
      this.root.transactionSync(() => {
        for (const r of [...holes, ...tail]) {
          const b = walPackr.unpack(r.payload) as Batch;
          this.log.put(r.s, asBinary(r.payload) as never);
          let cfg: string | undefined;
          for (const e of b.e ?? []) cfg = configOf(e) ?? cfg;
          // a hole's configuration is the one in force only if no later batch changed it
          if (cfg !== undefined && (tail.includes(r) || !this.configAfter(r.e))) this.meta.put('config', cfg);
        }
      });
      if (tail.length > 0) end = tail.at(-1)!.e;
      if (holes.length > 0) this.holesRepaired = true;
      if (holes.length > 0) this.onOutput?.('warn', `the journal lacked ${holes.length} batch(es) the write-ahead log holds (seqs ${holes.map((r) => `${r.s}-${r.e}`).join(', ')}: a put that failed before a later one committed): put back`);
    }
    // refused batches under a void mark: erased now that the journal holds everything the log held
    if (voided.length > 0) eraseRecords(voided);
    if (gap > 0) this.onOutput?.('warn', `the write-ahead log has a gap after seq ${end}: ${gap} later batches (never acknowledged under durability 'flush') are discarded`);
    if (id === undefined) {
      id = randomUUID();
      this.meta.putSync('journalId', id);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (walId !== id) { writeFileSync(idFile, id, { mode: 0o600 }); }
    this.wal = new Wal<Pending>(dir, {
      flush: this.flush, segmentBytes: opts.walSegmentBytes,
      onDurable: (t) => {
        this.walOnly.set(t.batch.s, t.batch);
        // cluster mode: the replies also wait for the replicated journal's acknowledgement (replicate)
        if (t.rep) t.rep.then(t.resolve, t.reject); else t.resolve();
        this.storeSoon(t);
      },
      onFailed: (t, err) => { this.inflight.delete(t.batch.s); t.reject(this.fail(err)); },
      onSyncError: (err) => { this.fail(err); },
    }, maxSeg, end);
  }

  /** A read-only open (apb events beside a running server): the WAL's batches past LMDB's end are read too. */
  private readWalTail(): void {
    let walId: string | undefined;
    try { walId = readFileSync(join(this.dir, 'wal', 'journal-id'), 'utf8'); } catch { return; }
    if (walId !== this.meta.get('journalId')) return;
    const last = this.lastBatch();
    for (const r of walTail(join(this.dir, 'wal'), last ? batchEnd(last) : 0).tail) this.walOnly.set(r.s, walPackr.unpack(r.payload) as Batch);
  }

  /** whether a journal batch after seq `after` carries a configuration change (a hole's repair, rare) */
  private configAfter(after: number): boolean {
    for (const { value } of this.log.getRange({ start: after + 1, end: MAX_KEY })) {
      for (const e of (value as Batch).e ?? []) if (configOf(e) !== undefined) return true;
    }
    return false;
  }

  /** the seq a seeded journal starts after (meta 'base'; 0: a journal that starts at 1) */
  private baseSeq(): number {
    const b = this.meta.get('base') as number | undefined;
    return typeof b === 'number' ? b : 0;
  }

  private loadState(): void {
    const last = this.lastBatch();
    const snap = this.snapMetas().at(-1);
    this.seq = Math.max(last ? batchEnd(last) : 0, snap?.seq ?? 0);
    for (const b of this.walOnly.values()) this.seq = Math.max(this.seq, batchEnd(b)); // read-only: the WAL's tail
    this.committedSeq = last ? batchEnd(last) : 0;
    this.config = this.meta.get('config') as string | undefined;
    let id = this.meta.get('journalId') as string | undefined;
    if (typeof id !== 'string') {
      id = randomUUID();
      // created once; a crash before this commits just makes another id (D/index is then rebuilt once more)
      if (!this.readOnly) this.meta.putSync('journalId', id);
    }
    this.journalId = id;
    // idempotency high-water marks: the checkpoint, then every batch after it (normally a few seconds'
    // worth; the whole journal once, for a directory of the previous layout)
    const ck = this.meta.get('idmax') as IdCheckpoint | undefined;
    const from = ck && typeof ck.s === 'number' && Array.isArray(ck.m) ? ck.s : 0;
    this.cold = this.checkpointSeq = from;
    this.checkpointAt = this.now();
    if (from > 0) {
      for (const [c, num, big] of ck!.m) {
        const w = this.window(c);
        if (num >= 0) w.raise(num);
        if (big !== null) w.raise(big);
      }
    }
    for (const { key, value } of this.log.getRange({ start: from + 1, end: MAX_KEY })) {
      forEachId(value, (c, bid) => this.window(c).note(bid, key));
    }
  }

  private window(controller: string): IdWindow {
    let w = this.windows.get(controller);
    if (!w) this.windows.set(controller, (w = new IdWindow(this.cold)));
    return w;
  }

  /** D/index: validated (rebuilt when missing, damaged or another journal's), then the indexer started. */
  private openIndex(opts: StoreOptions): void {
    if (this.readOnly) {
      try { this.ix = DerivedIndex.open(this.indexDir, this.journalId, true)?.ix ?? null; } catch { this.ix = null; }
      return;
    }
    // meta 'indexed' in the journal is the previous layout's high-water mark of its in-journal indexes:
    // present (a directory of that layout, or someone asking for a re-index by rewinding it), D/index is
    // rebuilt from the start of the journal, and the key removed
    // holes put back at open (openWal): an index written before this version may have passed them
    const reindex = this.meta.get('indexed') !== undefined || this.holesRepaired;
    try {
      const last = this.lastBatch();
      this.ix = DerivedIndex.open(this.indexDir, this.journalId, false, reindex, last ? batchEnd(last) : 0)!.ix;
      if (reindex) for (const k of ['indexed', 'indexIssued']) this.meta.remove(k).catch(noop);
      this.indexer = new Indexer({
        dir: this.dir, indexDir: this.indexDir, knobs: opts.indexer ?? {}, log: this.log, ix: this.ix, committed: this.indexLimit(),
        onError: (m) => {
          endNativeWriteLine(m); // a failed D/index write: never glued to a raw line of LMDB's C code
          if (this.onOutput) this.onOutput('warn', m); else process.emitWarning(m, 'ApbIndexer');
        },
      });
    } catch (err) {
      // no index: queries and idempotency read the journal (exact, slower); the journal is unaffected
      this.ix = null;
      this.onOutput?.('warn', `the derived index ${this.indexDir} cannot be opened (${(err as Error).message}): queries scan the journal`);
    }
  }

  /** The previous layout's index sub-databases: dropped in one journal transaction (their pages freed). */
  private dropOldIndexes(names: string[]): void {
    const ob = { keyEncoding: 'ordered-binary' as const };
    for (const name of names) {
      try { this.track(this.root.openDB(name, ob).drop()).catch(noop); } catch (err) { absorb(err); }
    }
  }

  private lastBatch(): Batch | undefined {
    for (const { value } of this.log.getRange({ start: MAX_KEY, end: 0, reverse: true, limit: 1 })) return value;
    return undefined;
  }

  private snapMetas(): SnapMeta[] {
    return [...this.snaps.getRange({ start: 0, end: MAX_KEY })].map((e) => e.value);
  }

  /** Removes snapshot files no entry refers to (a crash between the file and its entry, or *.tmp). */
  private cleanSnapshotFiles(): void {
    const keep = new Set(this.snapMetas().map((s) => s.file));
    for (const f of readdirSync(this.snapDir)) {
      if (!keep.has(f)) rmSync(join(this.snapDir, f), { force: true });
      else tighten(join(this.snapDir, f), 0o600);
    }
  }

  // ---- health -------------------------------------------------------------------------------

  get lastSeq(): number { return this.seq; }
  get healthy(): boolean { return this.isHealthy && !this.closed; }
  get failures(): number { return this.failureCount; }
  /** fdatasyncs of the write-ahead log since open (the reply path's syncs; each covers every batch
   *  written while the previous one ran): apb_storage_syncs_total */
  get syncs(): number { return this.wal?.syncs ?? 0; }
  /** index entries skipped since open because they could not be written (a name over MAX_INDEXED_NAME_BYTES) */
  get indexSkipped(): number { return this.indexer?.skipped ?? 0; }
  get indexLag(): number {
    let indexed = 0;
    try { indexed = this.ix ? this.ix.indexedSeq : 0; } catch { /* unreadable: nothing indexed */ }
    return Math.max(0, this.seq - indexed);
  }
  onHealthChange(cb: (healthy: boolean, error?: Error) => void): () => void { return this.listeners.add(cb); }

  private fail(err: unknown): ApbError {
    endNativeWriteLine(err); // a failed page write: LMDB's own raw stderr line ends before anything is logged
    // lmdb-js rejects a failed commit's writes with 'Commit failed' and the cause in a second promise
    const cause = (err as { commitError?: Promise<unknown> } | undefined)?.commitError;
    if (cause && typeof cause.catch === 'function') {
      cause.catch((c: unknown) => { if (this.lastError) this.lastError.message += ` (${(c as Error)?.message ?? String(c)})`; });
    }
    const e = storageError(err);
    this.lastError = e;
    this.failureCount++;
    if (this.isHealthy) {
      this.isHealthy = false;
      this.listeners.emit(false, e);
      this.startProbe();
    }
    return e;
  }

  /**
   * While unhealthy: every probeMs, check that the disk has room again (headroom.ts), then try a small
   * write; healthy again once one commits. A small LMDB write alone is no proof: on a full disk it
   * succeeds by reusing free pages, the server turns ready, rebuilds its engine from the journal, and
   * the next real commit fails again (a replay of the whole journal per flip).
   */
  private startProbe(): void {
    if (this.probeTimer || this.closed) return;
    this.probeTimer = setInterval(() => {
      try {
        if (!hasHeadroom(this.dir, this.headroom)) return; // still full; try again next interval
        if (this.unstored.length > 0) { this.putUnstored(); return; }
        this.meta.put('probe', this.now()).then(
          () => this.recovered(),
          absorb, // still failing; try again next interval
        );
      } catch (err) { absorb(err); } // a throw inside a timer would end the process
    }, this.probeMs);
    this.probeTimer.unref();
  }

  /** The batches the WAL holds whose LMDB put failed, put again in seq order; healthy once they commit. */
  private putUnstored(): void {
    const retry = this.unstored.sort((a, b) => a.batch.s - b.batch.s);
    this.unstored = [];
    this.retrying = retry; // still holes until they commit (indexLimit)
    let last: Promise<boolean> | undefined;
    try {
      for (const t of retry) {
        last = this.log.put(t.batch.s, journalValue(t));
        if (t.cfg !== undefined) this.meta.put('config', t.cfg).catch(noop);
      }
    } catch (err) { this.retrying = []; this.unstored = retry.concat(this.unstored); absorb(err); return; }
    this.track(last!).then(() => {
      this.retrying = [];
      for (const t of retry) {
        this.inflight.delete(t.batch.s);
        this.walOnly.delete(t.batch.s);
        const end = batchEnd(t.batch);
        if (end > this.committedSeq) this.committedSeq = end;
      }
      this.recovered();
    }, (err: unknown) => { this.retrying = []; this.unstored = retry.concat(this.unstored); absorb(err); });
  }

  private recovered(): void {
    if (this.isHealthy || this.closed) return;
    // batches replied to from the WAL but not in the journal yet go in first: whoever rebuilds state
    // from the journal once the store is healthy (the server does) must find them there
    if (this.unstored.length > 0) { this.putUnstored(); return; }
    if (!hasHeadroom(this.dir, this.headroom)) return; // a small write got through, but the disk is still (nearly) full
    // the log first writes the void marks of batches it refused (wal.ts): if it cannot, not healthy yet
    if (this.wal && !this.wal.reset()) return;
    clearInterval(this.probeTimer); this.probeTimer = undefined;
    this.isHealthy = true;
    this.lastError = undefined;
    this.listeners.emit(true);
    this.indexer?.committedUpTo(this.indexLimit());
  }

  /**
   * How far the indexer may go: the committed end, but never past a batch whose LMDB put failed while
   * later ones committed (it waits in `unstored` for the probe). Indexed past such a hole, the batch
   * would never be indexed once put back: D/index's runs cover disjoint, ascending seq ranges.
   */
  private indexLimit(): number {
    let lim = this.committedSeq;
    // called after every journal commit: no allocation, and nothing to do unless a put failed
    for (const t of this.unstored) if (t.batch.s - 1 < lim) lim = t.batch.s - 1;
    for (const t of this.retrying) if (t.batch.s - 1 < lim) lim = t.batch.s - 1;
    return lim;
  }

  /** recycleAfterFlush: the newest batch end committed, and whether a flush wait is out */
  private recycleEnd = 0;
  private recycleWaiting = false;

  private track<T>(p: Promise<T>): Promise<T> {
    // lmdb-js resolves writes in commit order: awaiting the last one awaits all before it
    this.inflightCount++;
    this.lastWrite = p;
    const done = (): void => { this.inflightCount--; };
    p.then(done, done);
    return p;
  }

  // ---- append (hot path) --------------------------------------------------------------------

  private refusal(): ApbError | undefined {
    if (this.readOnly) return new ApbError('storage_unavailable', 'the store is open read-only');
    if (this.closed) return new ApbError('storage_unavailable', 'the store is closed');
    if (!this.isHealthy) return this.lastError instanceof ApbError ? this.lastError : new ApbError('storage_unavailable', 'storage is unavailable');
    return undefined;
  }

  private pending(batch: Batch): Pending {
    let resolve!: () => void, reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    promise.catch(noop); // every caller gets (and handles) this promise; this only keeps Node quiet
    this.inflight.set(batch.s, batch);
    return { batch, promise, resolve, reject };
  }

  /**
   * Appends of one event-loop turn go into ONE log value (one put), flushed by setImmediate:
   * seqs are assigned at once, the put follows at the end of the turn, and every append of the turn
   * resolves with that put's commit.
   */
  append(events: EventRecord[], idem: IdemRecord[]): Promise<void> {
    const no = this.refusal();
    if (no) return Promise.reject(no);
    try { validateAppend(events, idem); } catch (e) { return Promise.reject(e); }
    if (events.length === 0 && idem.length === 0) return Promise.resolve();
    let t = this.turn;
    if (t?.batch.k) { this.flushTurn(); t = undefined; } // this turn's compact groups come first
    if (!t) t = this.turn = this.openTurn({ s: this.seq + 1, n: 0, a0: 0, a1: 0, e: [] });
    const b = t.batch;
    const list = b.e!;
    for (const e of events) {
      e.seq = ++this.seq;
      if (b.n === 0) b.a0 = e.at;
      if (e.at > b.a1) b.a1 = e.at;
      list.push(e);
      b.n++;
      const text = configOf(e);
      if (text !== undefined) { t.cfg = text; this.config = text; }
    }
    if (idem.length > 0) {
      const ids = (b.i ??= []);
      for (const r of idem) {
        const id = normalizeId(r.id);
        ids.push([r.controller, id, r.reply]);
        this.window(r.controller).note(id, b.s);
      }
    }
    const p = t.promise;
    // keep log values small (queries and retention read whole batches): a full batch is put now,
    // still in this turn's transaction
    if (b.n >= BATCH_EVENTS) this.flushTurn();
    return p;
  }

  /**
   * One compact group (compact-journal.ts): its records take the next seqs, in order, after
   * everything appended before. Every group of the turn goes into ONE log value (`k`, in call order;
   * a general batch of the turn is put first, so the journal keeps the order of the calls), written
   * to the WAL at the end of the turn like a general one: with one message per frame, a value per
   * group cost a WAL record, a put, a promise and an encode per message.
   */
  appendCompact(g: CompactGroup): Promise<void> {
    const no = this.refusal();
    if (no) return Promise.reject(no);
    const bad = groupProblem(g);
    if (bad) return Promise.reject(new ApbError('internal', `store.appendCompact: ${bad}`));
    if (g.n === 0) return Promise.resolve();
    let t = this.turn;
    if (t && !t.batch.k) { this.flushTurn(); t = undefined; }
    if (!t) t = this.turn = this.openTurn({ s: this.seq + 1, n: 0, a0: 0, a1: 0, k: [] });
    const b = t.batch;
    const bytes = g.b;
    const w = this.window(g.c);
    let a1 = b.a1, off = 0;
    for (let k = 0; k < g.n; k++) {
      const at = f64At(bytes, off);
      if (at > a1) a1 = at;
      w.note(f64At(bytes, off + 8), b.s);
      off += recordLength(g, off);
    }
    if (b.n === 0) b.a0 = f64At(bytes, 0);
    b.a1 = a1;
    b.n += g.n;
    this.seq += g.n;
    (b.k as CompactGroup[]).push(g);
    const p = t.promise;
    if (b.n >= BATCH_EVENTS) this.flushTurn(); // as append(): log values stay small
    return p;
  }

  /** A new turn batch, written to the WAL at the end of this event-loop turn (or when full). */
  private openTurn(batch: Batch): Pending {
    setImmediate(this.endTurn);
    return this.pending(batch);
  }

  private readonly endTurn = (): void => { this.flushTurn(); this.wal?.flush(); };

  maxId(controller: string): number { return this.windows.get(controller)?.max ?? -1; }

  private flushTurn(): void {
    const t = this.turn;
    if (!t) return;
    this.turn = undefined;
    const b = t.batch;
    if (!b.k) {
      if (this.seq < b.s) this.seq = b.s; // a batch of replies only still takes a seq (keys stay unique)
      b.z = this.seq;
    }
    this.write(t);
  }

  /**
   * The batch goes to the WAL (wal.ts) first: its promise (the replies) resolves once the WAL has it
   * durably; only then is it put into the journal in LMDB, off the reply path.
   */
  private write(t: Pending): void {
    const b = t.batch;
    if (this.closed || !this.isHealthy) {
      this.inflight.delete(b.s);
      t.reject(this.lastError ?? new ApbError('storage_unavailable', 'storage is unavailable'));
      return;
    }
    let payload: Uint8Array;
    try { payload = b.k ? this.packer.pack(b as CompactBatch) : walPackr.pack(b); } catch (err) {
      this.inflight.delete(b.s);
      t.reject(this.fail(err));
      return;
    }
    t.payload = payload;
    if (b.k) {
      // from here the turn's groups are only read back (queries, resends) until LMDB has the value:
      // keep its bytes, not the objects of every frame's group (they died young instead of being
      // promoted while the put waits for its commit: the old-space growth and the pauses it cost)
      const packed = new PackedBatch(b, payload);
      t.batch = packed;
      this.inflight.set(b.s, packed);
    }
    if (this.replicate) {
      t.rep = this.replicate(b.s, batchEnd(b), payload);
      t.rep.catch(noop); // handled in onDurable (a failed WAL write rejects the batch first)
    }
    this.wal!.append(b.s, batchEnd(b), payload, t);
  }

  /** compact turn batches' WAL record and journal value (compact-pack.ts) */
  private readonly packer = new CompactPacker();

  /** WAL-durable batches waiting for their LMDB put (storeSoon), and the timer that puts them */
  private toStore: Pending[] = [];
  private storeTimer: NodeJS.Timeout | undefined;

  private storeSoon(t: Pending): void {
    this.toStore.push(t);
    if (this.toStore.length >= STORE_MAX_BATCHES) this.storeQueued();
    else if (!this.storeTimer) { this.storeTimer = setTimeout(this.storeQueued, STORE_EVERY_MS); this.storeTimer.unref(); }
  }

  /** Puts every waiting batch now, in seq order (one lmdb-js transaction: they are put in one turn). */
  private readonly storeQueued = (): void => {
    if (this.storeTimer) { clearTimeout(this.storeTimer); this.storeTimer = undefined; }
    const q = this.toStore;
    if (q.length === 0) return;
    this.toStore = [];
    for (const t of q) this.store(t);
  };

  /**
   * Cluster followers (src/cluster): one batch of the leader's journal, exactly as its WAL holds it
   * (`payload`, seqs s..e), appended as is: same seqs, same reply bytes, same WAL and journal path as
   * an own batch (never replicated again). A batch this journal already holds (e <= lastSeq) is passed
   * over; one that does not continue it is refused (`internal`: the caller resynchronises).
   */
  appendReplicated(s: number, e: number, payload: Uint8Array): Promise<void> {
    const no = this.refusal();
    if (no) return Promise.reject(no);
    this.flushTurn();
    if (e <= this.seq) return Promise.resolve();
    if (s !== this.seq + 1 || e < s) return Promise.reject(new ApbError('internal', `replicated batch ${s}-${e} does not continue the journal at ${this.seq}`));
    let b: Batch;
    try { b = walPackr.unpack(payload) as Batch; } catch (err) { return Promise.reject(new ApbError('internal', `replicated batch ${s}-${e} is not a journal batch: ${(err as Error).message}`)); }
    if (b?.s !== s || batchEnd(b) !== e) return Promise.reject(new ApbError('internal', `replicated batch ${s}-${e} holds seqs ${b?.s}-${b ? batchEnd(b) : '?'}`));
    this.seq = e;
    forEachId(b, (c, id) => this.window(c).note(id, s));
    const t = this.pending(b);
    t.payload = payload;
    for (const ev of b.e ?? []) { const text = configOf(ev); if (text !== undefined) { t.cfg = text; this.config = text; } }
    this.wal!.append(s, e, payload, t);
    return t.promise;
  }

  /** Puts a batch the WAL holds into the journal (and, now and then, the idempotency checkpoint, same transaction). */
  private store(t: Pending): void {
    const b = t.batch;
    if (this.closed) return; // the WAL holds it: the next open puts it into the journal
    let written: Promise<boolean>;
    try {
      written = this.log.put(b.s, journalValue(t));
      // the configuration in force is kept beside the log, in the same transaction
      if (t.cfg !== undefined) this.meta.put('config', t.cfg).catch(noop);
      if (this.seq - this.checkpointSeq >= CHECKPOINT_SEQS || (this.seq > this.checkpointSeq && this.now() - this.checkpointAt >= CHECKPOINT_MS)) this.checkpoint();
    } catch (err) {
      // a synchronous lmdb-js error: the WAL keeps the batch; the probe puts it again
      this.unstored.push(t);
      this.fail(err);
      return;
    }
    const end = batchEnd(b);
    this.track(written).then(
      () => {
        this.inflight.delete(b.s);
        this.walOnly.delete(b.s);
        if (end > this.committedSeq) this.committedSeq = end;
        this.indexer?.committedUpTo(this.indexLimit());
        this.recycleAfterFlush(end);
      },
      (err: unknown) => { this.unstored.push(t); this.fail(err); },
    );
  }

  /**
   * The WAL segments holding batches up to `end` are reusable once LMDB has flushed them. One wait
   * on lmdb-js's `flushed` at a time, for the newest end committed when it starts (a wait per batch
   * cost a Promise.all and four promises per frame).
   */
  private recycleAfterFlush(end: number): void {
    if (end > this.recycleEnd) this.recycleEnd = end;
    if (this.recycleWaiting) return;
    this.recycleWaiting = true;
    const target = this.recycleEnd;
    void Promise.resolve(this.root.flushed).then(() => {
      this.recycleWaiting = false;
      this.wal?.durableUpTo(target);
      if (this.recycleEnd > target) this.recycleAfterFlush(this.recycleEnd);
    }, () => { this.recycleWaiting = false; });
  }

  /** meta 'idmax': every controller's high-water mark, covering every batch put so far (same transaction) */
  private checkpoint(): void {
    const m: IdCheckpoint['m'] = [];
    for (const [c, w] of this.windows) m.push([c, w.maxNum, w.maxBig ?? null]);
    this.checkpointSeq = this.seq;
    this.checkpointAt = this.now();
    this.meta.put('idmax', { s: this.seq, m } satisfies IdCheckpoint).catch(noop);
  }

  async whenCommitted(): Promise<void> {
    if (this.turn) await this.turn.promise.catch(noop);
    await this.wal?.idle();
    this.storeQueued();
    await this.lastWrite.catch(noop);
  }

  /** Resolves once everything appended so far is committed and indexed (tests, close, benchmarks). */
  async settle(maxMs = 30_000): Promise<void> {
    // bounded: close() must finish even if the indexer cannot progress (what is not indexed yet is
    // indexed from D/index's meta 'indexed' on the next open)
    const deadline = Date.now() + maxMs;
    while (this.turn !== undefined || this.inflightCount > 0 || this.wal?.staging || this.toStore.length > 0) {
      if (Date.now() > deadline) return;
      if (this.turn) await this.turn.promise.catch(noop);
      await this.wal?.idle();
      this.storeQueued();
      await this.lastWrite.catch(noop);
      await new Promise((r) => setImmediate(r));
    }
    if (this.indexer && this.isHealthy) await this.indexer.whenIndexed(this.committedSeq, Math.max(0, deadline - Date.now()));
  }

  // ---- idempotency --------------------------------------------------------------------------

  /** a batch by key: in flight (not committed yet) or from the journal */
  private batchAt(key: number): Batch | undefined {
    return this.inflight.get(key) ?? this.log.get(key);
  }

  getIdem(controller: string, id: number | string | bigint): Uint8Array | undefined {
    const nid = normalizeId(id);
    const w = this.windows.get(controller);
    if (!w || w.above(nid)) return undefined; // the usual case for a new message: no read at all
    for (const key of w.keysOf(nid)) {
      const r = replyIn(this.batchAt(key), controller, nid);
      if (r) return r;
    }
    // older than the window: the derived index, then what neither it nor the window covers
    const ixSeq = this.ix ? this.ix.indexedSeq : 0;
    if (this.ix) {
      for (const key of this.ix.idemBatches(controller, nid)) { const r = replyIn(this.batchAt(key), controller, nid); if (r) return r; }
    }
    if (w.evicted > ixSeq) {
      // batches(): with the ones only the WAL holds yet (their LMDB put waits up to STORE_EVERY_MS)
      for (const { value } of this.batches(w.evicted, ixSeq, true)) {
        const r = replyIn(value, controller, nid);
        if (r) return r;
      }
    }
    return undefined;
  }

  // ---- reads --------------------------------------------------------------------------------

  /**
   * The journal's batches with keys from `start` (inclusive) towards `end` (exclusive), like
   * log.getRange, with the batches only the WAL holds yet merged in (they are always the newest:
   * LMDB commits them in order, so they form a suffix of the journal).
   */
  private *batches(start: number, end: number, reverse = false): Generator<{ key: number; value: Batch }> {
    if (this.readOnly && this.walOnly.size > 0) {
      // what the WAL held at open: dropped as the writer's LMDB commits catch up (this view sees them)
      const last = this.lastBatch();
      const lmdbEnd = last ? batchEnd(last) : 0;
      for (const [k, b] of this.walOnly) { if (batchEnd(b) <= lmdbEnd) this.walOnly.delete(k); else break; }
    }
    const wal = [...this.walOnly.values()];
    const cut = wal.length > 0 ? wal[0]!.s : MAX_KEY;
    if (!reverse) {
      yield* this.log.getRange({ start, end: Math.min(end, cut) });
      for (const b of wal) if (b.s >= start && b.s < end) yield { key: b.s, value: b };
      return;
    }
    for (let k = wal.length - 1; k >= 0; k--) { const b = wal[k]!; if (b.s <= start && b.s > end) yield { key: b.s, value: b }; }
    if (cut - 1 > end) yield* this.log.getRange({ start: Math.min(start, cut - 1), end, reverse: true });
  }

  query(q: EventQuery): EventRecord[] {
    const spec = legacySpec(q);
    return pageDesc(this.batchesDown(spec), spec, undefined).events;
  }

  page(q: EventPageQuery): EventPage {
    this.cursorSecret ??= cursorKey(this.journalId);
    const spec = pageSpec(q, this.cursorSecret);
    return spec.order === 'desc' ? pageDesc(this.batchesDown(spec), spec, this.cursorSecret) : pageAsc(this.batchesUp(spec), spec, this.cursorSecret);
  }

  /**
   * desc candidates, newest first, below spec.pos: with a cred or reader filter the journal after D/index's
   * `indexed` mark (the tail it has not reached), then the batches the index names; else the journal itself.
   * With `until`, D/index's time index skips every batch that starts later.
   */
  private *batchesDown(spec: PageSpec): Generator<BatchView> {
    let top = Math.min(spec.pos - 1, MAX_KEY);
    if (spec.until !== undefined && this.ix) { const k = this.ix.timeAfter(spec.until); if (k !== undefined) top = Math.min(top, k - 1); }
    if (top < 1) return;
    const kind = spec.cred !== undefined ? 'cred' : spec.reader !== undefined ? 'reader' : undefined;
    const ixSeq = kind && this.ix ? this.ix.indexedSeq : 0;
    for (const { value } of this.batches(top, ixSeq, true)) yield viewOf(value);
    if (!kind || !this.ix) return;
    const name = (spec.cred ?? spec.reader)!;
    if (!indexable(name)) return; // never indexed: only the scanned tail can hold it
    let prev = -1;
    for (const bk of this.ix.keysOf(kind, name, Math.min(top, ixSeq))) {
      if (bk === prev) continue;
      prev = bk;
      const b = this.log.get(bk); // undefined: deleted by retention, its entries not removed yet
      if (b) yield viewOf(b);
    }
  }

  /**
   * asc candidates, oldest first, from the batch holding spec.pos+1: with a cred or reader filter the batches
   * D/index names up to its `indexed` mark (then that mark as covered), then the journal after it; else the
   * journal itself. With `since`, D/index's time index skips every batch that ends earlier.
   */
  private *batchesUp(spec: PageSpec): Generator<BatchView> {
    let start = 1;
    for (const { key } of this.batches(spec.pos + 1, 0, true)) { start = key; break; }
    if (spec.since !== undefined && this.ix) start = Math.max(start, this.ix.timeStart(spec.since) ?? 1);
    const kind = spec.cred !== undefined ? 'cred' : spec.reader !== undefined ? 'reader' : undefined;
    let from = start;
    if (kind && this.ix) {
      const ixSeq = this.ix.indexedSeq;
      const name = (spec.cred ?? spec.reader)!;
      let prev = -1;
      if (indexable(name)) {
        for (const bk of this.ix.keysUp(kind, name, start, ixSeq)) {
          if (bk === prev) continue;
          prev = bk;
          const b = this.log.get(bk);
          if (b) yield viewOf(b);
        }
      }
      if (ixSeq >= start) yield { s: ixSeq, end: ixSeq, n: 0, a0: 0, a1: 0, events: null };
      from = Math.max(start, ixSeq + 1);
    }
    for (const { value } of this.batches(from, MAX_KEY)) yield viewOf(value);
  }

  *since(afterSeq: number): Iterable<EventRecord> {
    let start = 1;
    for (const { key } of this.batches(afterSeq + 1, 0, true)) { start = key; break; }
    for (const { value } of this.batches(start, MAX_KEY)) {
      if (batchEnd(value) <= afterSeq) continue;
      for (const e of batchEvents(value)) if (e.seq! > afterSeq) yield e;
    }
  }

  *sinceGroups(afterSeq: number): Iterable<EventRecord | CompactRun> {
    let start = 1;
    for (const { key } of this.batches(afterSeq + 1, 0, true)) { start = key; break; }
    for (const { value } of this.batches(start, MAX_KEY)) {
      if (batchEnd(value) <= afterSeq) continue;
      if (value.k && value.s > afterSeq) {
        let seq = value.s;
        for (const group of groupsOf(value.k)) { yield { seq, group }; seq += group.n; }
        continue;
      }
      for (const e of batchEvents(value)) if (e.seq! > afterSeq) yield e;
    }
  }

  *range(sinceAt?: number, untilAt?: number): Iterable<EventRecord> {
    let start = 1;
    if (sinceAt !== undefined && this.ix) {
      // the last batch that starts before sinceAt may still hold events at or after it
      start = this.ix.timeStart(sinceAt) ?? 1;
    }
    for (const { value } of this.batches(start, MAX_KEY)) {
      if (untilAt !== undefined && value.n > 0 && value.a0 > untilAt) break;
      if (sinceAt !== undefined && value.n > 0 && value.a1 < sinceAt) continue;
      for (const e of batchEvents(value)) {
        if (sinceAt !== undefined && e.at < sinceAt) continue;
        if (untilAt !== undefined && e.at > untilAt) continue;
        yield e;
      }
    }
  }

  // ---- snapshots and configuration ----------------------------------------------------------

  async saveSnapshot(seq: number, engineBytes: Uint8Array, configText?: string, at = this.now()): Promise<void> {
    if (this.readOnly || this.closed) throw new ApbError('storage_unavailable', 'the store is closed or read-only');
    if (!this.isHealthy) throw this.lastError ?? new ApbError('storage_unavailable', 'storage is unavailable');
    const file = `${String(seq).padStart(16, '0')}.snap`;
    const tmp = join(this.snapDir, file + '.tmp');
    try {
      // file first (fsynced, renamed into place), then its entry: a crash in between leaves an orphan file only
      const fh = await fsOpen(tmp, 'w', 0o600);
      try { await fh.writeFile(engineBytes); await fh.sync(); } finally { await fh.close(); }
      await rename(tmp, join(this.snapDir, file));
      const dh = await fsOpen(this.snapDir, 'r');
      try { await dh.sync(); } finally { await dh.close(); }
      const meta: SnapMeta = { seq, at, file, size: engineBytes.length };
      if (configText !== undefined) meta.configText = configText;
      await this.track(this.snaps.put(seq, meta));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw this.fail(err);
    }
    // keep the newest two (the older one is the fallback if the newest file is damaged)
    const all = this.snapMetas();
    for (const old of all.slice(0, Math.max(0, all.length - 2))) {
      await this.track(this.snaps.remove(old.seq));
      await unlink(join(this.snapDir, old.file)).catch(() => undefined);
    }
  }

  /**
   * Records a snapshot file written by someone else (the snapshot worker, snapshot-worker.ts):
   * `file` is a name inside D/snapshots, already fsynced and renamed into place. Puts its `snaps`
   * entry and keeps the newest two, as saveSnapshot does after writing the file itself.
   */
  async recordSnapshot(entry: SnapshotEntry): Promise<void> {
    if (this.readOnly || this.closed) throw new ApbError('storage_unavailable', 'the store is closed or read-only');
    if (!this.isHealthy) throw this.lastError ?? new ApbError('storage_unavailable', 'storage is unavailable');
    const { seq, at, file, size, configText } = entry;
    if (!/^[0-9]{16}\.snap$/.test(file) || statSync(join(this.snapDir, file), { throwIfNoEntry: false })?.size !== size) {
      throw new ApbError('internal', `snapshot file ${file} is not in ${this.snapDir} with ${size} bytes`);
    }
    const meta: SnapMeta = { seq, at, file, size };
    if (configText !== undefined) meta.configText = configText;
    try { await this.track(this.snaps.put(seq, meta)); } catch (err) { throw this.fail(err); }
    const all = this.snapMetas();
    for (const old of all.slice(0, Math.max(0, all.length - 2))) {
      await this.track(this.snaps.remove(old.seq));
      if (old.file !== file) await unlink(join(this.snapDir, old.file)).catch(() => undefined);
    }
  }

  /**
   * Cluster mode (src/cluster/snapshots.ts): an EMPTY journal made to start at a snapshot fetched
   * from the cluster: the engine bytes at `seq`, the configuration in force then, and the
   * controllers' idempotency high-water marks at that seq (so an old id resent later is known as
   * old). The journal then continues at seq + 1 (appendReplicated). Reopen the store afterwards.
   */
  async seedFromSnapshot(seq: number, at: number, bytes: Uint8Array, configText: string, idmax: [string, number, string | null][]): Promise<void> {
    if (this.seq !== 0 || this.lastBatch()) throw new ApbError('internal', `seedFromSnapshot: the journal is not empty (at ${this.seq})`);
    await this.saveSnapshot(seq, bytes, configText, at);
    try {
      await this.track(this.root.transaction(() => {
        this.meta.put('base', seq);
        this.meta.put('config', configText);
        this.meta.put('idmax', { s: seq, m: idmax } satisfies IdCheckpoint);
      }));
    } catch (err) { throw this.fail(err); }
    this.config = configText;
  }

  /** Every controller's idempotency high-water mark ([controller, max numeric id, max string id]) as of lastSeq. */
  idHighWater(): [string, number, string | null][] {
    const m: IdCheckpoint['m'] = [];
    for (const [c, w] of this.windows) m.push([c, w.maxNum, w.maxBig ?? null]);
    return m;
  }

  latestSnapshot(): SnapshotInfo | undefined {
    for (const f of this.snapshotFiles()) {
      try {
        const info: SnapshotInfo = { seq: f.seq, at: f.at, bytes: readWhole(f.path, f.size) };
        if (f.configText !== undefined) info.configText = f.configText;
        return info;
      } catch { /* unreadable file: fall back to the older one */ }
    }
    return undefined;
  }

  latestSnapshotFile(): SnapshotFileInfo | undefined {
    for (const f of this.snapshotFiles()) return f;
    return undefined;
  }

  /** the snapshot files whose size matches their entry, newest first (a damaged or missing file is skipped: the older one is the fallback) */
  private *snapshotFiles(): Generator<SnapshotFileInfo> {
    const metas = this.snapMetas();
    for (let k = metas.length - 1; k >= 0; k--) {
      const m = metas[k]!;
      const path = join(this.snapDir, m.file);
      let size: number;
      try { size = statSync(path).size; } catch { continue; }
      if (size !== m.size) continue;
      const info: SnapshotFileInfo = { seq: m.seq, at: m.at, path, size: m.size };
      if (m.configText !== undefined) info.configText = m.configText;
      yield info;
    }
  }

  async saveConfig(text: string): Promise<void> {
    if (this.readOnly || this.closed) throw new ApbError('storage_unavailable', 'the store is closed or read-only');
    // the server probes storage with saveConfig before it rebuilds its engine: refuse while the disk is full
    if (!this.isHealthy && !hasHeadroom(this.dir, this.headroom)) throw this.lastError ?? new ApbError('storage_unavailable', 'storage is unavailable (disk full)');
    this.config = text;
    try { await this.track(this.meta.put('config', text)); } catch (err) { throw this.fail(err); }
    this.recovered(); // a write committed: storage works (the server uses saveConfig as its probe)
  }

  configText(): string | undefined { return this.config; }

  // ---- retention ----------------------------------------------------------------------------

  /** bytes in use by the journal's log and the derived indexes */
  private usedBytes(): number {
    const s = this.log.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    let bytes = (s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages) * s.pageSize;
    try { if (this.ix) bytes += this.ix.bytes(); } catch { /* an unreadable index counts nothing */ }
    return bytes;
  }

  compact(): Promise<number> {
    if (this.readOnly || this.closed) return Promise.resolve(0);
    this.compacting ??= this.compactPass().finally(() => { this.compacting = undefined; });
    return this.compacting;
  }

  /**
   * Deletes the oldest batches while they are older than maxAgeMs or the log is larger than
   * maxBytes, never one that recovery could still need (newer than the older kept snapshot),
   * nor one not indexed yet, `chunk` deletions per event-loop turn. The index entries of deleted
   * batches are removed by the indexer afterwards (until then queries skip them: their batch is gone).
   */
  private async compactPass(): Promise<number> {
    const metas = this.snapMetas();
    if (metas.length === 0 || !this.isHealthy) return 0;
    const limitSeq = Math.min(metas[0]!.seq, this.indexer ? this.indexer.indexedSeq : Infinity);
    const ageCutoff = this.now() - this.retention.maxAgeMs;
    const used = this.usedBytes();
    const batches = (this.log.getStats() as { entryCount: number }).entryCount || 1;
    let overBytes = Math.max(0, used - this.retention.maxBytes);
    const perBatch = used / batches;
    let deleted = 0;
    for (;;) {
      let ops = 0;
      let last: Promise<boolean> | undefined;
      let more = false;
      const gone: BatchSpan[] = [];
      for (const { key, value: b } of this.log.getRange({ start: 1, end: MAX_KEY, snapshot: false })) {
        if (batchEnd(b) > limitSeq) break;
        if (!(b.a1 < ageCutoff || overBytes > 0)) break;
        if (ops >= this.retention.chunk) { more = true; break; }
        try { gone.push(spanOf(key, b)); } catch { /* a malformed value: it has no entries */ }
        // first (same transaction, or an earlier one): how far the journal was trimmed, so the next open
        // does not take the write-ahead log's old copy of a deleted batch for a hole (openWal)
        this.meta.put('trimmed', batchEnd(b));
        last = this.log.remove(key);
        ops += 2 + Math.max(b.n, 1) * 2;
        deleted += b.n;
        overBytes -= perBatch;
      }
      if (last) {
        try { await this.track(last); } catch (err) { this.fail(err); return deleted; }
        this.indexer?.remove(gone);
      }
      if (!more || this.closed) return deleted;
      await new Promise((r) => setImmediate(r)); // let decisions run between chunks
    }
  }

  stats(): StoreStats {
    let firstSeq = 0, events = 0;
    for (const { value } of this.log.getRange({ start: 1, end: MAX_KEY, limit: 1 })) firstSeq = value.s;
    // event count: exact would need a full scan, so records are counted only when the log is small
    const batches = (this.log.getStats() as { entryCount: number }).entryCount;
    let lmdbLast = 0;
    if (batches <= 100_000) for (const { key, value } of this.log.getRange({ start: 1, end: MAX_KEY })) { events += value.n; lmdbLast = key; }
    else events = -1;
    // the batches only the WAL holds yet (their LMDB put is a few milliseconds away)
    for (const b of this.walOnly.values()) {
      if (firstSeq === 0) firstSeq = b.s;
      if (events >= 0 && b.s > lmdbLast) events += b.n;
    }
    let indexedSeq = 0;
    try { indexedSeq = this.ix ? this.ix.indexedSeq : 0; } catch { /* unreadable: nothing indexed */ }
    return {
      events, firstSeq, lastSeq: this.seq, bytes: this.usedBytes(), indexedSeq,
      snapshots: this.snapMetas().map((m) => m.seq),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.readOnly) {
      this.flushTurn(); // appends of this turn are written (or refused) now, not after close
      await this.compacting?.catch(() => undefined);
      if (this.isHealthy) {
        await this.settle(5_000).catch(() => undefined);
        if (this.seq > this.checkpointSeq) { this.checkpoint(); } // the next open reads no tail
      }
    }
    this.closed = true;
    if (this.storeTimer) { clearTimeout(this.storeTimer); this.storeTimer = undefined; }
    clearInterval(this.probeTimer);
    clearInterval(this.retentionTimer);
    await this.wal?.close().catch(() => undefined);
    await this.indexer?.close().catch(() => undefined);
    await this.lastWrite.catch(noop);
    await this.root.committed;
    try {
      await this.ix?.close().catch(() => undefined);
      await this.root.close();
    } finally {
      this.unrouteOutput?.();
      await this.lock?.release(); // only once LMDB is closed: the next holder may open at once
    }
  }
}

/** A journal batch as the event pager (event-cursor.ts) reads it. */
function viewOf(b: Batch): BatchView {
  return { s: b.s, end: batchEnd(b), n: b.n, a0: b.a0, a1: b.a1, events: () => batchEvents(b) };
}

/** Reads a file into one uninitialised buffer in 64 MiB steps (faster than readFileSync for snapshots of hundreds of MB). */
function readWhole(path: string, size: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, Math.min(64 << 20, size - off), off);
      if (n === 0) throw new Error(`snapshot ${path} is shorter than recorded`);
      off += n;
    }
    return buf;
  } finally { closeSync(fd); }
}

/** `--data ''` would put the store in the current directory. */
export function checkDataPath(dir: unknown): void {
  if (typeof dir !== 'string' || dir === '') throw new ApbError('usage', 'the data directory path is empty: give --data a directory (or :memory:)');
}
