// The credential index: open addressing with linear probing.
//
//   slots: capacity × u32, each 0 (empty) or recNo + 1
//
// Capacity is a power of two, load kept <= 3/4; on growth the new table is
// built beside the old one, which then goes back to the allocator (mem.ts)
// for record chunks to reuse. Keys are compared exactly (the record's key
// word, plus the arena bytes for strings and binaries), so distinct
// credentials never share a record; 123, "123" and 0x313233 differ by kind.
import { alloc, release } from './mem';
import { recPtr, recCount, mwKind, NIL } from './records';
import { arenaAt } from './arena';

let slots: usize = 0;
let mask: u32 = 0;
let used: u32 = 0;

export function tableCapacity(): u32 { return mask + 1; }

export function tableInit(hint: u32): void {
  let cap: u32 = 1024;
  while (<u64>cap * 3 < <u64>hint * 4 && cap < 0x80000000) cap <<= 1;
  slots = alloc(<usize>cap << 2);
  mask = cap - 1;
  used = 0;
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

/** the hash a stored record's key was indexed under */
function hashOfRecord(rec: u32): u32 {
  const r = recPtr(rec);
  const kind = mwKind(load<u64>(r, 8));
  const key = load<u64>(r);
  if (kind == 0) return hashInt(key);
  const a = arenaAt(key);
  return hashBytes(kind, a + 1, <u32>load<u8>(a));
}

// @ts-ignore: decorator
@inline export function slotAddr(h: u32): usize { return slots + (<usize>(h & mask) << 2); }

/** recNo of the integer credential v, or NIL */
export function findInt(h: u32, v: u64): u32 {
  let i = h & mask;
  while (true) {
    const s = load<u32>(slots + (<usize>i << 2));
    if (s == 0) return NIL;
    const r = recPtr(s - 1);
    if (load<u64>(r) == v && (load<u64>(r, 8) >> 60 & 3) == 0) return s - 1;
    i = (i + 1) & mask;
  }
  return NIL;
}

/** recNo of the string (kind 1) or binary (kind 2) credential of `len` bytes at p, or NIL */
export function findBytes(h: u32, kind: u32, p: usize, len: u32): u32 {
  let i = h & mask;
  while (true) {
    const s = load<u32>(slots + (<usize>i << 2));
    if (s == 0) return NIL;
    const r = recPtr(s - 1);
    if (mwKind(load<u64>(r, 8)) == kind) {
      const a = arenaAt(load<u64>(r));
      if (<u32>load<u8>(a) == len && memory.compare(a + 1, p, <usize>len) == 0) return s - 1;
    }
    i = (i + 1) & mask;
  }
  return NIL;
}

function place(h: u32, rec: u32): void {
  let i = h & mask;
  while (load<u32>(slots + (<usize>i << 2)) != 0) i = (i + 1) & mask;
  store<u32>(slots + (<usize>i << 2), rec + 1);
}

/** indexes record `rec` (not yet in the table) under hash h, growing first if needed */
export function tableInsert(h: u32, rec: u32): void {
  if (<u64>(used + 1) * 4 > <u64>(mask + 1) * 3) grow();
  place(h, rec);
  used++;
}

function grow(): void {
  const oldSlots = slots, oldCap = mask + 1;
  const cap = oldCap << 1;
  if (cap == 0) unreachable();
  slots = alloc(<usize>cap << 2);
  mask = cap - 1;
  for (let i: u32 = 0; i < oldCap; i++) {
    const s = load<u32>(oldSlots + (<usize>i << 2));
    if (s != 0) place(hashOfRecord(s - 1), s - 1);
  }
  release(oldSlots, <usize>oldCap << 2);
}

export function tableSlots(): usize { return slots; }

/** an empty index of `cap` slots (a power of two) to be filled by restore with `n` entries */
export function tableRestore(cap: u32, n: u32): void {
  release(slots, <usize>(mask + 1) << 2);
  slots = alloc(<usize>cap << 2);
  mask = cap - 1;
  used = n;
}
