// Credential records: 24 bytes each, in chunks of 65536 (1.5 MiB) that
// never move, addressed by record number (recNo) in creation order.
//
//   +0  key    u64  integer credential value, or arena offset (arena.ts) of
//                   a string/binary credential's bytes
//   +8  move   u64  bits  0-43 lastMoveAt (ms; 0 = never moved)
//                   bits 44-59 location area (0xFFFF = unknown)
//                   bits 60-61 key kind (0 int, 1 string, 2 binary)
//                   bit  62    freePass        bit 63 exempt
//   +16 reader u64  bits  0-43 lastReaderAt (ms; 0 when no lastReader)
//                   bits 44-59 lastReader (0xFFFF = none)
//                   bit  60    pending: a granted move awaits passage; its
//                              reader is lastReader, its target the reader's
//                              `to`, its deadline lastReaderAt + the reader's
//                              passage time, unless
//                   bit  61    the pending move has an override entry
//                              (occupancy.ts ovTable: only after a reconfigure
//                              changed that reader's target or timeout)
//                   bit  62    supervisor (SPEC 13.2); a standing flag like
//                              exempt, kept by every write of this word
//                              (occupancy.ts setRw). Always 0 in snapshots of
//                              ABI 1, which therefore restore unchanged.
//
// Links, only while some timeout exists (forgetAfter or a presenceTimeout):
// parallel chunks of 65536 × 8 bytes, the doubly linked list of records with
// a known location in lastMoveAt order (occupancy.ts):
//   +0 prev u32   +4 next u32   (NIL = 0xFFFFFFFF)
import { alloc } from './mem';

export const REC_SIZE: usize = 24;
export const CHUNK_BITS: u32 = 16;
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

let recChunks: usize = 0;   // MAX_CHUNKS × u32
let linkChunks: usize = 0;  // MAX_CHUNKS × u32 (0 = not allocated)
export let recCount: u32 = 0;
export let linksOn: bool = false;

export function recordsInit(): void {
  recChunks = alloc(<usize>MAX_CHUNKS * 4);
  linkChunks = alloc(<usize>MAX_CHUNKS * 4);
  recCount = 0;
  linksOn = false;
}

export function recChunkCount(): u32 { return (recCount + CHUNK_MASK) >> CHUNK_BITS; }
export function recChunkPtr(c: u32): usize { return <usize>load<u32>(recChunks + (<usize>c << 2)); }
export function linkChunkPtr(c: u32): usize { return <usize>load<u32>(linkChunks + (<usize>c << 2)); }

// @ts-ignore: decorator
@inline export function recPtr(i: u32): usize {
  return <usize>load<u32>(recChunks + (<usize>(i >> CHUNK_BITS) << 2)) + <usize>(i & CHUNK_MASK) * REC_SIZE;
}
// @ts-ignore: decorator
@inline export function linkPtr(i: u32): usize {
  return <usize>load<u32>(linkChunks + (<usize>(i >> CHUNK_BITS) << 2)) + (<usize>(i & CHUNK_MASK) << 3);
}

function addLinkChunk(c: u32): void {
  store<u32>(linkChunks + (<usize>c << 2), <u32>alloc(<usize>CHUNK_RECS * 8));
}

/** Allocates link chunks for every record chunk (timeouts appeared). */
export function enableLinks(): void {
  if (linksOn) return;
  linksOn = true;
  const n = recChunkCount();
  for (let c: u32 = 0; c < n; c++) if (linkChunkPtr(c) == 0) addLinkChunk(c);
}

/** Links are kept (their chunks stay allocated) but no longer maintained. */
export function disableLinks(): void { linksOn = false; }

/** Reserves room for n records in total (restore); returns nothing, sets recCount. */
export function recReserve(n: u32): void {
  const chunksNeeded = (n + CHUNK_MASK) >> CHUNK_BITS;
  if (chunksNeeded > MAX_CHUNKS) unreachable();
  for (let c = recChunkCount(); c < chunksNeeded; c++) {
    store<u32>(recChunks + (<usize>c << 2), <u32>alloc(<usize>CHUNK_RECS * REC_SIZE));
    if (linksOn && linkChunkPtr(c) == 0) addLinkChunk(c);
  }
  recCount = n;
}

/** A new record number (its 24 bytes are written by the caller). */
export function recNew(): u32 {
  const i = recCount;
  if ((i & CHUNK_MASK) == 0) {
    if ((i >> CHUNK_BITS) >= MAX_CHUNKS) unreachable();
    store<u32>(recChunks + (<usize>(i >> CHUNK_BITS) << 2), <u32>alloc(<usize>CHUNK_RECS * REC_SIZE));
    if (linksOn && linkChunkPtr(i >> CHUNK_BITS) == 0) addLinkChunk(i >> CHUNK_BITS);
  }
  recCount = i + 1;
  return i;
}

// --- field helpers -------------------------------------------------------

// @ts-ignore: decorator
@inline export function mwTime(mw: u64): u64 { return mw & TIME_MASK; }
// @ts-ignore: decorator
@inline export function mwLoc(mw: u64): u32 { return <u32>(mw >> 44) & 0xFFFF; }
// @ts-ignore: decorator
@inline export function mwKind(mw: u64): u32 { return <u32>(mw >> KIND_SHIFT) & 3; }
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
