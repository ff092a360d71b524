/**
 * D/index's by-credential and by-reader indexes as sorted runs, merged in the
 * background (a small log-structured merge tree inside LMDB, one per index).
 *
 * Why not a B-tree keyed [cred, batch]: the credentials of new events are
 * spread at random over the whole key space, so every entry lands on a
 * random leaf; a transaction of a few thousand entries dirties thousands of
 * pages and the cost per event grew with the store (measured: 3.5 µs CPU per
 * event at 0.5 M indexed events, 5.5 µs at 2 M, on the indexer thread that
 * shares two cores with the deciding thread). Here every indexer transaction
 * appends ONE sorted run behind every existing key (run ids only grow), so
 * its pages are written once and in order, and runs are merged FANOUT at a
 * time in bounded steps, so a query reads at most about FANOUT × levels runs.
 *
 * The by-reader index has few names but one entry per batch; as runs it
 * costs no B-tree put per batch either (at one message per frame a batch is
 * one event).
 *
 * An entry is (h, key): h = 32-bit FNV-1a fingerprint of the credential (or
 * reader), key = the journal key of a batch holding an event of it. Two names
 * may share a fingerprint; a query then names the other's batches too, and
 * the caller drops them (it filters a batch's events by name anyway).
 *
 * Sub-database `credrun` (`readerrun`), key ordered-binary [runId, h0, k0]
 * (the block's first entry), value one block of at most BLOCK_ENTRIES entries:
 *
 *   offset    size      field
 *   0         u32       n     entries in the block
 *   4         u32 × n   h     fingerprints, ascending
 *   4 + 4n    f64 × n   key   batch keys, ascending within one h
 *   (little-endian; (h, key) pairs are unique and sorted across a run's blocks)
 *
 * meta keys, P = 'cred', 'reader' or 'idem' (same transaction as the blocks they
 * describe, so a reader sees whole runs only):
 *   'P.runs'    [[id, lo, hi, count], ...] lowest seqs first; the runs cover
 *               disjoint, ascending seq ranges (merges join neighbours)
 *   'P.nextRun' the next run id
 *   'P.drop'    ids whose blocks are to be deleted: runs a merge replaced, or
 *               a merge's output that was never published (a crash mid-merge)
 *   'P.floor'   retention deleted every batch with key <= this: its entries
 *               are skipped by queries and left out by merges
 */
import type { Database } from 'lmdb';

export const BLOCK_ENTRIES = 340; // 4 + 12 × 340 = 4,084 bytes: one 4 KB page
export const FANOUT = 8;
/** runs of up to this many entries are level 0 */
export const BASE_ENTRIES = 4096;
/** entries one merge step moves (bounds the time a step holds the indexer) */
export const STEP_ENTRIES = 32_768;
/** fences a reader keeps (more than the runs there can be at once) */
const FENCE_RUNS = 256;
/** blocks one drop step deletes */
const DROP_BLOCKS = 4096;

export type RunMeta = [id: number, lo: number, hi: number, count: number];
type BlockKey = [number, number, number];

/**
 * The entries of one run before it is written: (fingerprint, batch key) pairs in the order the
 * indexer read its batches, in growing typed arrays (no object per entry).
 */
export class PairList {
  h = new Uint32Array(256);
  k = new Float64Array(256);
  n = 0;
  push(h: number, k: number): void {
    if (this.n === this.h.length) {
      const h2 = new Uint32Array(this.n * 2), k2 = new Float64Array(this.n * 2);
      h2.set(this.h); k2.set(this.k);
      this.h = h2; this.k = k2;
    }
    this.h[this.n] = h;
    this.k[this.n++] = k;
  }
}

/** entries a run may have for the packed sort (h · 2^21 + position stays an exact double) */
const PACKED_SORT_MAX = 1 << 21;

function levelOf(count: number): number {
  let level = 0;
  for (let cap = BASE_ENTRIES; count > cap; cap *= FANOUT) level++;
  return level;
}

/** Sorted, de-duplicated entries → blocks. */
function encodeBlock(h: ArrayLike<number>, k: ArrayLike<number>, from: number, to: number): Buffer {
  const n = to - from;
  const b = Buffer.allocUnsafe(4 + 12 * n);
  b.writeUInt32LE(n, 0);
  for (let i = 0; i < n; i++) {
    b.writeUInt32LE(h[from + i]!, 4 + 4 * i);
    b.writeDoubleLE(k[from + i]!, 4 + 4 * n + 8 * i);
  }
  return b;
}

interface Block { n: number; h: Uint32Array; k: Float64Array }
function decodeBlock(v: Uint8Array): Block {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const n = dv.getUint32(0, true);
  const h = new Uint32Array(n), k = new Float64Array(n);
  for (let i = 0; i < n; i++) { h[i] = dv.getUint32(4 + 4 * i, true); k[i] = dv.getFloat64(4 + 4 * n + 8 * i, true); }
  return { n, h, k };
}

/** first i in a block with (h_i, k_i) >= (h, k) */
function lowerBound(dv: DataView, n: number, h: number, k: number): number {
  let a = 0, b = n;
  while (a < b) {
    const m = (a + b) >>> 1;
    const hm = dv.getUint32(4 + 4 * m, true);
    if (hm < h || (hm === h && dv.getFloat64(4 + 4 * n + 8 * m, true) < k)) a = m + 1; else b = m;
  }
  return a;
}

interface Fence { h: Uint32Array; k: Float64Array }
/** the last block whose first entry is <= (h, k), or -1 */
function lastAtOrBefore(f: Fence, h: number, k: number): number {
  let a = 0, b = f.h.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (f.h[m]! < h || (f.h[m] === h && f.k[m]! <= k)) a = m + 1; else b = m;
  }
  return a - 1;
}

/** (h, k) < (h2, k2) */
const before = (h: number, k: number, h2: number, k2: number): boolean => h < h2 || (h === h2 && k < k2);

/** Reads one run's blocks in order (a merge input). */
class RunCursor {
  private keys: BlockKey[];
  private bi = 0;
  private block: Block | null = null;
  private pos = 0;
  constructor(private readonly db: Database<Buffer, BlockKey>, readonly run: RunMeta) {
    this.keys = [...db.getKeys({ start: [run[0]], end: [run[0] + 1] })] as BlockKey[];
  }
  /** the current entry, or false at the end */
  head(): boolean {
    while (!this.block || this.pos >= this.block.n) {
      if (this.bi >= this.keys.length) return false;
      const v = this.db.getBinary(this.keys[this.bi++]!);
      this.block = v ? decodeBlock(v) : null;
      this.pos = 0;
    }
    return true;
  }
  get h(): number { return this.block!.h[this.pos]!; }
  get k(): number { return this.block!.k[this.pos]!; }
  next(): void { this.pos++; }
}

/**
 * Positions 0..n-1 ordered by (h, k). The indexer pushes its pairs with keys in ascending order, so a
 * stable sort by h alone is enough: then h · 2^21 + position, sorted as plain doubles (the engine's
 * numeric sort, no comparator called per comparison). Any other input takes the comparator.
 */
function sortedOrder(hs: Uint32Array, ks: Float64Array, n: number): ArrayLike<number> {
  let ascending = n <= PACKED_SORT_MAX;
  for (let i = 1; i < n && ascending; i++) if (ks[i]! < ks[i - 1]!) ascending = false;
  if (!ascending) {
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    return order.sort((a, b) => (hs[a]! - hs[b]!) || (ks[a]! - ks[b]!));
  }
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = hs[i]! * PACKED_SORT_MAX + i;
  packed.sort();
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = packed[i]! % PACKED_SORT_MAX;
  return order;
}

interface Merge {
  id: number;
  inputs: RunMeta[];
  cursors: RunCursor[];
  announced: boolean;
  count: number;
  /** entries of the next block */
  h: number[]; k: number[];
}

export class NameRuns {
  private merge: Merge | null = null;
  private readonly fences = new Map<string, Fence>();

  private readonly kRuns: string;
  private readonly kNext: string;
  private readonly kDrop: string;
  private readonly kFloor: string;

  constructor(private readonly db: Database<Buffer, BlockKey>, private readonly meta: Database<unknown, string>, prefix: 'cred' | 'reader' | 'idem') {
    this.kRuns = `${prefix}.runs`; this.kNext = `${prefix}.nextRun`; this.kDrop = `${prefix}.drop`; this.kFloor = `${prefix}.floor`;
  }

  /** the live runs (read in the caller's read transaction) */
  runs(): RunMeta[] { return (this.meta.get(this.kRuns) as RunMeta[] | undefined) ?? []; }
  private floor(): number { return (this.meta.get(this.kFloor) as number | undefined) ?? 0; }
  private dropRuns(): number[] { return (this.meta.get(this.kDrop) as number[] | undefined) ?? []; }
  private takeId(): number {
    const id = (this.meta.get(this.kNext) as number | undefined) ?? 1;
    this.meta.put(this.kNext, id + 1);
    return id;
  }

  private putBlocks(id: number, h: ArrayLike<number>, k: ArrayLike<number>, from: number, to: number): void {
    for (let i = from; i < to; i += BLOCK_ENTRIES) this.db.put([id, h[i]!, k[i]!], encodeBlock(h, k, i, Math.min(to, i + BLOCK_ENTRIES)));
  }

  /**
   * Inside the indexer's write transaction: appends the run of one chunk of batches covering seqs
   * lo..hi (`pairs` in any order; the same pair twice is kept once).
   */
  append(pairs: PairList, lo: number, hi: number): void {
    const n = pairs.n;
    if (n === 0) return;
    const hs = pairs.h, ks = pairs.k;
    const order = sortedOrder(hs, ks, n);
    const h = new Uint32Array(n), k = new Float64Array(n);
    let m = 0;
    for (let j = 0; j < n; j++) {
      const i = order[j]!;
      if (m > 0 && h[m - 1] === hs[i] && k[m - 1] === ks[i]) continue; // a fingerprint shared in one batch
      h[m] = hs[i]!; k[m++] = ks[i]!;
    }
    const id = this.takeId();
    this.putBlocks(id, h, k, 0, m);
    this.meta.put(this.kRuns, [...this.runs(), [id, lo, hi, m]]);
  }

  /** Inside a write transaction: batches with key <= `key` are gone (retention deletes the oldest first). */
  raiseFloor(key: number): void {
    if (key > this.floor()) this.meta.put(this.kFloor, key);
  }

  /**
   * The first entry of each block of a run, in block order: runs never change once published, so a
   * reader keeps them (FENCE_RUNS at most) and finds the block of an entry without a cursor seek.
   */
  private fence(run: RunMeta): Fence {
    const tag = run.join(',');
    let f = this.fences.get(tag);
    if (f) return f;
    const keys = [...this.db.getKeys({ start: [run[0]], end: [run[0] + 1] })] as BlockKey[];
    f = { h: Uint32Array.from(keys, (x) => x[1]), k: Float64Array.from(keys, (x) => x[2]) };
    if (this.fences.size >= FENCE_RUNS) this.fences.clear();
    this.fences.set(tag, f);
    return f;
  }

  /** The keys of `h` in block `j` of `run` between lo and hi (both included), ascending. */
  private blockKeys(run: RunMeta, f: Fence, j: number, h: number, lo: number, hi: number): number[] {
    const v = this.db.getBinaryFast([run[0], f.h[j]!, f.k[j]!]);
    const out: number[] = [];
    if (!v) return out; // gone: a reader's fence of a run dropped since (cannot happen in one snapshot)
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const n = dv.getUint32(0, true);
    for (let i = lowerBound(dv, n, h, lo); i < n && dv.getUint32(4 + 4 * i, true) === h; i++) {
      const k = dv.getFloat64(4 + 4 * n + 8 * i, true);
      if (k > hi) break;
      out.push(k);
    }
    return out;
  }

  /** Batch keys of the batches of the name(s) with fingerprint `h`, newest first, at most `top`. */
  *keysDown(h: number, top: number): Generator<number> {
    const floor = this.floor();
    const runs = this.runs();
    for (let r = runs.length - 1; r >= 0; r--) {
      const run = runs[r]!;
      if (run[1] > top || run[2] <= floor) continue;
      const f = this.fence(run);
      // from the block holding (h, top) back, until a block that starts below h
      for (let j = lastAtOrBefore(f, h, top); j >= 0; j--) {
        const keys = this.blockKeys(run, f, j, h, floor + 1, top);
        for (let i = keys.length - 1; i >= 0; i--) yield keys[i]!;
        if (f.h[j]! < h) break;
      }
    }
  }

  /** Batch keys of the batches of the name(s) with fingerprint `h`, oldest first, from `bottom` to `top` (both included). */
  *keysUp(h: number, bottom: number, top: number): Generator<number> {
    const from = Math.max(bottom, this.floor() + 1);
    for (const run of this.runs()) {
      if (run[2] < from || run[1] > top) continue;
      const f = this.fence(run);
      // from the block holding (h, from) on, until a block that starts past (h, top)
      for (let j = Math.max(0, lastAtOrBefore(f, h, from)); j < f.h.length; j++) {
        if (f.h[j]! > h || (f.h[j] === h && f.k[j]! > top)) break;
        yield* this.blockKeys(run, f, j, h, from, top);
      }
    }
  }

  /**
   * One bounded step of background work, each in its own write transaction on the calling thread
   * (`write`): delete the blocks of dropped runs, else advance or start a merge. False: nothing to do.
   */
  maintain(write: (fn: () => void) => void, stepEntries = STEP_ENTRIES): boolean {
    const drop = this.dropRuns().filter((id) => id !== this.merge?.id);
    if (drop.length) {
      write(() => {
        const id = drop[0]!;
        let n = 0;
        for (const key of this.db.getKeys({ start: [id], end: [id + 1], limit: DROP_BLOCKS })) { this.db.remove(key); n++; }
        if (n < DROP_BLOCKS) this.meta.put(this.kDrop, this.dropRuns().filter((x) => x !== id));
      });
      return true;
    }
    if (!this.merge) {
      // runs wholly at or below the retention floor: dropped whole (a merge in progress never holds one
      // that is not: its inputs stay contiguous)
      const runs = this.runs(), floor = this.floor();
      const dead = runs.filter((r) => r[2] <= floor).map((r) => r[0]);
      if (dead.length) {
        write(() => {
          this.meta.put(this.kRuns, this.runs().filter((r) => !dead.includes(r[0])));
          this.meta.put(this.kDrop, [...this.dropRuns(), ...dead]);
        });
        return true;
      }
      const inputs = this.mergeCandidates();
      if (!inputs) return false;
      this.merge = { id: 0, inputs, cursors: inputs.map((r) => new RunCursor(this.db, r)), announced: false, count: 0, h: [], k: [] };
    }
    try {
      write(() => this.mergeStep(this.merge!, stepEntries));
    } catch (e) {
      // the step's transaction rolled back but its cursors moved on: start the merge over (what earlier
      // steps committed is under an id already listed in the drop list, so it is deleted)
      this.merge = null;
      throw e;
    }
    return true;
  }

  /** FANOUT or more runs of one level at the newest end: merged into one (they are neighbours). */
  private mergeCandidates(): RunMeta[] | null {
    const runs = this.runs();
    if (runs.length < FANOUT) return null;
    const level = levelOf(runs[runs.length - 1]![3]);
    let i = runs.length - 1;
    while (i > 0 && levelOf(runs[i - 1]![3]) === level) i--;
    return runs.length - i >= FANOUT ? runs.slice(i) : null;
  }

  private mergeStep(m: Merge, stepEntries: number): void {
    if (m.id === 0) m.id = this.takeId();
    const floor = this.floor();
    const cs = m.cursors;
    let moved = 0, more = true;
    while (moved < stepEntries) {
      let best = -1;
      for (let c = 0; c < cs.length; c++) {
        if (!cs[c]!.head()) continue;
        if (best < 0 || before(cs[c]!.h, cs[c]!.k, cs[best]!.h, cs[best]!.k)) best = c;
      }
      if (best < 0) { more = false; break; }
      const c = cs[best]!;
      if (c.k > floor) { m.h.push(c.h); m.k.push(c.k); m.count++; }
      c.next();
      moved++;
      if (m.h.length === BLOCK_ENTRIES) { this.putBlocks(m.id, m.h, m.k, 0, m.h.length); m.h.length = 0; m.k.length = 0; }
    }
    if (more) {
      if (!m.announced) { this.meta.put(this.kDrop, [...this.dropRuns(), m.id]); m.announced = true; }
      return;
    }
    if (m.h.length) this.putBlocks(m.id, m.h, m.k, 0, m.h.length);
    // publish: the inputs (neighbours) give way to one run covering their seqs
    const runs = this.runs();
    const first = runs.findIndex((r) => r[0] === m.inputs[0]![0]);
    const merged: RunMeta[] = m.count ? [[m.id, m.inputs[0]![1], m.inputs[m.inputs.length - 1]![2], m.count]] : [];
    this.meta.put(this.kRuns, [...runs.slice(0, first), ...merged, ...runs.slice(first + m.inputs.length)]);
    const ids = new Set(m.inputs.map((r) => r[0]));
    this.meta.put(this.kDrop, [...this.dropRuns().filter((x) => x !== m.id), ...ids]);
    this.merge = null;
  }

  /** a merge in progress no longer applies (the index was cleared) */
  reset(): void { this.merge = null; this.fences.clear(); }

  /** runs, blocks (stats, tests) */
  shape(): { runs: number; entries: number; blocks: number } {
    const runs = this.runs();
    return { runs: runs.length, entries: runs.reduce((s, r) => s + r[3], 0), blocks: (this.db.getStats() as { entryCount: number }).entryCount };
  }
}
