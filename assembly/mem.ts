// Region allocator over linear memory (runtime "stub": the core uses no
// managed objects, only raw regions it lays out itself).
//
//   0 .. __heap_base   static data of the module
//   freeTab            MAX_FREE × (start u32, end u32): retired regions
//   bump ->            regions handed out in order; memory grows by >= 1/8
//                      at a time so the host's views are rebuilt rarely
//
// Regions never move. A retired region (an outgrown hash table, an old
// site's tables) goes on the free list and is reused first-fit, so growing
// the index does not leave its old copies as dead weight.

const MAX_FREE: i32 = 64;
let freeTab: usize = 0;
let nFree: i32 = 0;
let bump: usize = 0;

export function memInit(): void {
  freeTab = (__heap_base + 15) & ~(<usize>15);
  nFree = 0;
  bump = freeTab + <usize>MAX_FREE * 8;
  ensureMem(bump);
}

function ensureMem(end: usize): void {
  const have = <usize>memory.size() << 16;
  if (end <= have) return;
  const need = <i32>((end - have + 0xFFFF) >> 16);
  let extra = memory.size() >> 3;
  if (extra < need) extra = need;
  if (memory.grow(extra) < 0) {
    if (memory.grow(need) < 0) unreachable(); // out of memory: the host reports it as `internal`
  }
}

/** grows memory once for `bytes` more of bump allocations (restore knows its total up front) */
export function memReserve(bytes: usize): void {
  if (bump + bytes < bump) unreachable();
  ensureMem(bump + bytes);
}

/** A zeroed region of at least `size` bytes, 16-byte aligned. */
export function alloc(size: usize): usize {
  size = (size + 15) & ~(<usize>15);
  for (let i = 0; i < nFree; i++) {
    const e = freeTab + (<usize>i << 3);
    const s = <usize>load<u32>(e);
    const end = <usize>load<u32>(e, 4);
    if (end - s >= size) {
      if (s + size == end) { // used up: drop the entry
        nFree--;
        const last = freeTab + (<usize>nFree << 3);
        store<u64>(e, load<u64>(last));
      } else {
        store<u32>(e, <u32>(s + size));
      }
      memory.fill(s, 0, size);
      return s;
    }
  }
  const p = bump;
  if (bump + size < bump) unreachable(); // past 4 GiB
  bump += size;
  ensureMem(bump); // fresh pages from memory.grow are already zero
  return p;
}

/** Gives a region back for reuse (dropped silently when the free list is full). */
export function release(p: usize, size: usize): void {
  size = (size + 15) & ~(<usize>15);
  if (size == 0 || nFree >= MAX_FREE) return;
  const e = freeTab + (<usize>nFree << 3);
  store<u32>(e, <u32>p);
  store<u32>(e, <u32>(p + size), 4);
  nFree++;
}
