/**
 * The durable Store on lmdb-js (SPEC 9, issue 4).
 *
 * Data directory (`--data D`, any directory path, dots in its name included):
 *   D/data.mdb, D/lock.mdb     one LMDB environment holding the sub-databases below
 *   D/snapshots/<seq>.snap     engine snapshots (raw engine bytes), the newest 2 kept
 * It holds every bearer token (journaled site files): D and snapshots/ are created 0700,
 * files 0600, and a writable open takes group/other permissions off existing ones.
 *
 * Sub-databases (keys in lmdb-js ordered-binary, values msgpack unless noted):
 *   log      batchKey → Batch          one entry per append() call; batchKey = seq of its first record
 *   icred    [cred, batchKey] → 0x01   binary; "cred appears in that batch"
 *   ireader  [reader, batchKey] → 0x01 binary
 *   itime    [firstAt, batchKey] → 0x01 binary; where an export `--since T` starts
 *   iidem    [controller, id] → batchKey         ids zero-padded to 20 digits so they sort as numbers
 *   snaps    seq → { seq, at, file, size, configText }
 *   meta     'config' → text in force; 'indexed' → last seq covered by the indexes
 *
 * Hot path = ONE put per append (the whole frame's records and idempotency replies
 * in one msgpack value). lmdb-js batches every write issued in the same event-loop
 * turn into one write transaction (eventTurnBatching, on by default) committed on its
 * writer thread: that is the group commit. The put's promise resolves when that
 * transaction has committed; append() resolves then (durability 'commit') or after
 * the following fsync (durability 'flush'). noSync stays off; overlappingSync (lmdb-js
 * default on Linux) moves the fsync out of the write lock.
 *
 * The indexes are written off the hot path by an indexer that runs after commits,
 * a few thousand entries per event-loop turn. Until a batch is indexed, its
 * idempotency replies stay in memory (`pending`) and cred/reader queries scan it
 * from memory; on open, the unindexed tail is re-read from the log.
 */
import { chmodSync, closeSync, mkdirSync, existsSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { open as fsOpen, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { ApbError } from '../errors.js';
import {
  HealthListeners, RETENTION_DEFAULTS, clampLimit, configOf, redact, matches, normalizeId, padId, storageError,
  validateAppend,
} from './common.js';
import type { EventQuery, EventRecord, IdemRecord, SnapshotFileInfo, SnapshotInfo, Store, StoreOptions, StoreStats } from './types.js';
import type { DataLock } from './lock.js';
import { HEADROOM_BYTES, hasHeadroom } from './headroom.js';
import { routeLibraryOutput } from './lmdb-output.js';

/** One append() call as stored in `log`. */
interface Batch {
  s: number;                 // seq of the first record (= the key)
  n: number;                 // number of records
  a0: number;                // `at` of the first record (0 when none)
  a1: number;                // largest `at` in the batch
  z?: number;                // seq of the last record (a batch of replies only: its own seq)
  e: EventRecord[];          // records, seq included
  i?: [string, number | string, Uint8Array][]; // idempotency: controller, id, reply bytes
}

interface SnapMeta { seq: number; at: number; file: string; size: number; configText?: string }

interface QueueItem { key: number; batch: Batch; committed: boolean }

const ONE = Buffer.from([1]);
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
/** index entries written per indexer turn */
const INDEX_CHUNK = 2000;
/** records per log value; more appends in the same turn start another value (same transaction) */
const BATCH_EVENTS = 256;
/** index chunks whose commit may be outstanding at once */
const MAX_INDEX_CHUNKS = 4;
/**
 * LMDB refuses keys over 1,978 bytes (a synchronous throw from put/getRange). Index keys are
 * [name, number] or [name, 20-digit id]: a name up to this many UTF-8 bytes always fits, with room
 * for the second element and ordered-binary's separators. Longer names are never indexed
 * (the record stays in the journal, counted in indexSkipped) and find nothing when queried.
 */
export const MAX_INDEXED_NAME_BYTES = 1900;
function indexable(name: unknown): name is string {
  return typeof name === 'string' && (name.length <= MAX_INDEXED_NAME_BYTES / 3 || Buffer.byteLength(name) <= MAX_INDEXED_NAME_BYTES);
}
/** `mode` without group/other bits, for files that hold tokens */
function tighten(path: string, mode: number): void {
  try { if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, mode); } catch { /* not ours or gone: leave it */ }
}

function batchEnd(b: Batch): number { return b.z ?? b.s + Math.max(b.n, 1) - 1; }

export class LmdbStore implements Store {
  readonly kind = 'lmdb' as const;
  private readonly root: RootDatabase;
  private readonly log: Database<Batch, number>;
  private readonly icred: Database<Buffer, (string | number)[]>;
  private readonly ireader: Database<Buffer, (string | number)[]>;
  private readonly itime: Database<Buffer, number[]>;
  private readonly iidem: Database<number, string[]>;
  private readonly snaps: Database<SnapMeta, number>;
  private readonly meta: Database<unknown, string>;
  private readonly snapDir: string;

  private seq = 0;
  private indexedSeq = 0;
  private config: string | undefined;
  /** batches appended but not yet indexed, oldest first; positions below are logical (array index + shifted) */
  private queue: QueueItem[] = [];
  private shifted = 0;
  private done = 0;
  private head = 0;
  private indexedWritten = 0;
  private indexing = false;
  private chunksInFlight = 0;
  private indexBroken = false;
  /** index entries the indexer could not write (over-long key, or any other throw), since open */
  private skipped = 0;
  private readonly lock: DataLock | undefined;
  private unrouteOutput: (() => void) | undefined;
  /** idempotency replies of unindexed batches: controller\0id → reply, batchKey */
  private readonly pending = new Map<string, Map<number | string, { reply: Uint8Array; key: number }>>();
  /** per controller, the largest id (zero-padded) ever stored: a lookup above it is a miss without a read */
  private readonly maxIdem = new Map<string, string>();

  private isHealthy = true;
  private failureCount = 0;
  private lastError: Error | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private compacting: Promise<number> | undefined;
  private closed = false;
  /** the batch collecting this event-loop turn's appends */
  private turn: { item: QueueItem; cfg?: string; promise: Promise<void>; resolve(): void; reject(e: unknown): void } | undefined;
  private inflightCount = 0;
  private lastWrite: Promise<unknown> = Promise.resolve();
  private readonly listeners = new HealthListeners();
  private readonly retention: Required<typeof RETENTION_DEFAULTS>;
  private readonly now: () => number;
  private readonly flush: boolean;
  private readonly probeMs: number;
  private readonly readOnly: boolean;
  private readonly headroom: number;

  constructor(readonly dir: string, opts: StoreOptions = {}) {
    this.retention = { ...RETENTION_DEFAULTS, ...opts.retention };
    this.now = opts.now ?? Date.now;
    this.flush = opts.durability === 'flush';
    this.probeMs = opts.probeIntervalMs ?? 1000;
    this.readOnly = opts.readOnly === true;
    this.headroom = opts.headroomBytes ?? HEADROOM_BYTES;
    this.snapDir = join(dir, 'snapshots');
    this.lock = opts.lock;
    checkDataPath(dir);
    installRejectionFilter();
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
        eventTurnBatching: true, // one transaction per event-loop turn = group commit
      } as never);
      const ob = { keyEncoding: 'ordered-binary' as const };
      this.log = this.root.openDB<Batch, number>('log', {
        ...ob, encoding: 'msgpack', sharedStructuresKey: Symbol.for('structures'),
        // bigints beyond 2^53 (u64 credentials and ids) must come back exact
        encoder: { int64AsType: 'auto' },
      } as never);
      this.icred = this.root.openDB('icred', { ...ob, encoding: 'binary' });
      this.ireader = this.root.openDB('ireader', { ...ob, encoding: 'binary' });
      this.itime = this.root.openDB('itime', { ...ob, encoding: 'binary' });
      this.iidem = this.root.openDB('iidem', { ...ob, encoding: 'msgpack' });
      this.snaps = this.root.openDB('snaps', { ...ob, encoding: 'msgpack' });
      this.meta = this.root.openDB('meta', { ...ob, encoding: 'msgpack' });
    } catch (err) {
      this.unrouteOutput?.();
      if (err instanceof ApbError) throw err;
      throw new ApbError('storage_unavailable', `cannot open the data directory ${dir}: ${(err as Error).message}`);
    }
    this.loadState();
    if (!this.readOnly) {
      this.cleanSnapshotFiles();
      if (this.retention.intervalMs > 0) {
        this.retentionTimer = setInterval(() => { void this.compact().catch(() => undefined); }, this.retention.intervalMs);
        this.retentionTimer.unref();
      }
      this.scheduleIndex();
    }
  }

  // ---- open ---------------------------------------------------------------------------------

  private loadState(): void {
    const last = this.lastBatch();
    const snap = this.snapMetas().at(-1);
    this.seq = Math.max(last ? batchEnd(last) : 0, snap?.seq ?? 0);
    this.indexedSeq = (this.meta.get('indexed') as number | undefined) ?? 0;
    this.config = this.meta.get('config') as string | undefined;
    // largest indexed id of every controller: one reverse seek per controller
    let from: string[] = [''];
    for (;;) {
      let c: string | undefined;
      for (const k of this.iidem.getKeys({ start: from, limit: 1 })) c = k[0];
      if (c === undefined) break;
      for (const k of this.iidem.getKeys({ start: [c, '\uffff'], end: [c, ''], reverse: true, limit: 1 })) this.maxIdem.set(c, k[1]!);
      from = [c + '\u0000'];
    }
    // the unindexed tail: back into the indexer's queue, its idempotency replies into `pending`
    for (const { key, value } of this.log.getRange({ start: this.indexedSeq + 1, end: MAX_KEY })) {
      this.queue.push({ key, batch: value, committed: true });
      for (const [c, id, reply] of value.i ?? []) { this.pendingSet(c, id, reply, key); this.noteId(c, id); }
    }
  }

  private pendingSet(controller: string, id: number | string, reply: Uint8Array, key: number): void {
    let m = this.pending.get(controller);
    if (!m) this.pending.set(controller, (m = new Map()));
    m.set(id, { reply, key });
  }

  /** forgets a pending reply, unless a later batch has replaced it */
  private pendingDelete(controller: string, id: number | string, key: number): void {
    const m = this.pending.get(controller);
    if (m && m.get(id)?.key === key) m.delete(id);
  }

  private noteId(controller: string, id: number | string): void {
    const p = padId(id);
    const m = this.maxIdem.get(controller);
    if (m === undefined || p > m) this.maxIdem.set(controller, p);
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
  /** index entries skipped since open because they could not be written (a name over MAX_INDEXED_NAME_BYTES, or any throw) */
  get indexSkipped(): number { return this.skipped; }
  onHealthChange(cb: (healthy: boolean, error?: Error) => void): () => void { return this.listeners.add(cb); }

  private fail(err: unknown): ApbError {
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
        this.meta.put('probe', this.now()).then(
          () => this.recovered(),
          absorb, // still failing; try again next interval
        );
      } catch (err) { absorb(err); } // a throw inside a timer would end the process
    }, this.probeMs);
    this.probeTimer.unref();
  }

  private recovered(): void {
    if (this.isHealthy || this.closed) return;
    if (!hasHeadroom(this.dir, this.headroom)) return; // a small write got through, but the disk is still (nearly) full
    clearInterval(this.probeTimer); this.probeTimer = undefined;
    this.isHealthy = true;
    this.lastError = undefined;
    this.indexBroken = false;
    this.listeners.emit(true);
    this.scheduleIndex();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    // lmdb-js resolves writes in commit order: awaiting the last one awaits all before it
    this.inflightCount++;
    this.lastWrite = p;
    const done = (): void => { this.inflightCount--; };
    p.then(done, done);
    return p;
  }

  // ---- append (hot path) --------------------------------------------------------------------

  /**
   * Appends of one event-loop turn go into ONE log value (one put), flushed by setImmediate:
   * seqs and idempotency replies are assigned at once, the put follows at the end of the turn,
   * and every append of the turn resolves with that put's commit.
   */
  append(events: EventRecord[], idem: IdemRecord[]): Promise<void> {
    if (this.readOnly) return Promise.reject(new ApbError('storage_unavailable', 'the store is open read-only'));
    if (this.closed) return Promise.reject(new ApbError('storage_unavailable', 'the store is closed'));
    if (!this.isHealthy) return Promise.reject(this.lastError ?? new ApbError('storage_unavailable', 'storage is unavailable'));
    try { validateAppend(events, idem); } catch (e) { return Promise.reject(e); }
    if (events.length === 0 && idem.length === 0) return Promise.resolve();
    let t = this.turn;
    if (!t) {
      const key = this.seq + 1;
      const item: QueueItem = { key, batch: { s: key, n: 0, a0: 0, a1: 0, e: [] }, committed: false };
      this.queue.push(item);
      let resolve!: () => void, reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(noop); // every caller gets (and handles) this promise; this only keeps Node quiet
      t = this.turn = { item, promise, resolve, reject };
      setImmediate(() => this.flushTurn());
    }
    const b = t.item.batch;
    for (const e of events) {
      e.seq = ++this.seq;
      if (b.n === 0) b.a0 = e.at;
      if (e.at > b.a1) b.a1 = e.at;
      b.e.push(e);
      b.n++;
      const text = configOf(e);
      if (text !== undefined) { t.cfg = text; this.config = text; }
    }
    if (idem.length > 0) {
      const list = (b.i ??= []);
      for (const r of idem) {
        const id = normalizeId(r.id);
        list.push([r.controller, id, r.reply]);
        this.pendingSet(r.controller, id, r.reply, b.s);
        this.noteId(r.controller, id);
      }
    }
    const p = t.promise;
    // keep log values small (queries and retention read whole batches): a full batch is put now,
    // still in this turn's transaction
    if (b.n >= BATCH_EVENTS) this.flushTurn();
    return p;
  }

  private flushTurn(): void {
    const t = this.turn;
    if (!t) return;
    this.turn = undefined;
    const b = t.item.batch;
    if (this.seq < b.s) this.seq = b.s; // a batch of replies only still takes a seq (keys stay unique)
    b.z = this.seq;
    if (this.closed || !this.isHealthy) {
      this.dropBatch(t.item);
      t.reject(this.lastError ?? new ApbError('storage_unavailable', 'storage is unavailable'));
      return;
    }
    let written: Promise<boolean>;
    try {
      written = this.log.put(b.s, b);
      // the configuration in force is kept beside the log, in the same transaction
      if (t.cfg !== undefined) this.meta.put('config', t.cfg).catch(noop);
    } catch (err) {
      // encoding or a synchronous lmdb-js error: nothing was written for this batch
      this.dropBatch(t.item);
      t.reject(this.fail(err));
      return;
    }
    this.track(this.afterWrite(written)).then(
      () => { t.item.committed = true; t.resolve(); this.scheduleIndex(); },
      (err: unknown) => { this.dropBatch(t.item); t.reject(this.fail(err)); },
    );
  }

  private async afterWrite(p: Promise<boolean>): Promise<void> {
    await p;
    if (this.flush) await this.root.flushed;
  }

  /** A batch that did not commit: forget its idempotency replies and take it out of the indexer queue. */
  private dropBatch(item: QueueItem): void {
    for (const [c, id] of item.batch.i ?? []) {
      this.pendingDelete(c, id, item.key);
    }
    const at = this.queue.indexOf(item, Math.max(0, this.head - this.shifted));
    if (at >= 0) this.queue.splice(at, 1);
  }

  // ---- indexer (off the hot path) -----------------------------------------------------------

  /*
   * Indexer pipeline over `queue`:
   *   [0, done)        indexed and confirmed committed (indexedSeq = end of queue[done-1])
   *   [done, head)     index writes issued, commit not yet confirmed (at most MAX_INDEX_CHUNKS chunks)
   *   [head, ...)      committed batches waiting (or still in flight themselves: committed=false)
   * A chunk's writes share one transaction. meta 'indexed' only ever records what is confirmed
   * (it is written with the next chunk), so after a crash the tail is re-read from a safe point.
   */
  private scheduleIndex(): void {
    if (this.indexing || this.closed || this.readOnly || !this.isHealthy || this.indexBroken) return;
    if (this.chunksInFlight >= MAX_INDEX_CHUNKS || !this.queue[this.head - this.shifted]?.committed) return;
    this.indexing = true;
    setImmediate(() => { this.indexing = false; this.indexStep(); });
  }

  /**
   * Runs in a setImmediate callback: nothing in a journal record may make it throw (an uncaught
   * throw here ends the process, and every restart would index the same batch again). An entry
   * that cannot be written is skipped and counted; anything else that throws is a storage failure.
   */
  private indexStep(): void {
    try { this.indexChunk(); } catch (err) {
      absorb(err);
      if (!this.indexBroken && !this.closed) { this.indexBroken = true; this.head = this.done; this.fail(err); }
    }
  }

  /** one index write; a synchronous throw (the key cannot be written) is counted and skipped */
  private indexPut(run: () => Promise<unknown>): void {
    try { run().catch(noop); } catch { this.skipped++; }
  }

  private indexChunk(): void {
    if (this.closed || this.indexBroken || !this.isHealthy) return;
    const from = this.head;
    let writes = 0;
    let end = 0;
    while (writes < INDEX_CHUNK) {
      const item = this.queue[this.head - this.shifted];
      if (!item || !item.committed) break;
      this.head++;
      const { key, batch } = item;
      try { writes += this.indexBatch(key, batch); } catch { this.skipped++; writes++; } // a malformed record: skip it
      end = batchEnd(batch);
    }
    if (this.head === from) return;
    if (this.indexedSeq !== this.indexedWritten) { this.indexedWritten = this.indexedSeq; this.meta.put('indexed', this.indexedSeq).catch(noop); }
    // the last write of this turn resolves when the whole chunk's transaction commits
    const last = this.meta.put('indexIssued', end);
    this.chunksInFlight++;
    const to = this.head;
    this.track(last).then(() => {
      this.chunksInFlight--;
      if (this.indexBroken) return;
      for (let k = from; k < to; k++) {
        const { key, batch } = this.queue[k - this.shifted]!;
        for (const [c, id] of batch.i ?? []) this.pendingDelete(c, id, key);
      }
      this.done = to;
      this.indexedSeq = end;
      this.compactQueue();
      this.scheduleIndex();
    }, (err: unknown) => {
      this.chunksInFlight--;
      absorb(err);
      if (!this.indexBroken) {
        this.indexBroken = true;
        this.head = this.done; // re-index from the last confirmed point once storage works (puts are idempotent)
        if (!this.closed) this.fail(err);
      }
    });
    this.scheduleIndex();
  }

  /** Issues the index writes of one batch; returns how many. */
  private indexBatch(key: number, batch: Batch): number {
    const { creds, readers, skipped } = indexNames(batch);
    this.skipped += skipped;
    for (const c of creds) this.indexPut(() => this.icred.put([c, key], ONE));
    for (const r of readers) this.indexPut(() => this.ireader.put([r, key], ONE));
    if (batch.n > 0) this.indexPut(() => this.itime.put([batch.a0, key], ONE));
    const idem = Array.isArray(batch.i) ? batch.i : [];
    for (const [c, id] of idem) {
      if (indexable(c)) this.indexPut(() => this.iidem.put([c, padId(id)], key));
      else this.skipped++;
    }
    return creds.size + readers.size + idem.length + 2;
  }

  /** Drops confirmed items from the front of the queue now and then (positions are kept via `shifted`). */
  private compactQueue(): void {
    const d = this.done - this.shifted;
    if (d > 1024 && d * 2 > this.queue.length) {
      this.queue = this.queue.slice(d);
      this.shifted += d;
    }
  }

  async whenCommitted(): Promise<void> {
    if (this.turn) await this.turn.promise.catch(noop);
    await this.lastWrite.catch(noop);
  }

  /** Resolves once everything appended so far is committed and indexed (tests, close, benchmarks). */
  async settle(maxMs = 30_000): Promise<void> {
    // bounded: close() must finish even if the indexer cannot progress (what is not
    // indexed yet is indexed again from meta 'indexed' on the next open)
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline && (this.turn !== undefined || this.inflightCount > 0 || this.indexing || this.chunksInFlight > 0 || (this.isHealthy && !this.indexBroken && this.queue[this.head - this.shifted]?.committed))) {
      if (this.turn) await this.turn.promise.catch(noop);
      await this.lastWrite.catch(noop);
      await new Promise((r) => setImmediate(r));
    }
  }

  // ---- idempotency --------------------------------------------------------------------------

  getIdem(controller: string, id: number | string | bigint): Uint8Array | undefined {
    const nid = normalizeId(id);
    const p = this.pending.get(controller)?.get(nid);
    if (p) return p.reply;
    const pid = padId(nid);
    const max = this.maxIdem.get(controller);
    if (max === undefined || pid > max) return undefined; // the usual case for a new message: no read at all
    if (!indexable(controller)) return undefined;            // never indexed (its key would not fit)
    const key = this.iidem.get([controller, pid]);
    if (key === undefined) return undefined;
    const batch = this.log.get(key);
    for (const [c, bid, reply] of batch?.i ?? []) if (c === controller && bid === nid) return reply;
    return undefined;
  }

  // ---- reads --------------------------------------------------------------------------------

  query(q: EventQuery): EventRecord[] {
    const limit = clampLimit(q);
    const out: EventRecord[] = [];
    const take = (b: Batch): boolean => {
      for (let k = b.e.length - 1; k >= 0; k--) {
        const e = b.e[k]!;
        if (matches(e, q)) { out.push(redact(e)); if (out.length >= limit) return false; }
      }
      // `at` is the engine clock, non-decreasing with seq: older batches cannot match `since`
      return !(q.since !== undefined && b.a1 < q.since);
    };
    const top = q.beforeSeq !== undefined ? q.beforeSeq - 1 : MAX_KEY;
    const index = q.cred !== undefined ? this.icred : q.reader !== undefined ? this.ireader : undefined;
    if (!index) {
      for (const { value } of this.log.getRange({ start: top, end: 0, reverse: true })) if (!take(value)) break;
      return out;
    }
    // committed but not yet indexed batches, from memory, newest first
    for (let k = this.queue.length - 1; k >= this.done - this.shifted; k--) {
      const it = this.queue[k]!;
      if (!it.committed || it.key > top) continue;
      if (!take(it.batch)) return out;
    }
    const name = (q.cred ?? q.reader)!;
    if (!indexable(name)) return out; // never indexed: only the unindexed tail above can hold it
    const seen = new Set<number>();
    for (const { key } of index.getRange({ start: [name, Math.min(top, this.indexedSeq)], end: [name, 0], reverse: true })) {
      const bk = key[1] as number;
      if (seen.has(bk)) continue;
      seen.add(bk);
      const b = this.log.get(bk);
      if (b && !take(b)) break;
    }
    return out;
  }

  *since(afterSeq: number): Iterable<EventRecord> {
    let start = 1;
    for (const { key } of this.log.getRange({ start: afterSeq + 1, end: 0, reverse: true, limit: 1 })) start = key;
    for (const { value } of this.log.getRange({ start, end: MAX_KEY })) {
      for (const e of value.e) if (e.seq! > afterSeq) yield e;
    }
  }

  *range(sinceAt?: number, untilAt?: number): Iterable<EventRecord> {
    let start = 1;
    if (sinceAt !== undefined) {
      // the last batch that starts before sinceAt may still hold events at or after it
      for (const { key } of this.itime.getRange({ start: [sinceAt, 0], end: [0, 0], reverse: true, limit: 1 })) start = key[1]!;
    }
    for (const { value } of this.log.getRange({ start, end: MAX_KEY })) {
      if (untilAt !== undefined && value.n > 0 && value.a0 > untilAt) break;
      for (const e of value.e) {
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

  private usedBytes(): number {
    let pages = 0, pageSize = 4096;
    for (const db of [this.log, this.icred, this.ireader, this.itime, this.iidem]) {
      const s = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      pageSize = s.pageSize;
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return pages * pageSize;
  }

  compact(): Promise<number> {
    if (this.readOnly || this.closed) return Promise.resolve(0);
    this.compacting ??= this.compactPass().finally(() => { this.compacting = undefined; });
    return this.compacting;
  }

  /**
   * Deletes the oldest batches while they are older than maxAgeMs or the log is larger than
   * maxBytes, never one that recovery could still need (newer than the older kept snapshot,
   * or not yet indexed), `chunk` deletions per event-loop turn.
   */
  private async compactPass(): Promise<number> {
    const metas = this.snapMetas();
    if (metas.length === 0 || !this.isHealthy) return 0;
    const limitSeq = Math.min(metas[0]!.seq, this.indexedSeq);
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
      for (const { key, value: b } of this.log.getRange({ start: 1, end: MAX_KEY, snapshot: false })) {
        if (batchEnd(b) > limitSeq) break;
        if (!(b.a1 < ageCutoff || overBytes > 0)) break;
        if (ops >= this.retention.chunk) { more = true; break; }
        last = this.removeBatch(key, b);
        ops += 2 + b.e.length * 2 + (b.i?.length ?? 0);
        deleted += b.n;
        overBytes -= perBatch;
      }
      if (last) {
        try { await this.track(last); } catch (err) { this.fail(err); return deleted; }
      }
      if (!more || this.closed) return deleted;
      await new Promise((r) => setImmediate(r)); // let decisions run between chunks
    }
  }

  private removeBatch(key: number, b: Batch): Promise<boolean> {
    // the same names the indexer wrote: an unindexable one has no entry (and its key would throw)
    const { creds, readers } = indexNames(b);
    const drop = (run: () => Promise<unknown>): void => { try { run().catch(noop); } catch { /* never written */ } };
    for (const c of creds) drop(() => this.icred.remove([c, key]));
    for (const r of readers) drop(() => this.ireader.remove([r, key]));
    if (b.n > 0) drop(() => this.itime.remove([b.a0, key]));
    for (const [c, id] of Array.isArray(b.i) ? b.i : []) if (indexable(c)) drop(() => this.iidem.remove([c, padId(id)]));
    return this.log.remove(key);
  }

  stats(): StoreStats {
    let firstSeq = 0, events = 0;
    for (const { value } of this.log.getRange({ start: 1, end: MAX_KEY, limit: 1 })) firstSeq = value.s;
    // event count: exact would need a full scan; batches × mean batch size of the newest batch is not
    // reliable, so count records by scanning only when the log is small
    const batches = (this.log.getStats() as { entryCount: number }).entryCount;
    if (batches <= 100_000) for (const { value } of this.log.getRange({ start: 1, end: MAX_KEY })) events += value.n;
    else events = -1;
    return {
      events, firstSeq, lastSeq: this.seq, bytes: this.usedBytes(), indexedSeq: this.indexedSeq,
      snapshots: this.snapMetas().map((m) => m.seq),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.readOnly) {
      this.flushTurn(); // appends of this turn are written (or refused) now, not after close
      await this.compacting?.catch(() => undefined);
      if (this.isHealthy) await this.settle().catch(() => undefined);
    }
    this.closed = true;
    clearInterval(this.probeTimer);
    clearInterval(this.retentionTimer);
    await this.lastWrite.catch(noop);
    try { await this.root.close(); } finally {
      this.unrouteOutput?.();
      await this.lock?.release(); // only once LMDB is closed: the next holder may open at once
    }
  }
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

/** The cred and reader names of a batch the indexer writes, and how many it skips (not a string, or too long). */
function indexNames(b: Batch): { creds: Set<string>; readers: Set<string>; skipped: number } {
  const creds = new Set<string>(), readers = new Set<string>();
  let skipped = 0;
  for (const e of Array.isArray(b.e) ? b.e : []) {
    if (!e || typeof e !== 'object') continue;
    if (e.cred !== undefined) { if (indexable(e.cred)) creds.add(e.cred); else skipped++; }
    if (e.reader !== undefined) { if (indexable(e.reader)) readers.add(e.reader); else skipped++; }
  }
  return { creds, readers, skipped };
}

/** `--data ''` would put the store in the current directory. */
export function checkDataPath(dir: unknown): void {
  if (typeof dir !== 'string' || dir === '') throw new ApbError('usage', 'the data directory path is empty: give --data a directory (or :memory:)');
}
