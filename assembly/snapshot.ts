// Snapshot = header + segments, copied out by the host (src/engine/wasm-core.ts):
//
//   header i64 × HDR_FIELDS:
//     0 magic 'APBW'  1 areas  2 readers  3 records  4 clock  5 listOn
//     6 head  7 tail  8 classes  9 overrides  10 arena chunks  11 arena used
//     12 forgetAfter ms  13 index capacity  14 layout (2; 1 = written by ABI 1)
//   segments, in order (seg table: u32 pairs ptr, len):
//     counts i32 × A | schedule flags u8 × A |
//     supervisor counts i32 × A | lockdown flags u8 × A (layout 2 only) |
//     cursors u32 × classes |
//     overrides 16 × n | record chunks (24 × records in each) |
//     link chunks (8 × records in each; only when listOn) |
//     arena chunks (1 MiB each, the last one only up to `used`) |
//     index slots u32 × capacity (copied, so a restore is a copy, not a rehash)
//
// Restore runs on a fresh instance with the same site installed:
// restoreBegin(header) allocates the same segments and lists them, and the
// host copies the bytes in.
//
// Layout 1 (ABI 1, before SPEC 13) is the same without field 14 and the two
// SPEC 13 segments; the host restores it as layout 1: no area is locked, and
// no record has its supervisor bit (records.ts), so every sup count is 0.
import { alloc, memReserve } from './mem';
import {
  recCount, recChunkCount, recChunkPtr, linkChunkPtr, recReserve, CHUNK_RECS, REC_SIZE,
} from './records';
import { arenaChunkCount, arenaUsed, arenaChunkPtr, arenaAddChunk, arenaSetUsed, ARENA_CHUNK } from './arena';
import { nAreas, nReaders, nClasses, aCount, aActive, aSup, aLocked, forgetMs, lockedRecount } from './site';
import { clock, listOn, head, tail, cursors, ovTab, ovCount, ovReserve, setClock, setListEnds, setOvCount } from './occupancy';
import { tableSlots, tableCapacity, tableRestore } from './table';

export const HDR_FIELDS: i32 = 15;
const LAYOUT: i64 = 2;
/** the layout being restored (snapSegments lists its segments) */
let layout: i64 = LAYOUT;
const MAGIC: i64 = 0x41504257;
let hdr: usize = 0;
let segs: usize = 0;
let segCap: i32 = 0;
let nSeg: i32 = 0;

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
  store<i64>(h(5), listOn ? 1 : 0);
  store<i64>(h(6), head);
  store<i64>(h(7), tail);
  store<i64>(h(8), nClasses);
  store<i64>(h(9), ovCount);
  store<i64>(h(10), arenaChunkCount);
  store<i64>(h(11), arenaUsed);
  store<i64>(h(12), forgetMs);
  store<i64>(h(13), tableCapacity());
  store<i64>(h(14), LAYOUT);
  layout = LAYOUT;
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

/** lists the segments of the current state; returns how many (table at segTable()) */
export function snapSegments(): i32 {
  nSeg = 0;
  const A = <usize>nAreas;
  seg(aCount, A << 2);
  seg(aActive, A);
  if (layout >= 2) { seg(aSup, A << 2); seg(aLocked, A); }
  seg(cursors, <usize>nClasses << 2);
  seg(ovTab, <usize>ovCount << 4);
  const nc = recChunkCount();
  for (let c: u32 = 0; c < nc; c++) {
    const inChunk = c + 1 < nc ? CHUNK_RECS : recCount - c * CHUNK_RECS;
    seg(recChunkPtr(c), <usize>inChunk * REC_SIZE);
  }
  if (listOn) {
    for (let c: u32 = 0; c < nc; c++) {
      const inChunk = c + 1 < nc ? CHUNK_RECS : recCount - c * CHUNK_RECS;
      seg(linkChunkPtr(c), <usize>inChunk << 3);
    }
  }
  for (let c: u32 = 0; c < arenaChunkCount; c++) {
    seg(arenaChunkPtr(c), c + 1 < arenaChunkCount ? <usize>ARENA_CHUNK : <usize>arenaUsed);
  }
  seg(tableSlots(), <usize>tableCapacity() << 2);
  return nSeg;
}

export function segTable(): usize { return segs; }

/** 0 = header fits this site and segments are ready (snapSegments layout); else a reason code > 0 */
export function restoreBegin(): i32 {
  if (load<i64>(h(0)) != MAGIC) return 1;
  layout = load<i64>(h(14));
  if (layout != 1 && layout != LAYOUT) return 4;
  if (load<i64>(h(1)) != <i64>nAreas || load<i64>(h(2)) != <i64>nReaders) return 2;
  if (load<i64>(h(8)) != <i64>nClasses || load<i64>(h(12)) != forgetMs || (load<i64>(h(5)) != 0) != listOn) return 3;
  const n = load<i64>(h(3));
  const ac = load<i64>(h(10));
  const au = load<i64>(h(11));
  const ov = load<i64>(h(9));
  const cap = load<i64>(h(13));
  if (n < 0 || n > 0xF0000000 || ac < 0 || ac > 4096 || au < 0 || au > <i64>ARENA_CHUNK || ov < 0 || ov > n) return 4;
  if (cap < 1024 || cap > 0x80000000 || (cap & (cap - 1)) != 0 || n * 4 > cap * 3) return 4;
  const recBytes = ((<u64>n + <u64>CHUNK_RECS - 1) / <u64>CHUNK_RECS) * <u64>CHUNK_RECS * (<u64>REC_SIZE + (listOn ? 8 : 0));
  const total = recBytes + <u64>ac * <u64>ARENA_CHUNK + <u64>cap * 4 + <u64>ov * 16;
  if (total > 0xF0000000) return 4;
  memReserve(<usize>total);
  setClock(load<i64>(h(4)));
  setListEnds(<u32>load<i64>(h(6)), <u32>load<i64>(h(7)));
  recReserve(<u32>n);
  for (let c: i64 = 0; c < ac; c++) arenaAddChunk();
  arenaSetUsed(<u32>au);
  ovReserve(<u32>ov);
  setOvCount(<u32>ov);
  tableRestore(<u32>cap, <u32>n);
  return 0;
}

export function restoreEnd(): void {
  lockedRecount();
  layout = LAYOUT;
}
