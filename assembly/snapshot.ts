// Snapshot = header + segments, copied out by the host (src/engine/wasm-core.ts):
//
//   header i64 × HDR_FIELDS (15):
//     0 magic 'APB2'  1 areas  2 readers  3 records  4 clock  5 expiry classes
//     6 calendar map capacity  7 calendar map entries (= heap entries)
//     8 presence-timeout classes  9 overrides  10 arena chunks  11 arena used
//     12 forgetAfter ms  13 buckets  14 layout (3)
//   segments, in order (seg table: u32 pairs ptr, len):
//     counts i32 × A | schedule flags u8 × A |
//     supervisor counts i32 × A | lockdown flags u8 × A | overrides 24 × n |
//     record hashes (records.ts, 4 × records in each chunk) |
//     arena chunks (1 MiB each, the last one only up to `used`) |
//     table segments (table.ts: 1 MiB each, or one of 64 × buckets below
//     16384 buckets; a restore is a copy, not a rehash) |
//     calendar map 16 × capacity | calendar heap 16 × entries (calendar.ts)
//
// Restore runs on a fresh instance with the same site installed:
// restoreBegin(header) allocates the same segments and lists them, and the
// host copies the bytes in.
//
// Layouts 1 and 2 (magic 'APBW', 24-byte records before the 64-byte
// buckets; header fields: 0 magic 1 areas 2 readers 3 records 4 clock
// 5 listOn 6 head 7 tail 8 presence-timeout classes 9 overrides 10 arena
// chunks 11 arena used 12 forgetAfter 13 index capacity 14 layout: 1 for
// host ABI 1, whose 14-field header the host extends with it, 2 for ABI 2)
// are migrated: restoreBegin lists their segments (counts | flags |
// [layout 2: supervisor counts | lockdown flags] | cursors | overrides
// 16 × n | 24-byte record chunks | link chunks when listOn | arena chunks |
// index u32 × capacity) over temporary regions, and restoreEnd re-places
// every record in record order, converts the overrides and recounts
// (counts, supervisor counts, calendar). A layout-1 record never has its
// supervisor bit, and no area is locked.
import { alloc, release, memReserve } from './mem';
import {
  recCount, recReserve, posChunkCount, posChunkPtr, CHUNK_RECS, OVERRIDE, kindBits,
} from './records';
import { arenaChunkCount, arenaUsed, arenaChunkPtr, arenaAddChunk, arenaSetUsed, arenaAt, ARENA_CHUNK } from './arena';
import { nAreas, nReaders, nClasses, nPresenceClasses, aCount, aActive, aSup, aLocked, forgetMs, lockedRecount } from './site';
import { clock, ovTab, ovCount, ovReserve, ovSet, setClock, setOvCount, OV_SIZE, recount } from './occupancy';
import { mapTab, mapCap, mapUsed, heapTab, heapLen, mapBytes, heapBytes, calReset, calRestored } from './calendar';
import {
  nBuckets, nSegs, segPtr, segBytes, tableRestore, tablePlace, tableBytesFor, bucketsFor, bucketsValid, hashInt, hashBytes,
} from './table';

export const HDR_FIELDS: i32 = 15;
/** this layout's number (header field 14); 1 and 2 are migrated */
const LAYOUT: i64 = 3;
const MAGIC: i64 = 0x41504232;
const MAGIC_LAYOUT1: i64 = 0x41504257;
const L1_REC: usize = 24;
let hdr: usize = 0;
let segs: usize = 0;
let segCap: i32 = 0;
let nSeg: i32 = 0;

// layout-1 migration: temporary regions, released by restoreEnd
let migrating: bool = false;
let mRecs: usize = 0;
let mOv: usize = 0;
let mScratch: usize = 0;
let mScratchSize: usize = 0;
let mCount: u32 = 0;

export function snapHeaderPtr(): usize {
  if (hdr == 0) hdr = alloc(<usize>HDR_FIELDS << 3);
  return hdr;
}

// @ts-ignore: decorator
@inline function h(i: i32): usize { return hdr + (<usize>i << 3); }

export function snapHeader(): usize {
  snapHeaderPtr();
  store<i64>(h(0), MAGIC);
  store<i64>(h(1), nAreas);
  store<i64>(h(2), nReaders);
  store<i64>(h(3), recCount);
  store<i64>(h(4), clock);
  store<i64>(h(5), nClasses);
  store<i64>(h(6), mapCap);
  store<i64>(h(7), mapUsed);
  store<i64>(h(8), nPresenceClasses);
  store<i64>(h(9), ovCount);
  store<i64>(h(10), arenaChunkCount);
  store<i64>(h(11), arenaUsed);
  store<i64>(h(12), forgetMs);
  store<i64>(h(13), nBuckets);
  store<i64>(h(14), LAYOUT);
  return hdr;
}

function seg(p: usize, len: usize): void {
  if (nSeg >= segCap) {
    const cap = segCap < 64 ? 64 : segCap * 2;
    const t = alloc(<usize>cap << 3);
    if (nSeg > 0) memory.copy(t, segs, <usize>nSeg << 3);
    segs = t;
    segCap = cap;
  }
  store<u32>(segs + (<usize>nSeg << 3), <u32>p);
  store<u32>(segs + (<usize>nSeg << 3), <u32>len, 4);
  nSeg++;
}

// @ts-ignore: decorator
@inline function inChunk(c: u32, nc: u32, n: u32): usize { return c + 1 < nc ? <usize>CHUNK_RECS : <usize>(n - c * CHUNK_RECS); }

function arenaSegs(): void {
  for (let c: u32 = 0; c < arenaChunkCount; c++) {
    seg(arenaChunkPtr(c), c + 1 < arenaChunkCount ? <usize>ARENA_CHUNK : <usize>arenaUsed);
  }
}

/** lists the segments of the current state; returns how many (table at segTable()) */
export function snapSegments(): i32 {
  if (migrating) return nSeg; // listed by migrateBegin
  nSeg = 0;
  const A = <usize>nAreas;
  seg(aCount, A << 2);
  seg(aActive, A);
  seg(aSup, A << 2);
  seg(aLocked, A);
  seg(ovTab, <usize>ovCount * OV_SIZE);
  const nc = posChunkCount();
  for (let c: u32 = 0; c < nc; c++) seg(posChunkPtr(c), inChunk(c, nc, recCount) << 2);
  arenaSegs();
  const sb = segBytes();
  for (let i: u32 = 0; i < nSegs; i++) seg(segPtr(i), sb);
  seg(mapTab, mapBytes());
  seg(heapTab, heapBytes());
  return nSeg;
}

export function segTable(): usize { return segs; }

/** the header's fields shared by both layouts; 0 when they fit this site, else a reason code */
function checkCommon(): i32 {
  if (load<i64>(h(1)) != <i64>nAreas || load<i64>(h(2)) != <i64>nReaders) return 2;
  if (load<i64>(h(8)) != <i64>nPresenceClasses || load<i64>(h(12)) != forgetMs) return 3;
  const n = load<i64>(h(3));
  const ac = load<i64>(h(10));
  const au = load<i64>(h(11));
  const ov = load<i64>(h(9));
  if (n < 0 || n > 0xF0000000 || ac < 0 || ac > 4096 || au < 0 || au > <i64>ARENA_CHUNK || ov < 0 || ov > n) return 4;
  return 0;
}

/** 0 = header fits this site and segments are ready (snapSegments layout); else a reason code > 0 */
export function restoreBegin(): i32 {
  migrating = false;
  const magic = load<i64>(h(0));
  if (magic == MAGIC_LAYOUT1) return migrateBegin();
  if (magic != MAGIC) return 1;
  if (load<i64>(h(14)) != LAYOUT) return 4;
  const rc = checkCommon();
  if (rc != 0) return rc;
  if (load<i64>(h(5)) != <i64>nClasses) return 3;
  const n = load<i64>(h(3));
  const ac = load<i64>(h(10));
  const ov = load<i64>(h(9));
  const nb = load<i64>(h(13));
  const mc = load<i64>(h(6)), mu = load<i64>(h(7)), hl = mu; // one heap entry per map entry
  // at most 7/8 of the slots used (table.ts), the calendar map at most 3/4 full
  if (!bucketsValid(<u64>nb) || n * 8 > nb * 14) return 4;
  if (mc < 1024 || mc > 0x8000000 || (mc & (mc - 1)) != 0 || mu < 0 || mu * 4 > mc * 3) return 4;
  const posBytes = ((<u64>n + <u64>CHUNK_RECS - 1) / <u64>CHUNK_RECS) * <u64>CHUNK_RECS * 4;
  const total = posBytes + <u64>ac * <u64>ARENA_CHUNK + <u64>tableBytesFor(<u32>nb) + <u64>ov * <u64>OV_SIZE
    + <u64>mc * 16 + <u64>(hl < 1024 ? 1024 : hl) * 16;
  if (total > 0xF0000000) return 4;
  memReserve(<usize>total);
  setClock(load<i64>(h(4)));
  calReset(<u32>mc, <u32>hl);
  calRestored(<u32>mu, <u32>hl);
  recReserve(<u32>n);
  for (let c: i64 = 0; c < ac; c++) arenaAddChunk();
  arenaSetUsed(<u32>load<i64>(h(11)));
  ovReserve(<u32>ov);
  setOvCount(<u32>ov);
  tableRestore(<u32>nb, <u32>n);
  return 0;
}

/** layout 1: checks its header, then lists its segments over temporary regions (see the top) */
function migrateBegin(): i32 {
  const layout = load<i64>(h(14));
  if (layout != 1 && layout != 2) return 4;
  const rc = checkCommon();
  if (rc != 0) return rc;
  const listOn = forgetMs > 0 || nPresenceClasses > 0;
  if ((load<i64>(h(5)) != 0) != listOn) return 3;
  const n = <u32>load<i64>(h(3));
  const ac = load<i64>(h(10));
  const ov = <u32>load<i64>(h(9));
  const cap = load<i64>(h(13));
  if (cap < 1024 || cap > 0x80000000 || (cap & (cap - 1)) != 0 || <i64>n * 4 > cap * 3) return 4;
  const linkBytes: usize = listOn ? <usize>CHUNK_RECS * 8 : 0;
  // the old links and index are read and dropped: one scratch region takes them all
  let scratch: usize = <usize>cap * 4 > linkBytes ? <usize>cap * 4 : linkBytes;
  if (scratch < <usize>nPresenceClasses << 2) scratch = <usize>nPresenceClasses << 2;
  const total = <u64>n * (L1_REC + 4 + 4) + <u64>ac * <u64>ARENA_CHUNK + <u64>scratch + <u64>tableBytesFor(bucketsFor(n))
    + <u64>ov * (16 + <u64>OV_SIZE) + <u64>CHUNK_RECS * 4 + 4096;
  if (total > 0xF0000000) return 4;
  memReserve(<usize>total);
  migrating = true;
  mCount = n;
  mRecs = alloc(<usize>n * L1_REC);
  mOv = alloc(<usize>ov << 4);
  mScratchSize = scratch;
  mScratch = alloc(scratch);
  setClock(load<i64>(h(4)));
  for (let c: i64 = 0; c < ac; c++) arenaAddChunk();
  arenaSetUsed(<u32>load<i64>(h(11)));
  nSeg = 0;
  const A = <usize>nAreas;
  seg(aCount, A << 2);
  seg(aActive, A);
  if (layout == 2) { seg(aSup, A << 2); seg(aLocked, A); } // sup counts: recounted
  seg(mScratch, <usize>nPresenceClasses << 2); // cursors: rebuilt
  seg(mOv, <usize>ov << 4);
  const nc = (n + CHUNK_RECS - 1) / CHUNK_RECS;
  for (let c: u32 = 0; c < nc; c++) seg(mRecs + <usize>c * <usize>CHUNK_RECS * L1_REC, inChunk(c, nc, n) * L1_REC);
  if (listOn) for (let c: u32 = 0; c < nc; c++) seg(mScratch, inChunk(c, nc, n) << 3);
  arenaSegs();
  seg(mScratch, <usize>cap * 4);
  return 0;
}

/** the overridden target and deadline of old record r (layout 1: rec u32, to u32, deadline i64) */
function migrateOverride(r: u32, slot: u32, ovOld: u32): void {
  for (let i: u32 = 0; i < ovOld; i++) {
    const e = mOv + (<usize>i << 4);
    if (load<u32>(e) == r) { ovSet(slot, load<u32>(e, 4), load<i64>(e, 8), false); return; }
  }
  unreachable();
}

export function restoreEnd(): void {
  lockedRecount();
  if (!migrating) return;
  migrating = false;
  const n = mCount;
  const ovOld = <u32>load<i64>(h(9));
  tableRestore(bucketsFor(n), 0);
  recReserve(n);
  setOvCount(0);
  ovReserve(ovOld);
  for (let r: u32 = 0; r < n; r++) {
    const p = mRecs + <usize>r * L1_REC;
    const key = load<u64>(p);
    const mw = load<u64>(p, 8);
    const rw = load<u64>(p, 16);
    const kind = <u32>(mw >> 60) & 3; // layout 1: kind 0-2 without the +1
    let hh: u32;
    if (kind == 0) hh = hashInt(key);
    else { const a = arenaAt(key); hh = hashBytes(kind, a + 1, <u32>load<u8>(a)); }
    const slot = tablePlace(key, (mw & ~(<u64>3 << 60)) | kindBits(kind), rw, hh, r);
    if ((rw & OVERRIDE) != 0) migrateOverride(r, slot, ovOld);
  }
  recount();
  release(mRecs, <usize>n * L1_REC);
  release(mOv, <usize>ovOld << 4);
  release(mScratch, mScratchSize);
}
