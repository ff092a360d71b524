// Credential state words and the count of credentials.
//
// A credential's state lives in its table slot (table.ts: key, move word,
// reader word and record number side by side in one cache line). Record n
// is the n-th credential created; its number is kept in its bucket and
// gives the muster list its creation order and its resume points (scan.ts).
// hashes[n] is the key hash of record n, which finds its bucket (table.ts
// findRec) at any table size, so a growth never rewrites it: it is for the
// muster list of a well-filled area, where walking a few thousand records
// in order beats reading the whole table. The decisions never read either.
//
// hashes: chunks of 65536 × u32 (256 KiB) that never move, written once.
//
//   move   u64  bits  0-43 lastMoveAt (ms; 0 = never moved)
//               bits 44-59 location area (0xFFFF = unknown)
//               bits 60-61 key kind + 1 (1 int, 2 string, 3 binary): never
//                          0 in a used slot, so an all-zero move word marks
//                          an empty slot
//               bit  62    freePass        bit 63 exempt
//   reader u64  bits  0-43 lastReaderAt (ms; 0 when no lastReader)
//               bits 44-59 lastReader (0xFFFF = none)
//               bit  60    pending: a granted move awaits passage; its
//                          reader is lastReader, its target the reader's
//                          `to`, its deadline lastReaderAt + the reader's
//                          passage time, unless
//               bit  61    the pending move has an override entry
//                          (occupancy.ts ovTab: only after a reconfigure
//                          changed that reader's target or timeout)
//               bit  62    supervisor (SPEC 13.2); a standing flag like
//                          exempt, kept by every write of this word
//                          (occupancy.ts setRw)

import { alloc } from './mem';

export const CHUNK_BITS: u32 = 16;
/** records per pos chunk (and per record chunk of the old layouts, snapshot.ts migration) */
export const CHUNK_RECS: u32 = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = CHUNK_RECS - 1;
const MAX_CHUNKS: u32 = 4096; // 268 M records
export const NIL: u32 = 0xFFFFFFFF;

export const TIME_MASK: u64 = (<u64>1 << 44) - 1;
export const AREA_NONE: u32 = 0xFFFF;
export const READER_NONE: u32 = 0xFFFF;
export const KIND_SHIFT: u64 = 60;
export const FREEPASS: u64 = <u64>1 << 62;
export const EXEMPT: u64 = <u64>1 << 63;
export const PENDING: u64 = <u64>1 << 60;
export const OVERRIDE: u64 = <u64>1 << 61;
export const SUPERVISOR: u64 = <u64>1 << 62;
/** a reader word with no lastReader */
export const RW_EMPTY: u64 = <u64>READER_NONE << 44;

let posChunks: usize = 0;   // MAX_CHUNKS × u32
export let recCount: u32 = 0;

export function recordsInit(): void {
  posChunks = alloc(<usize>MAX_CHUNKS * 4);
  recCount = 0;
}

export function posChunkCount(): u32 { return (recCount + CHUNK_MASK) >> CHUNK_BITS; }
export function posChunkPtr(c: u32): usize { return <usize>load<u32>(posChunks + (<usize>c << 2)); }

// @ts-ignore: decorator
@inline function posAddr(i: u32): usize {
  return <usize>load<u32>(posChunks + (<usize>(i >> CHUNK_BITS) << 2)) + (<usize>(i & CHUNK_MASK) << 2);
}

/** the key hash of record i */
// @ts-ignore: decorator
@inline export function recHash(i: u32): u32 { return load<u32>(posAddr(i)); }
// @ts-ignore: decorator
@inline export function setRecHash(i: u32, h: u32): void { store<u32>(posAddr(i), h); }

/** Reserves room for n records in total (restore), sets recCount. */
export function recReserve(n: u32): void {
  const chunksNeeded = (n + CHUNK_MASK) >> CHUNK_BITS;
  if (chunksNeeded > MAX_CHUNKS) unreachable();
  for (let c = posChunkCount(); c < chunksNeeded; c++) {
    store<u32>(posChunks + (<usize>c << 2), <u32>alloc(<usize>CHUNK_RECS * 4));
  }
  recCount = n;
}

/** a new record number, for a key hashed h */
export function recAppend(h: u32): u32 {
  const i = recCount;
  if ((i & CHUNK_MASK) == 0) {
    if ((i >> CHUNK_BITS) >= MAX_CHUNKS) unreachable();
    store<u32>(posChunks + (<usize>(i >> CHUNK_BITS) << 2), <u32>alloc(<usize>CHUNK_RECS * 4));
  }
  recCount = i + 1;
  setRecHash(i, h);
  return i;
}

// --- field helpers -------------------------------------------------------

// @ts-ignore: decorator
@inline export function mwTime(mw: u64): u64 { return mw & TIME_MASK; }
// @ts-ignore: decorator
@inline export function mwLoc(mw: u64): u32 { return <u32>(mw >> 44) & 0xFFFF; }
/** key kind 0 int, 1 string, 2 binary */
// @ts-ignore: decorator
@inline export function mwKind(mw: u64): u32 { return (<u32>(mw >> KIND_SHIFT) & 3) - 1; }
/** the kind bits of a move word for key kind 0-2 */
// @ts-ignore: decorator
@inline export function kindBits(kind: u32): u64 { return <u64>(kind + 1) << KIND_SHIFT; }
// @ts-ignore: decorator
@inline export function mwWith(mw: u64, loc: u32, t: u64): u64 {
  return (mw & ~((<u64>0xFFFF << 44) | TIME_MASK)) | (<u64>loc << 44) | (t & TIME_MASK);
}
// @ts-ignore: decorator
@inline export function rwTime(rw: u64): u64 { return rw & TIME_MASK; }
// @ts-ignore: decorator
@inline export function rwReader(rw: u64): u32 { return <u32>(rw >> 44) & 0xFFFF; }
// @ts-ignore: decorator
@inline export function rwMake(reader: u32, t: u64): u64 { return (<u64>reader << 44) | (t & TIME_MASK); }
