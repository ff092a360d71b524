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
// is empty when its move word is 0 (a used slot has kind bits != 0).
//
// Open addressing over buckets: a key's home bucket is its 32-bit hash
// scaled to the bucket count (h × nBuckets >> 32, so any count works and the
// table is sized to its load, not to a power of two); a full bucket spills
// to the next one (linear probing, wrapping). Load is kept <= 7/8 of the
// slots; growing doubles the buckets and re-places the credentials, after
// which slot numbers have changed: tableGen counts the growths so holders
// of slot numbers can tell. Each bucket also holds its credentials' record
// numbers (records.ts), so growing reads the old table in order and only
// the record-order array is written at random (re-placing in record order
// would read the old table at random, one dependent miss per credential).
// Keys are compared exactly (key word and kind, plus the arena bytes for
// strings and binaries), so 123, "123" and 0x313233 are three credentials.
import { alloc, release } from './mem';
import { NIL, setPos, mwKind } from './records';
import { arenaAt } from './arena';

export const BUCKET: usize = 64;
const SLOT_SIZE: usize = 24;
const RECS_AT: usize = 48;
const MIN_BUCKETS: u32 = 512;
const MAX_BUCKETS: u32 = 0x3000000; // 3 GiB of buckets

/** 64-byte aligned base of the buckets */
export let tBase: usize = 0;
/** the region tBase lies in (as alloc returned it) and its size */
let tRegion: usize = 0;
let tRegionSize: usize = 0;
export let nBuckets: u32 = 0;
export let used: u32 = 0;
/** incremented each time the table grows (slot numbers change) */
export let tableGen: u32 = 0;

export function tableCapacity(): u32 { return nBuckets << 1; }

/** buckets for `n` credentials at a load of 4/5 */
function bucketsFor(n: u32): u32 {
  let b = <u32>((<u64>n * 5 / 8) + 1);
  if (b < MIN_BUCKETS) b = MIN_BUCKETS;
  if (b > MAX_BUCKETS) unreachable();
  return b;
}

function allocBuckets(nb: u32): void {
  tRegionSize = <usize>nb * BUCKET + BUCKET;
  tRegion = alloc(tRegionSize);
  tBase = (tRegion + BUCKET - 1) & ~(BUCKET - 1);
  nBuckets = nb;
}

export function tableInit(hint: u32): void {
  allocBuckets(bucketsFor(hint));
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
@inline export function slotPtr(s: u32): usize { return tBase + <usize>(s >> 1) * BUCKET + <usize>(s & 1) * SLOT_SIZE; }
/** the record number of the credential in slot s (written by setSlotRec) */
// @ts-ignore: decorator
@inline export function slotRec(s: u32): u32 { return load<u32>(tBase + <usize>(s >> 1) * BUCKET + RECS_AT + (<usize>(s & 1) << 2)); }
// @ts-ignore: decorator
@inline export function setSlotRec(s: u32, rec: u32): void { store<u32>(tBase + <usize>(s >> 1) * BUCKET + RECS_AT + (<usize>(s & 1) << 2), rec); }
// @ts-ignore: decorator
@inline export function homeBucket(h: u32): u32 { return <u32>((<u64>h * <u64>nBuckets) >> 32); }
// @ts-ignore: decorator
@inline export function bucketPtr(b: u32): usize { return tBase + <usize>b * BUCKET; }

/** the hash the credential in slot s is placed under */
function hashOfSlot(s: u32): u32 {
  const p = slotPtr(s);
  const kind = mwKind(load<u64>(p, 8));
  const key = load<u64>(p);
  if (kind == 0) return hashInt(key);
  const a = arenaAt(key);
  return hashBytes(kind, a + 1, <u32>load<u8>(a));
}

/** slot of the integer credential v, or NIL */
export function findInt(h: u32, v: u64): u32 {
  let b = homeBucket(h);
  while (true) {
    const p = bucketPtr(b);
    const m0 = load<u64>(p, 8);
    if (m0 == 0) return NIL;
    if (load<u64>(p) == v && (m0 >> 60 & 3) == 1) return b << 1;
    const m1 = load<u64>(p, 32);
    if (m1 == 0) return NIL;
    if (load<u64>(p, 24) == v && (m1 >> 60 & 3) == 1) return (b << 1) | 1;
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

/** the first empty slot from h's home bucket on */
function freeSlot(h: u32): u32 {
  let b = homeBucket(h);
  while (true) {
    const p = bucketPtr(b);
    if (load<u64>(p, 8) == 0) return b << 1;
    if (load<u64>(p, 32) == 0) return (b << 1) | 1;
    b++;
    if (b == nBuckets) b = 0;
  }
  return NIL;
}

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

/** doubles the buckets: credentials re-placed in bucket order, pos rewritten */
export function tableGrow(): void {
  const oldBase = tBase, oldRegion = tRegion, oldSize = tRegionSize, oldN = nBuckets;
  if (oldN >= MAX_BUCKETS >> 1) unreachable();
  allocBuckets(oldN << 1);
  for (let b: u32 = 0; b < oldN; b++) {
    const bp = oldBase + <usize>b * BUCKET;
    for (let i: u32 = 0; i < 2; i++) {
      const from = bp + <usize>i * SLOT_SIZE;
      const mw = load<u64>(from, 8);
      if (mw == 0) continue;
      // hash from the old copy: the new table has no such slot yet
      const kind = mwKind(mw);
      let h: u32;
      if (kind == 0) h = hashInt(load<u64>(from));
      else { const a = arenaAt(load<u64>(from)); h = hashBytes(kind, a + 1, <u32>load<u8>(a)); }
      const t = freeSlot(h);
      memory.copy(slotPtr(t), from, SLOT_SIZE);
      const r = load<u32>(bp + RECS_AT + (<usize>i << 2));
      setSlotRec(t, r);
      setPos(r, t);
    }
  }
  release(oldRegion, oldSize);
  tableGen++;
}

/** bytes of the bucket array (snapshots) */
export function tableBytes(): usize { return <usize>nBuckets * BUCKET; }

/** an empty table of nb buckets, to be filled by restore with n credentials */
export function tableRestore(nb: u32, n: u32): void {
  release(tRegion, tRegionSize);
  allocBuckets(nb);
  used = n;
  tableGen++;
}

/** places record `rec` (migration from the old layout): returns its slot */
export function tablePlace(keyWord: u64, mw: u64, rw: u64, h: u32, rec: u32): u32 {
  const t = freeSlot(h);
  const p = slotPtr(t);
  store<u64>(p, keyWord);
  store<u64>(p, mw, 8);
  store<u64>(p, rw, 16);
  setSlotRec(t, rec);
  used++;
  return t;
}

export { hashOfSlot };
