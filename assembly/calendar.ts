// The expiry calendar: when counts fall by themselves as the clock advances
// (presenceTimeout, forgetAfter), without touching any credential.
//
// An area with expiry E (site.ts expire: the smaller of its presenceTimeout
// and forgetAfter) counts a credential at location L inside it with
// lastMoveAt t while t + E > clock. Areas sharing an E form an expiry
// class k. For every (class k, lastMoveAt t, location L, supervisor or
// not) that some counted credential has, the calendar holds how many
// credentials have it; at the instant t + E_k that many leave the class-k
// areas on L's chain at once (and their sup counts, for a supervisors'
// entry).
// A credential that moves (or is reset) before that instant takes itself
// off its entry (the count falls; the entry stays until its instant), so
// the calendar never needs to know who is in an entry, only how many.
//
//   map  (open addressing, linear probing, power-of-two capacity, load <= 3/4)
//        entry 16 B: +0 key u64 (sup << 62 | t << 16 | L) · +8 class + 1 u32
//                    (0 = empty) · +12 count u32
//   heap (binary min-heap of the map's entries by instant, one per entry)
//        entry 16 B: +0 u64 (t + E_k) << 16 | L · +8 class u32 · +12 sup u32
//
// An entry is created at its first credential and leaves map and heap at
// its instant (advance); since the clock never goes back, no entry is
// created again after its instant. Moves at the clock land in entries of
// the current millisecond, which stay in cache; a move away reads the
// entry of its old lastMoveAt (the second random line of such a decision).
import { alloc, release } from './mem';
import { AREA_NONE } from './records';
import { parentOf, classOf, classDur, addCount, addSup, nClasses } from './site';

const ENTRY: usize = 16;

export let mapTab: usize = 0;
export let mapCap: u32 = 0;
export let mapUsed: u32 = 0;
export let heapTab: usize = 0;
export let heapLen: u32 = 0;
let heapCap: u32 = 0;

/** an empty calendar with room for the given entries (restore) */
export function calReset(cap: u32, heapRoom: u32): void {
  if (mapCap > 0) release(mapTab, <usize>mapCap * ENTRY);
  if (heapCap > 0) release(heapTab, <usize>heapCap * ENTRY);
  mapCap = cap < 1024 ? 1024 : cap;
  mapTab = alloc(<usize>mapCap * ENTRY);
  mapUsed = 0;
  heapCap = heapRoom < 1024 ? 1024 : heapRoom;
  heapTab = alloc(<usize>heapCap * ENTRY);
  heapLen = 0;
}

/** sizes after a restore copied both regions in */
export function calRestored(used: u32, len: u32): void { mapUsed = used; heapLen = len; }

// @ts-ignore: decorator
@inline function mkey(t: i64, loc: u32): u64 { return (<u64>t << 16) | <u64>loc; }
/** bit 62 of a map key: the entry counts supervisors (t << 16 stays below 2^60) */
const SUP_KEY: u64 = <u64>1 << 62;

// @ts-ignore: decorator
@inline function mhash(key: u64, k: i32): u32 {
  let x = key ^ (<u64>k * 0x9E3779B97F4A7C15);
  x ^= x >> 33; x *= 0xff51afd7ed558ccd; x ^= x >> 33;
  return <u32>x;
}

// @ts-ignore: decorator
@inline function mAt(i: u32): usize { return mapTab + <usize>i * ENTRY; }

/** the map entry of (k, key), or 0 */
function mFind(k: i32, key: u64): usize {
  const m = mapCap - 1;
  let i = mhash(key, k) & m;
  while (true) {
    const e = mAt(i);
    const c = load<u32>(e, 8);
    if (c == 0) return 0;
    if (c == <u32>k + 1 && load<u64>(e) == key) return e;
    i = (i + 1) & m;
  }
  return 0;
}

function mGrow(): void {
  const old = mapTab, oldCap = mapCap;
  mapCap = oldCap << 1;
  mapTab = alloc(<usize>mapCap * ENTRY);
  const m = mapCap - 1;
  for (let j: u32 = 0; j < oldCap; j++) {
    const e = old + <usize>j * ENTRY;
    const c = load<u32>(e, 8);
    if (c == 0) continue;
    let i = mhash(load<u64>(e), <i32>c - 1) & m;
    while (load<u32>(mAt(i), 8) != 0) i = (i + 1) & m;
    memory.copy(mAt(i), e, ENTRY);
  }
  release(old, <usize>oldCap * ENTRY);
}

/** removes the entry at e (backward-shift deletion: no tombstones) */
function mDelete(e: usize): void {
  const m = mapCap - 1;
  let i = <u32>((e - mapTab) / ENTRY);
  let j = i;
  while (true) {
    j = (j + 1) & m;
    const f = mAt(j);
    const c = load<u32>(f, 8);
    if (c == 0) break;
    const home = mhash(load<u64>(f), <i32>c - 1) & m;
    // f may move to the hole at i when its home is not in (i, j] cyclically
    if (((j - home) & m) >= ((j - i) & m)) { memory.copy(mAt(i), f, ENTRY); i = j; }
  }
  store<u64>(mAt(i), 0);
  store<u64>(mAt(i), 0, 8);
  mapUsed--;
}

// --- heap ------------------------------------------------------------------

// @ts-ignore: decorator
@inline function hAt(i: u32): usize { return heapTab + <usize>i * ENTRY; }

function hPush(v: u64, k: i32, sup: u32): void {
  if (heapLen == heapCap) {
    const t = alloc(<usize>heapCap * 2 * ENTRY);
    memory.copy(t, heapTab, <usize>heapLen * ENTRY);
    release(heapTab, <usize>heapCap * ENTRY);
    heapTab = t;
    heapCap <<= 1;
  }
  let i = heapLen++;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (load<u64>(hAt(p)) <= v) break;
    memory.copy(hAt(i), hAt(p), ENTRY);
    i = p;
  }
  store<u64>(hAt(i), v);
  store<u32>(hAt(i), <u32>k, 8);
  store<u32>(hAt(i), sup, 12);
}

function hPopTop(): void {
  heapLen--;
  if (heapLen == 0) return;
  const v = load<u64>(hAt(heapLen));
  const k = load<u32>(hAt(heapLen), 8);
  const sup = load<u32>(hAt(heapLen), 12);
  let i: u32 = 0;
  while (true) {
    let c: u32 = 2 * i + 1;
    if (c >= heapLen) break;
    if (c + 1 < heapLen && load<u64>(hAt(c + 1)) < load<u64>(hAt(c))) c++;
    if (load<u64>(hAt(c)) >= v) break;
    memory.copy(hAt(i), hAt(c), ENTRY);
    i = c;
  }
  store<u64>(hAt(i), v);
  store<u32>(hAt(i), k, 8);
  store<u32>(hAt(i), sup, 12);
}

// --- credentials entering and leaving --------------------------------------

/** is class k already met below area a on loc's chain (each class counts once per credential) */
function seenBelow(loc: u32, a: u32, k: i32): bool {
  let b = <i32>loc;
  while (b >= 0 && <u32>b != a) {
    if (classOf(<u32>b) == k) return true;
    b = parentOf(<u32>b);
  }
  return false;
}

/**
 * A credential at loc with lastMoveAt t enters (d = 1) or leaves (d = -1)
 * the calendar entries of the classes on loc's chain it is still counted
 * by at `clock`.
 */
export function calMove(loc: u32, t: i64, d: i32, clock: i64, sup: bool): void {
  if (nClasses == 0 || loc == AREA_NONE) return;
  let a = <i32>loc;
  while (a >= 0) {
    const k = classOf(<u32>a);
    if (k >= 0 && t + classDur(k) > clock && !seenBelow(loc, <u32>a, k)) {
      const key = mkey(t, loc) | (sup ? SUP_KEY : 0);
      let e = mFind(k, key);
      if (e == 0) {
        if (d < 0) unreachable(); // a counted credential always has its entry
        if ((mapUsed + 1) * 4 > mapCap * 3) mGrow();
        const m = mapCap - 1;
        let i = mhash(key, k) & m;
        while (load<u32>(mAt(i), 8) != 0) i = (i + 1) & m;
        e = mAt(i);
        store<u64>(e, key);
        store<u32>(e, <u32>k + 1, 8);
        store<u32>(e, 0, 12);
        mapUsed++;
        hPush(mkey(t + classDur(k), loc), k, sup ? 1 : 0);
      }
      store<u32>(e, <u32>(<i32>load<u32>(e, 12) + d), 12);
    }
    a = parentOf(<u32>a);
  }
}

/** every entry whose instant is <= clock: its credentials leave its class's areas */
export function calExpire(clock: i64): void {
  while (heapLen > 0) {
    const top = hAt(0);
    const v = load<u64>(top);
    const at = <i64>(v >> 16);
    if (at > clock) break;
    const k = <i32>load<u32>(top, 8);
    const loc = <u32>(v & 0xFFFF);
    const sup = load<u32>(top, 12) != 0;
    hPopTop();
    const e = mFind(k, mkey(at - classDur(k), loc) | (sup ? SUP_KEY : 0));
    if (e == 0) unreachable();
    const n = <i32>load<u32>(e, 12);
    mDelete(e);
    if (n == 0) continue;
    let a = <i32>loc;
    while (a >= 0) {
      if (classOf(<u32>a) == k) { addCount(<u32>a, -n); if (sup) addSup(<u32>a, -n); }
      a = parentOf(<u32>a);
    }
  }
}

export function heapBytes(): usize { return <usize>heapLen * ENTRY; }
export function mapBytes(): usize { return <usize>mapCap * ENTRY; }
/** the calendar's memory as allocated (map and heap capacity) */
export function calendarBytes(): usize { return <usize>(mapCap + heapCap) * ENTRY; }
