// Key bytes of string and binary credentials, append-only (credentials are
// never deleted, so nothing is ever freed here).
//
//   chunk (1 MiB): | len u8 | bytes ... | len u8 | bytes ... | ... unused tail |
//
// An entry never straddles chunks. A record's key word holds the entry's
// logical offset `chunkIndex << 20 | offsetInChunk`, which stays valid when
// a snapshot is restored into chunks at other addresses.
import { alloc } from './mem';

export const ARENA_CHUNK_BITS: u32 = 20;
export const ARENA_CHUNK: u32 = 1 << ARENA_CHUNK_BITS;
const MAX_ARENA_CHUNKS: u32 = 4096;

/** MAX_ARENA_CHUNKS × u32 chunk base addresses */
let chunks: usize = 0;
export let arenaChunkCount: u32 = 0;
/** bytes used in the last chunk */
export let arenaUsed: u32 = 0;

export function arenaInit(): void {
  chunks = alloc(<usize>MAX_ARENA_CHUNKS * 4);
  arenaChunkCount = 0;
  arenaUsed = ARENA_CHUNK;
}

export function arenaChunkPtr(i: u32): usize {
  return <usize>load<u32>(chunks + (<usize>i << 2));
}

/** appends a fresh chunk (also used by restore) */
export function arenaAddChunk(): usize {
  if (arenaChunkCount >= MAX_ARENA_CHUNKS) unreachable();
  const p = alloc(<usize>ARENA_CHUNK);
  store<u32>(chunks + (<usize>arenaChunkCount << 2), <u32>p);
  arenaChunkCount++;
  arenaUsed = 0;
  return p;
}

export function arenaSetUsed(n: u32): void { arenaUsed = n; }

/** copies `len` (1..255) bytes from src; returns the logical offset */
export function arenaPut(src: usize, len: u32): u64 {
  if (arenaUsed + 1 + len > ARENA_CHUNK) arenaAddChunk();
  const i = arenaChunkCount - 1;
  const p = arenaChunkPtr(i) + <usize>arenaUsed;
  store<u8>(p, <u8>len);
  memory.copy(p + 1, src, <usize>len);
  const off = (<u64>i << ARENA_CHUNK_BITS) | <u64>arenaUsed;
  arenaUsed += 1 + len;
  return off;
}

/** address of the entry's length byte (the bytes follow it) */
// @ts-ignore: decorator
@inline export function arenaAt(off: u64): usize {
  return arenaChunkPtr(<u32>(off >> ARENA_CHUNK_BITS)) + <usize>(off & <u64>(ARENA_CHUNK - 1));
}
