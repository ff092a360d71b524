// Batch I/O: the host writes up to BATCH_CAP ops into the input region,
// calls applyBatch(n, now) once, and reads results straight out of linear
// memory. Nothing is allocated per decision.
//
// input slot (IN_STRIDE = 80 bytes):
//   +0  u8  op      0 badge 1 passage 2 offline 3 forgive 4 reset 5 exempt 6 setLocation 7 resetArea
//                   8 supervisor 9 lockdown
//   +1  u8  kind    0 int, 1 string, 2 binary
//   +2  u8  len     key bytes (string/binary)
//   +3  u8  flag    offline: granted; exempt, supervisor, lockdown: on
//   +4  i32 arg     reader (badge/passage/offline) or area (setLocation/resetArea/lockdown)
//   +8  f64 ts      offline: the event's time
//   +16 u64 key     integer value, or up to 64 key bytes
//
// output slot (OUT_STRIDE = 48 bytes):
//   +0  u8  ok      badge: grant; passage/offline: applied
//   +1  u8  reason  badge: index in REASONS
//   +2  u8  pending badge: the grant awaits passage
//   +4  i32 arg     badge: area (reader's `to`, -1 on deny); actions: changed
//   +8  u32 vStart  first violation word (index into the violation region)
//   +12 u32 vCount
//   +16 .. +47      badge, offline: the state the decision saw (rules.ts seenInto);
//                   two stores per decision, decoded by the host only when it
//                   writes an event record
//
// violation region: violCap × u32 (rules.ts word format), filled from 0 by
// each applyBatch; a batch stops early (returns how many ops it did) when
// the next op might not fit, and the host calls again for the rest. The fact
// region (factBase, violCap × u32) holds each word's fact at the same index.
//
// Before deciding, the batch is walked in groups of GROUP ops, each in
// passes: hashes and home-bucket addresses first, then one load per home
// bucket, then the lookups proper (each bucket in cache by then; a spill
// reads the adjacent line), then the decisions.
// WebAssembly has no prefetch instruction: a load whose result is not
// needed yet is the only way to have the CPU fetch many lines at once, and
// a load cannot retire before its line arrives, so only the loads that fit
// in the reorder window overlap. The touch pass is therefore a loop of a
// few instructions per op (the hashing is done before it). A decision that
// waits on its own miss costs a full memory latency (~100 ns, several
// hundred with a TLB miss on 4 KB pages); a group's misses overlap instead.
// Groups are small (32) so that the lines and their TLB entries are still
// there when the group is decided: measured at 10 M credentials, 32 decides
// 7.4-7.6 M/s against 6.0 M/s for one pass over the whole 1,024-op batch
// (its early lines and pages are evicted by the time they are decided).
// The slots found are handed to the decisions (rules.ts kHint), unless a
// new credential grew the table meanwhile (tableGen).
import { alloc } from './mem';
import { NIL } from './records';
import { hashInt, hashBytes, homeBucket, bucketPtr, findInt, findBytes, tableGen } from './table';
import { maxViolPerOp } from './site';
import { advanceTo } from './occupancy';
import { setKey, setKeyHint, setFactOut, badge, passage, offline, forgive, reset, exempt, setLocation, resetArea, supervisor, lockdown } from './rules';

export const BATCH_CAP: i32 = 1024;
export const IN_STRIDE: usize = 80;
export const OUT_STRIDE: usize = 48;
/** ops looked up together before they are decided (see above) */
const GROUP: i32 = 32;

export let inBase: usize = 0;
export let outBase: usize = 0;
export let violBase: usize = 0;
export let factBase: usize = 0;
export let violCap: i32 = 0;
let hashes: usize = 0;
/** BATCH_CAP × u32: each op's home bucket address, then its table slot as found before deciding, or NIL */
let found: usize = 0;

export function batchInit(): void {
  inBase = alloc(<usize>BATCH_CAP * IN_STRIDE);
  outBase = alloc(<usize>BATCH_CAP * OUT_STRIDE);
  hashes = alloc(<usize>BATCH_CAP * 4);
  found = alloc(<usize>BATCH_CAP * 4 + 16); // + the touch passes' sum (see applyBatch)
  violCap = 0;
  violEnsure();
}

/** the violation region holds at least two ops' worth (sites with deep trees) */
export function violEnsure(): void {
  let need = maxViolPerOp * 2;
  if (need < 65536) need = 65536;
  if (need <= violCap) return;
  violBase = alloc(<usize>need << 2);
  factBase = alloc(<usize>need << 2);
  violCap = need;
}

// @ts-ignore: decorator
@inline function keyHash(s: usize): u32 {
  const kind = <u32>load<u8>(s, 1);
  return kind == 0 ? hashInt(load<u64>(s, 16)) : hashBytes(kind, s + 16, <u32>load<u8>(s, 2));
}

/** sets the current key from input slot i (hash precomputed or not) */
export function keyFromSlot(i: i32, h: u32): void {
  const s = inBase + <usize>i * IN_STRIDE;
  setKey(<u32>load<u8>(s, 1), load<u64>(s, 16), s + 16, <u32>load<u8>(s, 2), h);
}

export function slotHash(i: i32): u32 { return keyHash(inBase + <usize>i * IN_STRIDE); }

/**
 * Passes 1-3 for ops g..end-1 of the input region: their hashes into
 * `hashes`, their table slots (or NIL) into `found`.
 */
// @ts-ignore: decorator
@inline function lookUp(g: i32, end: i32): void {
  // pass 1: hashes and home bucket addresses (arithmetic only, no miss)
  for (let i = g; i < end; i++) {
    const h = keyHash(inBase + <usize>i * IN_STRIDE);
    store<u32>(hashes + (<usize>i << 2), h);
    store<u32>(found + (<usize>i << 2), <u32>bucketPtr(homeBucket(h)));
  }
  // pass 2: one load per home bucket, a few instructions each, so the reorder window holds the whole group's misses
  let acc: u32 = 0;
  for (let i = g; i < end; i++) acc += load<u32>(<usize>load<u32>(found + (<usize>i << 2)), 8);
  // the loads' sum goes to memory, so the optimizer cannot drop them as unused
  store<u32>(found + (<usize>BATCH_CAP << 2), acc);
  // pass 3: the lookups proper, from cache (a spill to the next bucket may miss here)
  for (let i = g; i < end; i++) {
    const s = inBase + <usize>i * IN_STRIDE;
    const h = load<u32>(hashes + (<usize>i << 2));
    const kind = <u32>load<u8>(s, 1);
    const rec = kind == 0 ? findInt(h, load<u64>(s, 16)) : findBytes(h, kind, s + 16, <u32>load<u8>(s, 2));
    store<u32>(found + (<usize>i << 2), rec);
  }
}

/**
 * The lookups of applyBatch alone, no decision and no state change: how
 * many of ops 0..n-1 name a stored credential. For the benchmark, which
 * sets it beside the decisions to show what the memory costs and what the
 * rules cost.
 */
export function lookupBatch(n: i32): i32 {
  if (n > BATCH_CAP) n = BATCH_CAP;
  let hits = 0;
  for (let g = 0; g < n; g += GROUP) {
    const end = g + GROUP < n ? g + GROUP : n;
    lookUp(g, end);
    for (let i = g; i < end; i++) hits += <i32>(load<u32>(found + (<usize>i << 2)) != NIL);
  }
  return hits;
}

export function applyBatch(n: i32, now: i64): i32 {
  advanceTo(now);
  if (n > BATCH_CAP) n = BATCH_CAP;
  let vUsed = 0;
  for (let g = 0; g < n; g += GROUP) {
    const end = g + GROUP < n ? g + GROUP : n;
    lookUp(g, end);
    const gen = tableGen;
    for (let i = g; i < end; i++) {
      if (vUsed + maxViolPerOp > violCap) return i;
      const s = inBase + <usize>i * IN_STRIDE;
      const o = outBase + <usize>i * OUT_STRIDE;
      setKey(<u32>load<u8>(s, 1), load<u64>(s, 16), s + 16, <u32>load<u8>(s, 2), load<u32>(hashes + (<usize>i << 2)));
      setKeyHint(load<u32>(found + (<usize>i << 2)), gen);
      const op = load<u8>(s);
      const arg = load<i32>(s, 4);
      const vOut = violBase + (<usize>vUsed << 2);
      setFactOut(factBase + (<usize>vUsed << 2));
      let nv = 0;
      switch (op) {
        case 0: nv = badge(arg, o, vOut); break;
        case 1: passage(arg, o); break;
        case 2: nv = offline(arg, <i64>load<f64>(s, 8), load<u8>(s, 3) != 0, o, vOut); break;
        case 3: forgive(o); break;
        case 4: reset(o); break;
        case 5: exempt(load<u8>(s, 3) != 0, o); break;
        case 6: setLocation(arg, o); break;
        case 7: resetArea(arg, o); break;
        case 8: supervisor(load<u8>(s, 3) != 0, o); break;
        case 9: lockdown(arg, load<u8>(s, 3) != 0, o); break;
        default: unreachable();
      }
      store<u32>(o, <u32>vUsed, 8);
      store<u32>(o, <u32>nv, 12);
      vUsed += nv;
    }
  }
  return n;
}
