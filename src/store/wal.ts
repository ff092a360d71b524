/**
 * The write-ahead log in front of the journal: the only write on the reply path.
 *
 * Why: an LMDB commit copies and syncs B-tree and meta pages and waits for the previous commit's
 * fsync (lmdb-js overlappingSync), about 0.6-3 ms at light load on the development VM, with a p99 of
 * 12 ms; overwriting blocks of a file that are already allocated and fdatasync-ing it costs 0.1 ms
 * (p99 0.2 ms), because no file-system metadata changes. So a journal batch is first written here,
 * sequentially into preallocated segment files, and its replies are released once that write is
 * durable; the same batch is then put into LMDB (the store, its queries, its indexes) off the reply
 * path. A segment is reused once LMDB has flushed every batch it holds. On open, whatever the WAL
 * holds past LMDB's last batch is put into LMDB before anything else reads the journal.
 *
 * D/wal/seg-<k>.wal: SEGMENT_BYTES each, zero-filled when created, then overwritten in place. The
 * file name means nothing after creation: a segment's place in the order is the segment number its
 * records carry, so putting a spare back into service needs no rename and no directory fsync.
 *
 * A record (8-byte aligned, little-endian):
 *
 *   offset  size  field
 *   ------  ----  -------------------------------------------------------------
 *        0  u32   magic 0x4c415741 ("AWAL")
 *        4  u32   L: payload bytes
 *        8  f64   segment number (a record left over from the file's previous use has an older one)
 *       16  f64   s: seq of the batch's first record
 *       24  f64   e: seq of its last record
 *       32  u32   crc32 of bytes 4..32 and the payload (a torn write fails it)
 *       36  u32   0
 *       40  L     payload: the journal batch (journal-batch.ts), msgpack
 *   40+L    pad   zeros to the next multiple of 8
 *
 * A record with L = 0 is a VOID: batches s..e were refused (their write, or under 'flush' the sync
 * covering them, failed: storage_unavailable), yet their bytes may be readable. It is written when the
 * log is usable again (reset), before any later batch, so an open never puts them into the journal
 * (walTail), and the first open after it erases the records it covers (eraseRecords). A batch's
 * payload is never empty.
 *
 * Durability ('commit'): the write() reaches the OS before the replies go (survives a process
 * kill); every write is also fdatasync-ed in the background, one sync at a time. ('flush'): the
 * replies wait for the fdatasync that covers their write (survives power loss). Either way a sync
 * covers everything written while the previous one ran: continuous group commit.
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { open as openAsync, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const WAL_MAGIC = 0x4c415741;
export const HEADER_BYTES = 40;
/** default segment size: small enough to preallocate on a small disk, large enough to roll rarely */
export const SEGMENT_BYTES = 4 * 2 ** 20;
const ZEROS = Buffer.alloc(2 ** 20);
/**
 * 'commit' mode's background syncs: at most one per 5 ms. Syncing after every write made up to 3,000
 * fdatasyncs/s at 7.7 k single-message frames/s (a device flush each on the development VM), and
 * dispatching them and taking their completions was a quarter of the event loop's CPU, plus 20 % of
 * a core in the thread pool: CPU taken from deciding on 2 cores. What it bought is only a smaller
 * window for a power cut (commit mode's replies never wait for a sync); 5 ms keeps that window at
 * "the last few milliseconds".
 */
export const SYNC_GAP_MS = 5;

const pad8 = (n: number): number => (n + 7) & ~7;

interface Segment { no: number; fd: number; path: string; size: number; lastEnd: number }

/** one record as read (readWal): where it is, for eraseRecords */
export interface WalRecord { seg: number; s: number; e: number; payload: Buffer; path?: string; off?: number }

/** T: what the caller gives with each batch to learn its fate (one callback pair for all, no closure per batch) */
export interface WalOptions<T> {
  /** 'flush': a batch is durable after the fdatasync covering it; 'commit': after its write */
  flush: boolean;
  segmentBytes?: number;
  /**
   * 'commit' mode: a background sync starts at most once per this many ms (default SYNC_GAP_MS);
   * 0 syncs after every write. 'flush' mode ignores it: replies wait for syncs there.
   */
  syncGapMs?: number;
  /** the batch tagged `tag` is durable (see the file comment) */
  onDurable: (tag: T) => void;
  /** its write or sync failed */
  onFailed: (tag: T, err: Error) => void;
  /** a background sync failed ('commit' mode: nobody waits for it, so the store must learn of it) */
  onSyncError: (err: Error) => void;
}

/** Writes one record (header, payload, padding) at `o` of `b`; its length. */
function encodeRecord(b: Buffer, o: number, segNo: number, s: number, e: number, payload: Uint8Array): number {
  const len = pad8(HEADER_BYTES + payload.length);
  b.writeUInt32LE(WAL_MAGIC, o);
  b.writeUInt32LE(payload.length, o + 4);
  b.writeDoubleLE(segNo, o + 8);
  b.writeDoubleLE(s, o + 16);
  b.writeDoubleLE(e, o + 24);
  b.set(payload, o + HEADER_BYTES);
  b.writeUInt32LE(crc32(payload, crc32(b.subarray(o + 4, o + 32))), o + 32);
  b.writeUInt32LE(0, o + 36);
  b.fill(0, o + HEADER_BYTES + payload.length, o + len);
  return len;
}

/** Reads one record at `off` of `buf` (a whole segment); undefined where the valid chain ends. */
function recordAt(buf: Buffer, off: number, segNo: number | undefined): WalRecord | undefined {
  if (off + HEADER_BYTES > buf.length) return undefined;
  if (buf.readUInt32LE(off) !== WAL_MAGIC) return undefined;
  const len = buf.readUInt32LE(off + 4);
  if (off + HEADER_BYTES + len > buf.length) return undefined;
  const seg = buf.readDoubleLE(off + 8);
  if (segNo !== undefined && seg !== segNo) return undefined;
  const want = buf.readUInt32LE(off + 32);
  const crc = crc32(buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + len), crc32(buf.subarray(off + 4, off + 32)));
  if (crc !== want) return undefined;
  return { seg, s: buf.readDoubleLE(off + 16), e: buf.readDoubleLE(off + 24), payload: buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + len) };
}

function readFile(path: string): Buffer {
  const size = statSync(path).size;
  const buf = Buffer.allocUnsafe(size);
  const fd = openSync(path, 'r');
  try {
    let off = 0;
    while (off < size) { const n = readSync(fd, buf, off, size - off, off); if (n <= 0) break; off += n; }
    return buf.subarray(0, off);
  } finally { closeSync(fd); }
}

function segmentFiles(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  return names.filter((n) => /^seg-\d+\.wal$/.test(n)).map((n) => join(dir, n));
}

/**
 * Every valid record of the WAL in `dir`, in segment order (a segment's records up to its first
 * invalid one). The caller applies those past its journal's end, in seq order.
 */
export function readWal(dir: string): { records: WalRecord[]; maxSeg: number } {
  const segs: { no: number; buf: Buffer; path: string }[] = [];
  let maxSeg = 0;
  for (const path of segmentFiles(dir)) {
    const buf = readFile(path);
    const first = recordAt(buf, 0, undefined);
    if (!first) continue;
    segs.push({ no: first.seg, buf, path });
    if (first.seg > maxSeg) maxSeg = first.seg;
  }
  segs.sort((a, b) => a.no - b.no);
  const records: WalRecord[] = [];
  for (const { no, buf, path } of segs) {
    for (let off = 0; ;) {
      const r = recordAt(buf, off, no);
      if (!r) break;
      r.path = path; r.off = off;
      records.push(r);
      off += pad8(HEADER_BYTES + r.payload.length);
    }
  }
  return { records, maxSeg };
}

/**
 * The WAL's batches past seq `end`, in seq order, as long as they continue it (s = previous e + 1);
 * `gap`: how many later ones were left out because one was missing. `before`: the records up to
 * `end`, in seq order (the journal should hold them all: see LmdbStore.openWal). Void marks and the
 * records they cover are in neither; the seqs they cover continue the tail.
 */
export function walTail(dir: string, end: number): { tail: WalRecord[]; gap: number; maxSeg: number; before: WalRecord[]; voided: WalRecord[] } {
  const { records, maxSeg } = readWal(dir);
  // void marks (L = 0): the batches they cover were refused; their seqs count as present for the order
  const voids = records.filter((r) => r.payload.length === 0).sort((a, b) => a.s - b.s);
  const real: WalRecord[] = [], voided: WalRecord[] = [];
  for (const r of records) {
    if (r.payload.length === 0) continue;
    (voids.some((v) => v.s <= r.s && r.e <= v.e) ? voided : real).push(r);
  }
  const before = real.filter((r) => r.e <= end).sort((a, b) => a.s - b.s);
  const after = real.filter((r) => r.e > end).sort((a, b) => a.s - b.s);
  const tail: WalRecord[] = [];
  for (let i = 0; ;) {
    const r = after[i];
    if (r && r.s === end + 1) { tail.push(r); end = r.e; i++; continue; }
    const v = voids.find((x) => x.s <= end + 1 && x.e > end);
    if (v) { end = v.e; continue; }
    break;
  }
  return { tail, gap: after.length - tail.length, maxSeg, before, voided };
}

/**
 * Erases records (their magic), synced: the refused batches a void mark covers, once the journal holds
 * everything the log held (LmdbStore.openWal). A void mark's segment may be reused before the segment of
 * the records it covers; erased, they can never be taken for a hole later. Records after them in their
 * segment become unreadable too: the journal already holds them.
 */
export function eraseRecords(records: WalRecord[]): void {
  const byPath = new Map<string, number[]>();
  for (const r of records) {
    if (r.path === undefined || r.off === undefined) continue;
    let offs = byPath.get(r.path);
    if (!offs) byPath.set(r.path, offs = []);
    offs.push(r.off);
  }
  for (const [path, offs] of byPath) {
    const fd = openSync(path, 'r+');
    try {
      for (const off of offs) writeSync(fd, Buffer.alloc(4), 0, 4, off);
      fdatasyncSync(fd);
    } finally { closeSync(fd); }
  }
}

/** A new segment file of `size` zero bytes, synced with its directory entry; its fd, open for writing. */
async function createSegmentFile(path: string, size: number): Promise<number> {
  const fh = await openAsync(path, 'w+', 0o600);
  try {
    for (let off = 0; off < size;) off += (await fh.write(ZEROS, 0, Math.min(ZEROS.length, size - off), off)).bytesWritten;
    await fh.datasync();
    const dir = await openAsync(join(path, '..'), 'r');
    try { await dir.sync(); } finally { await dir.close(); }
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    throw err;
  }
  // the segment outlives this handle: keep a plain fd (closeSync at close), as the synchronous path does
  const fd = openSync(path, 'r+');
  await fh.close();
  return fd;
}

export class Wal<T> {
  private readonly segBytes: number;
  private readonly dir: string;
  private readonly flushMode: boolean;
  private readonly opts: WalOptions<T>;
  /** segments in service order; the last one is written */
  private readonly active: Segment[] = [];
  private readonly spares: Segment[] = [];
  private cur!: Segment;
  private pos = 0;
  private segNo: number;
  private fileNo = 0;
  /** staged records of this turn, written by one writeSync */
  private stage: Buffer = Buffer.allocUnsafe(64 * 1024);
  private staged = 0;
  private stagedWaiting: T[] = [];
  /** the seqs of what is staged, and of what is written and waiting for a sync ('flush') */
  private stagedLo = Infinity;
  private stagedHi = -Infinity;
  private unsyncedLo = Infinity;
  private unsyncedHi = -Infinity;
  /** seq ranges of refused batches whose void mark is not written yet (see the file comment) */
  private voids: [number, number][] = [];
  private scheduled = false;
  /** written, waiting for a sync ('flush' mode) */
  private unsynced: T[] = [];
  private dirtyFds = new Set<number>();
  private syncing = false;
  private readonly syncGapMs: number;
  /** when the last sync started (performance.now()), and the timer that starts the next one */
  private lastSyncAt = -Infinity;
  private syncTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private broken: Error | undefined;
  private syncCount = 0;
  /** flushes written so far, and the newest one a completed sync covers */
  private writtenGen = 0;
  private syncedGen = 0;
  private durable = 0;
  /** a spare segment being created off the event loop (prepare), settled either way */
  private preparing: Promise<void> | null = null;

  /**
   * Opens the WAL in `dir` for writing. Existing segment files are taken as spares for reuse once
   * LMDB has flushed `recoveredEnd` (their records were just applied to it, or were already there).
   */
  constructor(dir: string, opts: WalOptions<T>, maxSeg: number, recoveredEnd: number) {
    this.dir = dir;
    this.segBytes = Math.max(64 * 1024, opts.segmentBytes ?? SEGMENT_BYTES);
    this.flushMode = opts.flush;
    this.syncGapMs = opts.flush ? 0 : Math.max(0, opts.syncGapMs ?? SYNC_GAP_MS);
    this.opts = opts;
    this.segNo = maxSeg;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const path of segmentFiles(dir)) {
      const k = Number(/seg-(\d+)\.wal$/.exec(path)![1]);
      if (k >= this.fileNo) this.fileNo = k + 1;
      const size = statSync(path).size;
      if (size < this.segBytes) continue; // a segment of another size setting (or a torn creation): not reused
      // a recovered segment is reused only once LMDB has flushed what it held
      this.active.push({ no: -1, fd: openSync(path, 'r+'), path, size, lastEnd: recoveredEnd });
    }
    this.roll();
  }

  get syncs(): number { return this.syncCount; }
  /** every write so far is covered by a completed sync */
  get allSynced(): boolean { return this.syncedGen === this.writtenGen; }
  /** batches staged and not written yet */
  get staging(): boolean { return this.staged > 0 || this.unsynced.length > 0; }

  /**
   * Stages one batch (written at the end of this event-loop turn, or by flush()); onDurable(tag) runs
   * when it is durable (see the file comment), onFailed(tag, err) if its write or sync fails.
   */
  append(s: number, e: number, payload: Uint8Array, tag: T): void {
    if (this.closed) { this.opts.onFailed(tag, new Error('the write-ahead log is closed')); return; }
    if (this.broken) { this.opts.onFailed(tag, this.broken); return; }
    const len = pad8(HEADER_BYTES + payload.length);
    if (this.pos + this.staged + len > this.cur.size) {
      this.flush();
      if (this.broken) { this.opts.onFailed(tag, this.broken); return; }
      this.roll(len);
    }
    if (this.staged + len > this.stage.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.stage.length * 2, this.staged + len));
      this.stage.copy(bigger, 0, 0, this.staged);
      this.stage = bigger;
    }
    this.staged += encodeRecord(this.stage, this.staged, this.segNo, s, e, payload);
    this.stagedWaiting.push(tag);
    if (s < this.stagedLo) this.stagedLo = s;
    if (e > this.stagedHi) this.stagedHi = e;
    if (e > this.cur.lastEnd) this.cur.lastEnd = e;
    if (!this.scheduled) { this.scheduled = true; setImmediate(() => this.flush()); }
  }

  /** Writes what is staged (one write), then releases it ('commit') or queues it for the next sync ('flush'). */
  flush(): void {
    this.scheduled = false;
    if (this.staged === 0) return;
    const waiting = this.stagedWaiting;
    this.stagedWaiting = [];
    const n = this.staged, lo = this.stagedLo, hi = this.stagedHi;
    this.staged = 0;
    this.stagedLo = Infinity; this.stagedHi = -Infinity;
    try {
      for (let off = 0; off < n;) off += writeSync(this.cur.fd, this.stage, off, n - off, this.pos + off);
    } catch (err) {
      // the position does not move: the next write after recovery overwrites what was torn. Whole
      // records of it may be on disk past what overwrites them: they are void (reset writes the mark)
      const e = err as Error;
      this.broken = e;
      this.voids.push([lo, hi]);
      for (const w of waiting) this.opts.onFailed(w, e);
      return;
    }
    this.pos += n;
    this.writtenGen++;
    this.dirtyFds.add(this.cur.fd);
    if (this.flushMode) {
      for (const w of waiting) this.unsynced.push(w);
      if (lo < this.unsyncedLo) this.unsyncedLo = lo;
      if (hi > this.unsyncedHi) this.unsyncedHi = hi;
    } else for (const w of waiting) this.opts.onDurable(w);
    this.startSync();
    if (this.spares.length === 0 && this.pos > this.cur.size / 2) this.prepare();
  }

  /**
   * Creates the next segment before it is needed, in the thread pool: zero-filling and syncing 4 MiB
   * on the event loop at a roll stalled every reply for tens of milliseconds. A roll that finds no
   * spare yet (the log outran this) still creates one synchronously, as before.
   */
  private prepare(): void {
    if (this.preparing || this.closed) return;
    const path = join(this.dir, `seg-${this.fileNo++}.wal`);
    const size = this.segBytes;
    this.preparing = createSegmentFile(path, size).then(
      (fd) => {
        this.preparing = null;
        if (this.closed) { try { closeSync(fd); } catch { /* closed */ } return; }
        this.spares.push({ no: 0, fd, path, size, lastEnd: 0 });
      },
      () => { this.preparing = null; }, // a full disk: the synchronous roll meets it again and reports it
    );
  }

  /**
   * One fdatasync at a time over every segment written since the last one; writes meanwhile wait for
   * the next. 'commit' mode: not sooner than syncGapMs after the previous one started, unless `now`.
   */
  private startSync(now = false): void {
    if (this.syncing || this.dirtyFds.size === 0 || this.closed) return;
    if (!now && this.syncGapMs > 0) {
      const wait = this.lastSyncAt + this.syncGapMs - performance.now();
      if (wait > 0) {
        this.syncTimer ??= setTimeout(() => { this.syncTimer = null; this.startSync(); }, Math.ceil(wait));
        return;
      }
    }
    if (this.syncTimer) { clearTimeout(this.syncTimer); this.syncTimer = null; }
    this.lastSyncAt = performance.now();
    this.syncing = true;
    const fds = [...this.dirtyFds];
    this.dirtyFds.clear();
    const covered = this.unsynced;
    this.unsynced = [];
    const covLo = this.unsyncedLo, covHi = this.unsyncedHi;
    this.unsyncedLo = Infinity; this.unsyncedHi = -Infinity;
    const gen = this.writtenGen;
    const next = (k: number): void => {
      if (k === fds.length) {
        this.syncing = false;
        this.syncCount++;
        this.syncedGen = gen;
        for (const w of covered) this.opts.onDurable(w);
        this.startSync();
        return;
      }
      fdatasync(fds[k]!, (err) => {
        if (err) {
          this.syncing = false;
          this.broken = err;
          // 'flush': these batches are refused, but their bytes may be readable: void (reset writes the mark)
          if (covered.length > 0) this.voids.push([covLo, covHi]);
          for (const w of covered) this.opts.onFailed(w, err);
          this.opts.onSyncError(err);
          return;
        }
        next(k + 1);
      });
    };
    next(0);
  }

  /** LMDB has flushed every batch up to seq `end`: segments holding nothing newer become spares. */
  durableUpTo(end: number): void {
    if (end > this.durable) this.durable = end;
    while (this.active.length > 1 && this.active[0]!.lastEnd <= this.durable && this.active[0] !== this.cur) {
      this.spares.push(this.active.shift()!);
    }
  }

  /** resolves when no spare segment is being created (tests) */
  async prepared(): Promise<void> { if (this.preparing) await this.preparing; }

  /** After a storage failure: writes may be tried again (the probe found the disk usable); false if the void marks could not be written. */
  reset(): boolean {
    this.broken = undefined;
    if (this.voids.length > 0) this.writeVoids();
    return this.broken === undefined;
  }

  /**
   * The void marks of refused batches (see the file comment), written and synced before anything
   * else; on failure the log stays broken and keeps them for the next reset.
   */
  private writeVoids(): void {
    const len = this.voids.length * pad8(HEADER_BYTES);
    if (this.staged > 0) { this.flush(); if (this.broken) return; } // appended before the failure was known
    try {
      if (this.pos + len > this.cur.size) this.roll(len); // may create a segment: may fail on a full disk
      const buf = Buffer.alloc(len);
      let o = 0;
      for (const [s, e] of this.voids) o += encodeRecord(buf, o, this.segNo, s, e, new Uint8Array(0));
      for (let off = 0; off < len;) off += writeSync(this.cur.fd, buf, off, len - off, this.pos + off);
      fdatasyncSync(this.cur.fd);
    } catch (err) { this.broken = err as Error; return; }
    this.pos += len;
    this.voids = [];
  }

  /** The next segment: a spare when one is free, else a new zero-filled file (big enough for `need`). */
  private roll(need = 0): void {
    let seg = this.spares.shift();
    if (seg && seg.size < need) { this.spares.unshift(seg); seg = undefined; }
    if (!seg) seg = this.create(Math.max(this.segBytes, pad8(need)));
    seg.no = ++this.segNo;
    seg.lastEnd = 0;
    this.active.push(seg);
    this.cur = seg;
    this.pos = 0;
  }

  private create(size: number): Segment {
    const path = join(this.dir, `seg-${this.fileNo++}.wal`);
    const fd = openSync(path, 'w+', 0o600);
    try {
      for (let off = 0; off < size;) off += writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, size - off), off);
      fdatasyncSync(fd);
      const dfd = openSync(this.dir, 'r');
      try { fsyncSync(dfd); } finally { closeSync(dfd); }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return { no: 0, fd, path, size, lastEnd: 0 };
  }

  /** Writes what is staged and waits for the sync that covers it (or the WAL broke): not for later writes. */
  async idle(): Promise<void> {
    this.flush();
    const want = this.writtenGen;
    while (!this.broken && !this.closed && this.syncedGen < want) {
      if (!this.syncing) this.startSync(true);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    if (this.syncTimer) { clearTimeout(this.syncTimer); this.syncTimer = null; }
    if (this.preparing) await this.preparing;
    for (const s of [...this.active, ...this.spares]) { try { closeSync(s.fd); } catch { /* already closed */ } }
  }
}
