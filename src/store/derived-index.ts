/**
 * The derived indexes of the event log, in an LMDB environment of their own
 * (D/index/), so that nothing but the journal's sequential appends is ever
 * on the reply path.
 *
 * Why a second environment: LMDB commits a whole environment at once. When
 * index entries at random B-tree positions (by credential, by reader) share
 * the journal's transaction, every commit copies and writes scattered pages
 * and the reply waits for all of them. In an environment of its own the
 * indexer (index-worker.ts, a worker thread) commits in large sorted
 * batches, never blocks a journal commit, and may lag: queries read the
 * indexed part here plus the journal's not-yet-indexed tail, so they stay
 * exact.
 *
 * The environment is opened with noSync: it is rebuilt from the journal
 * whenever it is missing, damaged, or was built from another journal (meta
 * 'journal' must equal the journal's own id, meta 'journalId' of D/data.mdb),
 * so losing it loses nothing. D/index is created 0700, its files 0600 (it
 * names every credential).
 *
 * Sub-databases (keys ordered-binary):
 *   credrun   [runId, h, batchKey]  → a block of sorted (fingerprint, batch) entries: the
 *             by-credential index as runs merged in the background (name-runs.ts: why, and the layout)
 *   readerrun [runId, h, batchKey]  → the same, by reader
 *   time      [firstAt, batchKey]   → 0x01   where an export `--since T` starts: one batch in every
 *             TIME_EVERY seqs at least (a query starts a little early or stops a little late, and
 *             filters events by time anyway)
 *   idemrun   [runId, h, batchKey]  → the same, by (controller, message id): h is the fingerprint of
 *             `controller NUL 20-digit id`; the newest batch that may hold the id comes first
 *   meta      'indexed' → seq covered (every batch with key <= it is indexed);
 *             'journal' → the journal id this index belongs to;
 *             'format'  → INDEX_FORMAT (an index of another format is rebuilt);
 *             'time.last' → the key of the newest time entry;
 *             the runs' own keys (name-runs.ts)
 * Entries of one transaction are sorted, and meta 'indexed' moves in the same
 * transaction, so a reader sees a consistent indexed prefix.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { padId } from './common.js';
import { f64At, groupsOf, recordLength, type CompactGroup } from './compact-journal.js';
import { endNativeWriteLine } from './lmdb-output.js';
import { NameRuns, PairList } from './name-runs.js';
import { FNV_BASIS, continueCode, continueNumber, continueText, fingerprint } from './fingerprint.js';

/** What the indexer needs of a journal batch (journal-batch.ts Batch). */
export interface IndexableBatch {
  s: number;
  n: number;
  a0: number;
  z?: number;
  e?: { cred?: unknown; reader?: unknown }[];
  i?: [string, number | string, Uint8Array][];
  k?: CompactGroup | CompactGroup[];
}

/** What retention removes again of a batch: its key and the time of its first record (the time index's entry). */
export interface BatchSpan { key: number; a0: number | null }

/**
 * The index entries of a chunk of batches, gathered as the indexer reads them (ascending keys): per
 * index a list of (fingerprint, batch key) pairs, and each batch's span. Names are hashed as they are
 * read; nothing is kept per record (name-runs.ts keeps only fingerprints anyway).
 */
export class ChunkEntries {
  readonly cred = new PairList();
  readonly reader = new PairList();
  readonly idem = new PairList();
  readonly spans: BatchSpan[] = [];
  /** names that cannot be keys (too long, or not strings): left out, counted */
  skipped = 0;
  /** records read */
  events = 0;

  private at = [0, 0, 0, 0, 0, 0];
  /** Marks where the next batch starts (undo() drops what it added: a malformed value). */
  begin(): void { const a = this.at; a[0] = this.cred.n; a[1] = this.reader.n; a[2] = this.idem.n; a[3] = this.spans.length; a[4] = this.skipped; a[5] = this.events; }
  undo(): void { const a = this.at; this.cred.n = a[0]!; this.reader.n = a[1]!; this.idem.n = a[2]!; this.spans.length = a[3]!; this.skipped = a[4]!; this.events = a[5]!; }

  /** A batch given by its names (the general journal form; tests). */
  addNames(key: number, a0: number | null, creds: readonly string[], readers: readonly string[], ids: readonly (readonly [string, number | string])[]): void {
    this.spans.push({ key, a0 });
    for (const c of creds) this.cred.push(fingerprint(c), key);
    for (const r of readers) this.reader.push(fingerprint(r), key);
    for (const [c, id] of ids) this.idem.push(idemFingerprint(c, id), key);
  }
}

const ONE = Buffer.from([1]);
/**
 * 3: by credential, reader and message id as runs (name-runs.ts), the time index sparse;
 * 1 (no 'format' key): B-trees keyed [name, batch]; 2: only credential and reader as runs
 */
export const INDEX_FORMAT = 3;
/** seqs between two entries of the time index (at most) */
export const TIME_EVERY = 1024;
const noop = (): void => undefined;
/**
 * The documented bound on indexed names (operations.md): longer names are never indexed (the record
 * stays in the journal, counted as skipped) and find nothing when queried. It dates from the B-tree
 * format, whose keys held the name (LMDB refuses keys over 1,978 bytes); the runs hold a fingerprint,
 * and the bound stays so that what is indexed does not change with the format.
 */
export const MAX_INDEXED_NAME_BYTES = 1900;
export function indexable(name: unknown): name is string {
  return typeof name === 'string' && (name.length <= MAX_INDEXED_NAME_BYTES / 3 || Buffer.byteLength(name) <= MAX_INDEXED_NAME_BYTES);
}

export function batchEndOf(b: IndexableBatch): number { return b.z ?? b.s + Math.max(b.n, 1) - 1; }

export function spanOf(key: number, b: IndexableBatch): BatchSpan { return { key, a0: b.n > 0 ? b.a0 : null }; }

const readerSeen = new Uint8Array(256);
/** Adds a batch's index entries to `into`; names that cannot be keys (or are not strings) are counted in `skipped`. */
export function entriesOf(key: number, b: IndexableBatch, into: ChunkEntries): void {
  into.spans.push(spanOf(key, b));
  into.events += Math.max(b.n, 1);
  if (b.k) {
    for (const g of groupsOf(b.k)) {
      const bytes = g.b;
      // the idem name is `controller NUL id`: the controller's part hashed once per group
      const named = indexable(g.c);
      const idemBase = named ? continueCode(continueText(FNV_BASIS, g.c), 0) : 0;
      readerSeen.fill(0, 0, g.r.length);
      let off = 0;
      for (let r = 0; r < g.n; r++) {
        into.cred.push(continueNumber(FNV_BASIS, f64At(bytes, off + 16)) >>> 0, key);
        const ri = bytes[off + 25]!;
        const reader = g.r[ri];
        if (!indexable(reader)) into.skipped++;
        else if (readerSeen[ri] === 0) { readerSeen[ri] = 1; into.reader.push(fingerprint(reader), key); }
        if (named) into.idem.push(continueNumber(idemBase, f64At(bytes, off + 8), ID_DIGITS) >>> 0, key); else into.skipped++;
        off += recordLength(g, off);
      }
    }
  } else {
    for (const e of Array.isArray(b.e) ? b.e : []) {
      if (!e || typeof e !== 'object') continue;
      if (e.cred !== undefined) { if (indexable(e.cred)) into.cred.push(fingerprint(e.cred), key); else into.skipped++; }
      if (e.reader !== undefined) { if (indexable(e.reader)) into.reader.push(fingerprint(e.reader), key); else into.skipped++; }
    }
    for (const x of Array.isArray(b.i) ? b.i : []) {
      if (Array.isArray(x) && indexable(x[0]) && (typeof x[1] === 'number' || typeof x[1] === 'string')) into.idem.push(idemFingerprint(x[0], x[1]), key);
      else into.skipped++;
    }
  }
}

/** the width message ids are padded to in the idem name (common.ts padId) */
const ID_DIGITS = 20;
/**
 * The fingerprint of the name a message id is indexed under, `controller NUL padId(id)` (common.ts),
 * hashed without making the name when the id is a number (indexer and queries alike)
 */
export function idemFingerprint(controller: string, id: number | string): number {
  const h = continueCode(continueText(FNV_BASIS, controller), 0);
  return (typeof id === 'number' ? continueNumber(h, id, ID_DIGITS) : continueText(h, padId(id))) >>> 0;
}

/** `mode` without group/other bits */
function tighten(path: string, mode: number): void {
  try { if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, mode); } catch { /* gone: leave it */ }
}

/**
 * Whether `dir`/data.mdb looks like an LMDB environment (its first meta page carries LMDB's magic).
 * LMDB trusts its files: opening a truncated or overwritten one can abort the process, so a file
 * that fails this check is removed, never opened. (Subtler page damage is not detected: a D/index
 * suspected of it is simply deleted; it is rebuilt.)
 */
function looksLikeLmdb(dir: string): boolean {
  const path = join(dir, 'data.mdb');
  let fd: number | undefined;
  try {
    if (statSync(path).size < 2 * 4096) return false;
    fd = openSync(path, 'r');
    const head = Buffer.alloc(32);
    if (readSync(fd, head, 0, 32, 0) !== 32) return false;
    return head.readUInt32LE(24) === 0xbeefc0de || head.readUInt32LE(16) === 0xbeefc0de;
  } catch { return false; } finally { if (fd !== undefined) closeSync(fd); }
}

export class DerivedIndex {
  private readonly root: RootDatabase;
  private readonly runs: Record<'cred' | 'reader' | 'idem', NameRuns>;
  private readonly credrun: Database<Buffer, [number, number, number]>;
  private readonly readerrun: Database<Buffer, [number, number, number]>;
  private readonly time: Database<Buffer, number[]>;
  private readonly idemrun: Database<Buffer, [number, number, number]>;
  private readonly meta: Database<unknown, string>;

  private constructor(readonly dir: string, readOnly: boolean) {
    if (!readOnly) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      tighten(dir, 0o700);
      for (const f of ['data.mdb', 'lock.mdb']) tighten(join(dir, f), 0o600);
    }
    this.root = open({ path: dir, noSubdir: false, maxDbs: 8, readOnly, noSync: true, permissionsMode: 0o600, mapSize: 2 ** 28 } as never);
    const ob = { keyEncoding: 'ordered-binary' as const };
    this.credrun = this.root.openDB('credrun', { ...ob, encoding: 'binary' });
    this.readerrun = this.root.openDB('readerrun', { ...ob, encoding: 'binary' });
    this.time = this.root.openDB('time', { ...ob, encoding: 'binary' });
    this.idemrun = this.root.openDB('idemrun', { ...ob, encoding: 'binary' });
    this.meta = this.root.openDB('meta', { ...ob, encoding: 'msgpack' });
    this.runs = {
      cred: new NameRuns(this.credrun, this.meta, 'cred'),
      reader: new NameRuns(this.readerrun, this.meta, 'reader'),
      idem: new NameRuns(this.idemrun, this.meta, 'idem'),
    };
  }

  /**
   * Opens D/index for the journal `journalId`, starting afresh (the directory removed and created
   * again) when it belongs to another journal, cannot be opened, or has indexed past `journalEnd`
   * (the journal's last seq). `rebuilt` says it did.
   * Read-only: null when there is no usable index (callers scan the journal).
   */
  static open(dir: string, journalId: string, readOnly = false, rebuild = false, journalEnd = Infinity): { ix: DerivedIndex; rebuilt: boolean } | null {
    if (readOnly && !existsSync(join(dir, 'data.mdb'))) return null;
    let ix: DerivedIndex | null = null;
    if (existsSync(join(dir, 'data.mdb')) && !looksLikeLmdb(dir)) {
      if (readOnly) return null;
      rmSync(dir, { recursive: true, force: true }); // not an LMDB file: rebuilt below
    }
    try {
      ix = new DerivedIndex(dir, readOnly);
      // D/index is written without fsync: after a power loss it can claim batches the journal no longer
      // holds (their seqs will be reused by new records, which would then never be indexed): rebuilt
      const ahead = ((ix.meta.get('indexed') as number | undefined) ?? 0) > journalEnd;
      const format = ix.meta.get('format');
      if (ix.meta.get('journal') === journalId && format === INDEX_FORMAT && !rebuild && !ahead) return { ix, rebuilt: false };
      if (readOnly) { void ix.close().catch(noop); return null; }
      if (format === INDEX_FORMAT || format === undefined && ix.meta.get('journal') === undefined) {
        // another journal's index (or a new one): start over
        for (const db of [ix.credrun, ix.readerrun, ix.idemrun, ix.time, ix.meta]) db.clearSync();
        ix.meta.putSync('indexed', 0);
        ix.meta.putSync('format', INDEX_FORMAT);
        ix.meta.putSync('journal', journalId); // last: a crash before it leaves an index that is rebuilt again
        return { ix, rebuilt: true };
      }
      // another format (its sub-databases would linger): removed and created again below
    } catch {
      if (readOnly) { if (ix) void ix.close().catch(noop); return null; }
    }
    // a damaged index, or one of another format: start over (closed first, then removed)
    if (ix) { try { ix.closeSync(); } catch { /* already unusable */ } }
    rmSync(dir, { recursive: true, force: true });
    const fresh = new DerivedIndex(dir, false);
    fresh.meta.putSync('format', INDEX_FORMAT);
    fresh.meta.putSync('journal', journalId);
    fresh.meta.putSync('indexed', 0);
    return { ix: fresh, rebuilt: true };
  }

  /** Opens an index some other thread of this process validated (DerivedIndex.open) already. */
  static attach(dir: string, syncWrites = false): DerivedIndex {
    const ix = new DerivedIndex(dir, false);
    ix.syncWrites = syncWrites;
    return ix;
  }
  /** transactions run and commit on the calling thread (the index worker's own thread) */
  private syncWrites = false;

  /** every batch with key <= this is indexed (read in the caller's current read transaction) */
  get indexedSeq(): number { return (this.meta.get('indexed') as number | undefined) ?? 0; }

  /**
   * Indexes batches (ascending keys, nothing between them missing) up to seq `end`, entries sorted so
   * the transaction touches neighbouring pages; resolves when that transaction has committed.
   */
  add(chunk: ChunkEntries, end: number): Promise<void> {
    const batches = chunk.spans;
    const lo = batches.length ? batches[0]!.key : end;
    return this.write(() => {
      this.runs.cred.append(chunk.cred, lo, end);
      this.runs.reader.append(chunk.reader, lo, end);
      this.runs.idem.append(chunk.idem, lo, end);
      let last = (this.meta.get('time.last') as number | undefined) ?? -TIME_EVERY;
      for (const b of batches) {
        // `at` does not decrease with the key: in order
        if (b.a0 !== null && b.key >= last + TIME_EVERY) { this.time.put([b.a0, b.key], ONE); last = b.key; }
      }
      this.meta.put('time.last', last);
      this.meta.put('indexed', end);
    });
  }

  /**
   * One D/index transaction. On the index worker (`syncWrites`) it runs and commits on that thread
   * itself (transactionSync): the page writes of the commit then cost the worker's own (lowered)
   * priority, not a thread of the process's libuv pool, which the journal's commits need at once.
   * Elsewhere (inline mode, on the main thread) an asynchronous transaction as before.
   */
  private write(fn: () => void): Promise<void> {
    if (!this.syncWrites) return this.root.transaction(fn).then(noop);
    try { this.root.transactionSync(fn); return Promise.resolve(); } catch (e) {
      endNativeWriteLine(e); // a full disk: LMDB's own raw line on stderr ends before the error is logged
      return Promise.reject(e);
    }
  }

  /**
   * Removes the entries of batches retention deleted from the journal (always the oldest ones: the
   * runs just ignore keys up to the newest of them, and drop them as they merge).
   */
  remove(batches: BatchSpan[]): Promise<void> {
    return this.write(() => {
      let newest = 0;
      for (const b of batches) {
        if (b.key > newest) newest = b.key;
        if (b.a0 !== null) this.time.remove([b.a0, b.key]);
      }
      for (const runs of Object.values(this.runs)) runs.raiseFloor(newest);
    });
  }

  /**
   * Batch keys that may hold `name`'s events, newest first, from `top` down. They may include
   * another name's batches (a shared fingerprint): callers filter events anyway.
   */
  *keysOf(kind: 'cred' | 'reader', name: string, top: number): Iterable<number> {
    if (indexable(name)) yield* this.runs[kind].keysDown(fingerprint(name), top);
  }

  /** Batch keys that may hold `name`'s events, oldest first, from `bottom` up to `top` (both included). */
  *keysUp(kind: 'cred' | 'reader', name: string, bottom: number, top: number): Iterable<number> {
    if (indexable(name) && top >= bottom) yield* this.runs[kind].keysUp(fingerprint(name), bottom, top);
  }

  /**
   * One bounded step of background work on the runs (a merge, or deleting merged runs' blocks),
   * committed on the calling thread. False: nothing left to do.
   */
  maintain(stepEntries?: number): boolean {
    const write = (fn: () => void): void => {
      try { this.root.transactionSync(fn); } catch (e) { endNativeWriteLine(e); throw e; }
    };
    return this.runs.cred.maintain(write, stepEntries) || this.runs.reader.maintain(write, stepEntries) || this.runs.idem.maintain(write, stepEntries);
  }

  /** the runs' shape (stats, tests) */
  runShape(kind: 'cred' | 'reader' | 'idem'): { runs: number; entries: number; blocks: number } { return this.runs[kind].shape(); }

  /** The key of the first indexed batch whose first record is later than `untilAt` (nothing from there on is at or before it), or undefined. */
  timeAfter(untilAt: number): number | undefined {
    for (const { key } of this.time.getRange({ start: [untilAt, Number.MAX_SAFE_INTEGER], limit: 1 })) return key[1]!;
    return undefined;
  }

  /** The key of the last batch that starts before `sinceAt` (an export starts there), or undefined. */
  timeStart(sinceAt: number): number | undefined {
    for (const { key } of this.time.getRange({ start: [sinceAt, 0], end: [0, 0], reverse: true, limit: 1 })) return key[1]!;
    return undefined;
  }

  /**
   * The batches that may hold (controller, id)'s reply, newest first (the newest that holds it
   * answers); another id's batches may come too (a shared fingerprint): the caller checks.
   */
  *idemBatches(controller: string, id: number | string): Iterable<number> {
    if (indexable(controller)) yield* this.runs.idem.keysDown(idemFingerprint(controller, id), Number.MAX_SAFE_INTEGER);
  }

  /** bytes in use (stats) */
  bytes(): number {
    let pages = 0, pageSize = 4096;
    for (const db of [this.credrun, this.readerrun, this.idemrun, this.time]) {
      const s = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      pageSize = s.pageSize;
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return pages * pageSize;
  }

  close(): Promise<void> { return this.root.close(); }
  private closeSync(): void { void this.root.close().catch(noop); }
}
