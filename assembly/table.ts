// The credential table: every credential's key and state in one 64-byte
// bucket, so a decision reads one random cache line (plus the next bucket
// when its home bucket overflowed).
//
//   bucket b (64 B, 64-byte aligned), slots 2b and 2b+1:
//   0               8               16              24
//   +---------------+---------------+---------------+
//   | key 0   u64   | move 0  u64   | reader 0 u64  |   slot 2b
//   +---------------+---------------+---------------+
//   | key 1   u64   | move 1  u64   | reader 1 u64  |   slot 2b+1
//   +-------+-------+---------------+
//   | rec 0 | rec 1 | 0             |                   record numbers (u32)
//   +-------+-------+---------------+                   of slots 2b, 2b+1
//   48      52      56              64
//
// key: integer credential value, or the arena offset (arena.ts) of a string
// or binary credential's bytes; move and reader words: records.ts. A slot
// is empty when its move word is 0 (a used slot has kind bits != 0). The
// record number (creation order) is what the muster list sorts and pages by
// (scan.ts); with the record's hash (records.ts) findRec finds its slot.
//
// The buckets live in segments of 16384 buckets (1 MiB) found through a
// directory (u32 × MAX_SEGS, a few KiB, always in cache):
//
//   dir[0] dir[1] ... dir[nSegs-1]      bucket b = dir[b >> 14] + (b & 16383) × 64
//     |      |
//     v      v
//   [ seg 0: buckets 0..16383 ][ seg 1: 16384..32767 ] ...   (anywhere in memory)
//
// A table below one segment is a single region of exactly nBuckets buckets.
// Segments need not be contiguous, so the table grows without a second
// contiguous copy: see tableGrow.
//
// Open addressing over buckets: a key's home bucket is its 32-bit hash
// scaled to the bucket count (h × nBuckets >> 32, so any count works and the
// table is sized to its load, not to a power of two); a full bucket spills
// to the next one (linear probing, wrapping). Load is kept <= 7/8 of the
// slots. Growing re-places every credential, after which slot numbers have
// changed: tableGen counts the growths so holders of slot numbers can tell.
// Keys are compared exactly (key word and kind, plus the arena bytes for
// strings and binaries), so 123, "123" and 0x313233 are three credentials.
import { alloc, release } from './mem';
import { NIL, mwKind, setRecHash } from './records';
import { arenaAt } from './arena';

export const BUCKET: usize = 64;
const SLOT_SIZE: usize = 24;
const RECS_AT: usize = 48;
const MIN_BUCKETS: u32 = 512;
export const SEG_BITS: u32 = 14;
export const SEG_BUCKETS: u32 = 1 << SEG_BITS;
const SEG_MASK: u32 = SEG_BUCKETS - 1;
export const SEG_BYTES: usize = <usize>SEG_BUCKETS * BUCKET;
const MAX_BUCKETS: u32 = 0x3000000; // 3 GiB of buckets
const MAX_SEGS: u32 = MAX_BUCKETS >> SEG_BITS;

/** segment directory in use, and the other one (swapped by tableGrow) */
let dir: usize = 0;
let dirSpare: usize = 0;
export let nSegs: u32 = 0;
export let nBuckets: u32 = 0;
export let used: u32 = 0;
/** incremented each time the table grows or is replaced (slot numbers change) */
export let tableGen: u32 = 0;
/** a table below one segment: its region as alloc returned it (released when outgrown) */
let smallRegion: usize = 0;
let smallSize: usize = 0;
/** full segments given back by a growth or restore, reused before memory grows (u32 × MAX_SEGS) */
let pool: usize = 0;
let poolN: u32 = 0;

export function tableCapacity(): u32 { return nBuckets << 1; }

/** buckets for `n` credentials at a load of 4/5: whole segments from one segment on */
export function bucketsFor(n: u32): u32 {
  let b = <u32>((<u64>n * 5 / 8) + 1);
  if (b < MIN_BUCKETS) b = MIN_BUCKETS;
  return roundBuckets(b);
}

// @ts-ignore: decorator
@inline function roundBuckets(b: u32): u32 {
  if (b > SEG_BUCKETS) b = (b + SEG_MASK) & ~SEG_MASK;
  if (b > MAX_BUCKETS) unreachable();
  return b;
}

/** is nb a bucket count this table can have (restore checks snapshots with it) */
export function bucketsValid(nb: u64): bool {
  return nb >= <u64>MIN_BUCKETS && nb <= <u64>MAX_BUCKETS && (nb <= <u64>SEG_BUCKETS || (nb & <u64>SEG_MASK) == 0);
}

/** a zeroed, 64-byte aligned region of `bytes` (+ 64 of alignment slack) */
function allocAligned(bytes: usize): usize {
  const r = alloc(bytes + BUCKET);
  return (r + BUCKET - 1) & ~(BUCKET - 1);
}

/** an empty full segment: from the pool (zeroed here) or new memory */
function newSegment(): usize {
  if (poolN > 0) {
    poolN--;
    const p = <usize>load<u32>(pool + (<usize>poolN << 2));
    memory.fill(p, 0, SEG_BYTES);
    return p;
  }
  return allocAligned(SEG_BYTES);
}

/** a full segment back to the pool (beyond MAX_SEGS of them it is left unused: only at the 3 GiB limit) */
function poolPush(p: usize): void {
  if (poolN >= MAX_SEGS) return;
  store<u32>(pool + (<usize>poolN << 2), <u32>p);
  poolN++;
}

// @ts-ignore: decorator
@inline function segOf(i: u32): usize { return <usize>load<u32>(dir + (<usize>i << 2)); }

/** directory entries for nb buckets, all segments allocated and empty */
function allocTable(nb: u32): void {
  nBuckets = nb;
  if (nb < SEG_BUCKETS) {
    smallSize = <usize>nb * BUCKET + BUCKET;
    smallRegion = alloc(smallSize);
    nSegs = 1;
    store<u32>(dir, <u32>((smallRegion + BUCKET - 1) & ~(BUCKET - 1)));
    return;
  }
  nSegs = nb >> SEG_BITS;
  for (let i: u32 = 0; i < nSegs; i++) store<u32>(dir + (<usize>i << 2), <u32>newSegment());
}

/** gives the current table's memory back (small region to mem.ts, segments to the pool) */
function freeTable(): void {
  if (nBuckets < SEG_BUCKETS) { if (smallSize > 0) release(smallRegion, smallSize); smallSize = 0; }
  else for (let i: u32 = 0; i < nSegs; i++) poolPush(segOf(i));
}

export function tableInit(hint: u32): void {
  dir = alloc(<usize>MAX_SEGS << 2);
  dirSpare = alloc(<usize>MAX_SEGS << 2);
  pool = alloc(<usize>MAX_SEGS << 2);
  poolN = 0;
  smallSize = 0;
  allocTable(bucketsFor(hint));
  used = 0;
  tableGen = 0;
}

// @ts-ignore: decorator
@inline function fmix64(x: u64): u64 {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccd;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53;
  x ^= x >> 33;
  return x;
}

// @ts-ignore: decorator
@inline export function hashInt(v: u64): u32 { return <u32>fmix64(v); }

/** hash of `len` bytes at p, salted by kind so a string and a binary with equal bytes differ */
export function hashBytes(kind: u32, p: usize, len: u32): u32 {
  let h: u64 = (<u64>kind << 56) ^ (<u64>len * 0x9E3779B97F4A7C15);
  let i: u32 = 0;
  for (; i + 8 <= len; i += 8) h = fmix64(h ^ load<u64>(p + <usize>i)) + 0x9E3779B97F4A7C15;
  let tail: u64 = 0;
  for (let s: u64 = 0; i < len; i++, s += 8) tail |= <u64>load<u8>(p + <usize>i) << s;
  return <u32>fmix64(h ^ tail);
}

// @ts-ignore: decorator
@inline export function bucketPtr(b: u32): usize { return segOf(b >> SEG_BITS) + (<usize>(b & SEG_MASK) << 6); }
// @ts-ignore: decorator
@inline export function slotPtr(s: u32): usize { return bucketPtr(s >> 1) + <usize>(s & 1) * SLOT_SIZE; }
/** the record number of the credential in slot s (written by setSlotRec) */
// @ts-ignore: decorator
@inline export function slotRec(s: u32): u32 { return load<u32>(bucketPtr(s >> 1) + RECS_AT + (<usize>(s & 1) << 2)); }
// @ts-ignore: decorator
@inline export function setSlotRec(s: u32, rec: u32): void { store<u32>(bucketPtr(s >> 1) + RECS_AT + (<usize>(s & 1) << 2), rec); }
// @ts-ignore: decorator
@inline export function homeBucket(h: u32): u32 { return <u32>((<u64>h * <u64>nBuckets) >> 32); }
/** the table's i-th segment (snapshots, scans): address and bytes */
export function segPtr(i: u32): usize { return segOf(i); }
export function segBytes(): usize { return nBuckets < SEG_BUCKETS ? <usize>nBuckets * BUCKET : SEG_BYTES; }
/** buckets in segment i */
export function segBuckets(): u32 { return nBuckets < SEG_BUCKETS ? nBuckets : SEG_BUCKETS; }

/** the hash the credential in slot s is placed under */
function hashOfSlot(s: u32): u32 {
  const p = slotPtr(s);
  const kind = mwKind(load<u64>(p, 8));
  const key = load<u64>(p);
  if (kind == 0) return hashInt(key);
  const a = arenaAt(key);
  return hashBytes(kind, a + 1, <u32>load<u8>(a));
}

/**
 * slot of the integer credential v, or NIL. Which of the bucket's two slots
 * holds it is as random as the keys, so it is chosen by select, not by a
 * branch the CPU would mispredict half the time; the branch that remains
 * (found in this bucket or not) goes the same way four times in five.
 */
export function findInt(h: u32, v: u64): u32 {
  let b = homeBucket(h);
  while (true) {
    const p = bucketPtr(b);
    const m0 = load<u64>(p, 8), m1 = load<u64>(p, 32);
    const hit0 = <u32>(load<u64>(p) == v) & <u32>((m0 >> 60 & 3) == 1);
    const hit1 = <u32>(load<u64>(p, 24) == v) & <u32>((m1 >> 60 & 3) == 1);
    if (hit0 | hit1) return (b << 1) | (hit0 ^ 1);
    if ((<u32>(m0 == 0) | <u32>(m1 == 0)) != 0) return NIL;
    b++;
    if (b == nBuckets) b = 0;
  }
  return NIL;
}

// @ts-ignore: decorator
@inline function bytesAt(p: usize, kind: u32, key: usize, len: u32): bool {
  const mw = load<u64>(p, 8);
  if (mwKind(mw) != kind) return false;
  const a = arenaAt(load<u64>(p));
  return <u32>load<u8>(a) == len && memory.compare(a + 1, key, <usize>len) == 0;
}

/** slot of the string (kind 1) or binary (kind 2) credential of `len` bytes at key, or NIL */
export function findBytes(h: u32, kind: u32, key: usize, len: u32): u32 {
  let b = homeBucket(h);
  while (true) {
    const p = bucketPtr(b);
    if (load<u64>(p, 8) == 0) return NIL;
    if (bytesAt(p, kind, key, len)) return b << 1;
    if (load<u64>(p, 32) == 0) return NIL;
    if (bytesAt(p + SLOT_SIZE, kind, key, len)) return (b << 1) | 1;
    b++;
    if (b == nBuckets) b = 0;
  }
  return NIL;
}

/** the slot of record `rec`, whose key hashed h (it exists: records are never removed) */
export function findRec(h: u32, rec: u32): u32 {
  let b = homeBucket(h);
  while (true) {
    const p = bucketPtr(b);
    if (load<u32>(p, <usize>RECS_AT) == rec && load<u64>(p, 8) != 0) return b << 1;
    if (load<u32>(p, <usize>RECS_AT + 4) == rec && load<u64>(p, 32) != 0) return (b << 1) | 1;
    b++;
    if (b == nBuckets) b = 0;
  }
  return NIL;
}

/**
 * The first empty slot from h's home bucket on. `grow` (a constant at each call: inlined, the test
 * folds away): the table is being rebuilt, so create each segment the probe reaches that does not
 * exist yet.
 */
// @ts-ignore: decorator
@inline function emptySlot(h: u32, grow: bool): u32 {
  let b = homeBucket(h);
  while (true) {
    if (grow) {
      const d = dir + (<usize>(b >> SEG_BITS) << 2);
      if (load<u32>(d) == 0) store<u32>(d, <u32>newSegment());
    }
    const p = bucketPtr(b);
    if (load<u64>(p, 8) == 0) return b << 1;
    if (load<u64>(p, 32) == 0) return (b << 1) | 1;
    b++;
    if (b == nBuckets) b = 0;
  }
  return NIL;
}

/** the first empty slot from h's home bucket on */
function freeSlot(h: u32): u32 { return emptySlot(h, false); }

/** would one more credential push the load past 7/8 */
export function tableFull(): bool { return <u64>(used + 1) * 8 > <u64>nBuckets * 14; }

/**
 * An empty slot for a new credential hashed h (the caller writes key and
 * words, whose move word must be non-zero). Grow first when tableFull().
 */
export function tableInsert(h: u32): u32 {
  used++;
  return freeSlot(h);
}

/**
 * The bucket count a growth goes to: x2 while small, then x1.25 in whole
 * segments. Each growth moves every credential once, so a smaller step
 * moves more in total (about 5 N instead of 2 N on the way to N) but not in
 * any one batch: the last growth re-places everyone either way. What it
 * buys is memory: a grown table ends between 7/10 and 7/8 full instead of
 * between 7/16 and 7/8.
 */
function grownBuckets(n: u32): u32 {
  if (n >= MAX_BUCKETS) unreachable(); // full: the host reports the trap as `internal`
  let nb: u64 = n < SEG_BUCKETS ? <u64>n * 2 : <u64>n + (<u64>n >> 2);
  if (nb > <u64>MAX_BUCKETS) nb = <u64>MAX_BUCKETS;
  return roundBuckets(<u32>nb);
}

/** growth: the first empty slot from h's home bucket on, creating the new table's segments as they are reached */
function growSlot(h: u32): u32 { return emptySlot(h, true); }

/**
 * Grows the table (grownBuckets) without a second
 * contiguous copy. The new table gets its own directory; its segments are
 * created when first reached. The old segments are read from the last to
 * the first, each credential re-placed from its hash, and each old segment,
 * once read, goes to the pool, where the new table takes its next segments
 * from. Nothing of the new table ever lies in an old segment not yet read,
 * so no credential is overwritten, in whatever order they land; and the
 * memory after a growth is the new table plus about one segment, where
 * copying into fresh memory would leave every outgrown table behind
 * (linear memory never shrinks).
 *
 * Home buckets scale with the bucket count (h × n >> 32), so reading the
 * old buckets in order writes the new ones almost in order too: the growth
 * streams through memory instead of writing at random.
 */
export function tableGrow(): void {
  const oldDir = dir, oldN = nBuckets, oldSegs = nSegs;
  const oldSmall = oldN < SEG_BUCKETS, oldRegion = smallRegion, oldSize = smallSize;
  const oldSegBuckets = oldSmall ? oldN : SEG_BUCKETS;
  const nb = grownBuckets(oldN);
  dir = dirSpare;
  dirSpare = oldDir;
  nBuckets = nb;
  if (nb < SEG_BUCKETS) {
    // still small: one region, allocated up front (growSlot finds it in dir[0])
    smallSize = <usize>nb * BUCKET + BUCKET;
    smallRegion = alloc(smallSize);
    store<u32>(dir, <u32>((smallRegion + BUCKET - 1) & ~(BUCKET - 1)));
    nSegs = 1;
  } else {
    nSegs = nb >> SEG_BITS;
    memory.fill(dir, 0, <usize>nSegs << 2);
    smallSize = 0;
  }
  for (let si = <i32>oldSegs - 1; si >= 0; si--) {
    const base = <usize>load<u32>(oldDir + (<usize>si << 2));
    for (let b: u32 = 0; b < oldSegBuckets; b++) {
      const bp = base + (<usize>b << 6);
      for (let i: u32 = 0; i < 2; i++) {
        const from = bp + <usize>i * SLOT_SIZE;
        const mw = load<u64>(from, 8);
        if (mw == 0) continue;
        // hash from the old copy: the new table has no such slot yet
        const kind = mwKind(mw);
        let h: u32;
        if (kind == 0) h = hashInt(load<u64>(from));
        else { const a = arenaAt(load<u64>(from)); h = hashBytes(kind, a + 1, <u32>load<u8>(a)); }
        const t = growSlot(h);
        const tp = slotPtr(t);
        store<u64>(tp, load<u64>(from));
        store<u64>(tp, mw, 8);
        store<u64>(tp, load<u64>(from, 16), 16);
        setSlotRec(t, load<u32>(bp + RECS_AT + (<usize>i << 2)));
      }
    }
    if (!oldSmall) poolPush(base);
  }
  if (oldSmall) release(oldRegion, oldSize);
  // segments no credential reached are still missing: create them empty
  for (let i: u32 = 0; i < nSegs; i++) if (segOf(i) == 0) store<u32>(dir + (<usize>i << 2), <u32>newSegment());
  tableGen++;
}

/** an empty table of nb buckets (bucketsValid), to be filled by restore with n credentials */
export function tableRestore(nb: u32, n: u32): void {
  freeTable();
  allocTable(nb);
  used = n;
  tableGen++;
}

/** bytes a table of nb buckets may need beyond the pool (restore reserves memory once) */
export function tableBytesFor(nb: u32): usize {
  if (nb < SEG_BUCKETS) return <usize>nb * BUCKET + BUCKET;
  const segs = nb >> SEG_BITS;
  const fromPool = poolN + (nBuckets >= SEG_BUCKETS ? nSegs : 0);
  return segs > fromPool ? <usize>(segs - fromPool) * (SEG_BYTES + BUCKET) + 16 : 0;
}

/** places record `rec` (migration from an old layout): returns its slot */
export function tablePlace(keyWord: u64, mw: u64, rw: u64, h: u32, rec: u32): u32 {
  const t = freeSlot(h);
  const p = slotPtr(t);
  store<u64>(p, keyWord);
  store<u64>(p, mw, 8);
  store<u64>(p, rw, 16);
  setSlotRec(t, rec);
  setRecHash(rec, h);
  used++;
  return t;
}

export { hashOfSlot };
