// Exact occupancy (SPEC 8, 12 "Occupancy") and the instants at which state
// changes by itself as the clock advances (presenceTimeout, forgetAfter).
//
// count[a] (site.ts aCount) = credentials whose location is inside area a
// and whose presence there has not timed out by a's own presenceTimeout at
// the clock. Every location write goes through moveRec/resetRec, which move
// the credential's contribution (countMove) between its old and new areas.
//
// Timeouts without scanning: while any timeout exists (forgetAfter or some
// presenceTimeout), records with a known location are kept in one doubly
// linked list ordered by lastMoveAt (table.ts: each slot's prev/next slot
// numbers sit in its own bucket):
//
//   head ─▶ oldest ─▶ ... ─▶ newest ◀─ tail
//                ▲cursor[k]: first record with lastMoveAt + classMs[k] > clock
//
// A timeout class k is one distinct presenceTimeout value. Advancing the
// clock walks each cursor forward over the records whose presence just
// timed out, taking them off the counts of the areas with that timeout;
// forgetAfter pops expired records off the head (a reset at its instant,
// SPEC 12 "Resets"). Invariant between calls: a listed record is counted in
// area a iff timeout(a) == 0 or lastMoveAt + timeout(a) > clock, which is
// exactly what countMove computes, so removal/insertion stays consistent
// with the cursors. Moves are appended at the tail (lastMoveAt = clock);
// only offline uploads and clock-earlier times walk back to their place.
//
// Pending overrides (ovTab, 24 bytes each: key word u64, key kind u32,
// to u32, deadline i64): the few pending moves whose target/deadline no
// longer follow from their reader after a reconfigure (records.ts reader
// word bit 61). They are found by key, which stays put when the table grows.
//
// Slot numbers (table.ts) change when the table grows: the list and the
// cursors are then rebuilt (listRebuild).
import { alloc, release } from './mem';
import {
  NIL, TIME_MASK, AREA_NONE, PENDING, OVERRIDE, RW_EMPTY,
  mwLoc, mwTime, mwWith, rwReader, rwTime,
} from './records';
import { slotPtr as recPtr, linkPtr, nBuckets } from './table';
import {
  nAreas, aCount, nClasses, classMs, forgetMs, parentOf, timeoutOf, addCount, readerTo, readerPassage,
} from './site';

export let clock: i64 = 0;
export let listOn: bool = false;
export let head: u32 = NIL;
export let tail: u32 = NIL;
/** u32 × nClasses */
export let cursors: usize = 0;

export let ovTab: usize = 0;
export let ovCount: u32 = 0;
let ovCap: u32 = 0;

export function setClock(t: i64): void { clock = t; }
export function setOvCount(n: u32): void { ovCount = n; }
export function setListEnds(h: u32, t: u32): void { head = h; tail = t; }

// @ts-ignore: decorator
@inline function tOf(rec: u32): i64 { return <i64>(load<u64>(recPtr(rec), 8) & TIME_MASK); }
// @ts-ignore: decorator
@inline function prevOf(rec: u32): u32 { return load<u32>(linkPtr(rec)); }
// @ts-ignore: decorator
@inline function nextOf(rec: u32): u32 { return load<u32>(linkPtr(rec), 4); }
// @ts-ignore: decorator
@inline function setPrev(rec: u32, v: u32): void { store<u32>(linkPtr(rec), v); }
// @ts-ignore: decorator
@inline function setNext(rec: u32, v: u32): void { store<u32>(linkPtr(rec), v, 4); }
// @ts-ignore: decorator
@inline function cursorAt(k: i32): usize { return cursors + (<usize>k << 2); }
// @ts-ignore: decorator
@inline function classAt(k: i32): i64 { return load<i64>(classMs + (<usize>k << 3)); }

/** ± one credential at `loc` with lastMoveAt t, in every area it is counted in at the clock */
export function countMove(loc: u32, t: i64, d: i32): void {
  let a = <i32>loc;
  while (a >= 0) {
    const to = timeoutOf(<u32>a);
    if (to == 0 || t + to > clock) addCount(<u32>a, d);
    a = parentOf(<u32>a);
  }
}

function listInsert(rec: u32, t: i64): void {
  let p = tail;
  while (p != NIL && tOf(p) > t) p = prevOf(p);
  const n = p == NIL ? head : nextOf(p);
  setPrev(rec, p);
  setNext(rec, n);
  if (p == NIL) head = rec; else setNext(p, rec);
  if (n == NIL) tail = rec; else setPrev(n, rec);
  for (let k = 0; k < nClasses; k++) {
    if (t + classAt(k) > clock && load<u32>(cursorAt(k)) == n) store<u32>(cursorAt(k), rec);
  }
}

function unlinkRaw(rec: u32): void {
  const p = prevOf(rec), n = nextOf(rec);
  if (p == NIL) head = n; else setNext(p, n);
  if (n == NIL) tail = p; else setPrev(n, p);
}

function listRemove(rec: u32): void {
  const n = nextOf(rec);
  for (let k = 0; k < nClasses; k++) if (load<u32>(cursorAt(k)) == rec) store<u32>(cursorAt(k), n);
  unlinkRaw(rec);
}

// --- pending overrides ---------------------------------------------------

export const OV_SIZE: usize = 24;

// @ts-ignore: decorator
@inline function ovAt(i: u32): usize { return ovTab + <usize>i * OV_SIZE; }

/** the override entry of the credential with key word k and kind bits kb (move word bits 60-61) */
export function ovFindKey(k: u64, kb: u32): usize {
  for (let i: u32 = 0; i < ovCount; i++) {
    const e = ovAt(i);
    if (load<u64>(e) == k && load<u32>(e, 8) == kb) return e;
  }
  unreachable();
  return 0;
}

export function ovFind(rec: u32): usize {
  const p = recPtr(rec);
  return ovFindKey(load<u64>(p), <u32>(load<u64>(p, 8) >> 60) & 3);
}

export function ovRemove(rec: u32): void {
  const e = ovFind(rec);
  ovCount--;
  memory.copy(e, ovAt(ovCount), OV_SIZE);
}

/** sets or adds the override of rec (the caller sets the OVERRIDE bit) */
export function ovSet(rec: u32, to: u32, deadline: i64, exists: bool): void {
  let e: usize;
  if (exists) e = ovFind(rec);
  else {
    ovReserve(ovCount + 1);
    e = ovAt(ovCount);
    ovCount++;
  }
  const p = recPtr(rec);
  store<u64>(e, load<u64>(p));
  store<u32>(e, <u32>(load<u64>(p, 8) >> 60) & 3, 8);
  store<u32>(e, to, 12);
  store<i64>(e, deadline, 16);
}

export function ovReserve(n: u32): void {
  if (n <= ovCap) return;
  let cap = ovCap < 16 ? <u32>16 : ovCap;
  while (cap < n) cap <<= 1;
  const t = alloc(<usize>cap * OV_SIZE);
  if (ovCount > 0) memory.copy(t, ovTab, <usize>ovCount * OV_SIZE);
  if (ovCap > 0) release(ovTab, <usize>ovCap * OV_SIZE);
  ovTab = t;
  ovCap = cap;
}

/** replaces rec's reader word, dropping its override entry if it had one */
export function setRw(rec: u32, rw: u64): void {
  const r = recPtr(rec);
  if ((load<u64>(r, 16) & OVERRIDE) != 0) ovRemove(rec);
  store<u64>(r, rw, 16);
}

/** target and deadline of rec's pending move (valid after pendingOf returned true) */
export let pTo: u32 = 0;
export let pDeadline: i64 = 0;

/** does rec hold a pending move still in time at the clock */
export function pendingOf(rec: u32, rw: u64): bool {
  if ((rw & PENDING) == 0) return false;
  if ((rw & OVERRIDE) != 0) {
    const e = ovFind(rec);
    pTo = load<u32>(e, 12);
    pDeadline = load<i64>(e, 16);
  } else {
    const reader = rwReader(rw);
    pTo = readerTo(reader);
    pDeadline = <i64>rwTime(rw) + readerPassage(reader);
  }
  return clock < pDeadline;
}

// --- state changes that touch location -----------------------------------

/** takes rec out of its location's counts and the timeout list; returns its moveWord */
// @ts-ignore: decorator
@inline function leaveLocation(rec: u32, r: usize): u64 {
  const mw = load<u64>(r, 8);
  const old = mwLoc(mw);
  if (old != AREA_NONE) {
    countMove(old, <i64>mwTime(mw), -1);
    if (listOn) listRemove(rec);
  }
  return mw;
}

/** applies a move: location = loc, lastMoveAt = t, pending dropped */
export function moveRec(rec: u32, loc: u32, t: i64): void {
  const r = recPtr(rec);
  const mw = leaveLocation(rec, r);
  store<u64>(r, mwWith(mw, loc, <u64>t), 8);
  countMove(loc, t, 1);
  if (listOn) listInsert(rec, t);
  const rw = load<u64>(r, 16);
  if ((rw & PENDING) != 0) setRw(rec, rw & ~(PENDING | OVERRIDE));
}

/** a reset at instant `at`: location unknown, lastMoveAt = at, pending and reuse memory dropped, flags kept */
export function resetRec(rec: u32, at: i64): void {
  const r = recPtr(rec);
  const mw = leaveLocation(rec, r);
  store<u64>(r, mwWith(mw, AREA_NONE, <u64>at), 8);
  setRw(rec, RW_EMPTY);
}

// --- the clock -----------------------------------------------------------

function expireFor(rec: u32, d: i64): void {
  let a = <i32>mwLoc(load<u64>(recPtr(rec), 8));
  while (a >= 0) {
    if (timeoutOf(<u32>a) == d) addCount(<u32>a, -1);
    a = parentOf(<u32>a);
  }
}

/** forgets every listed record whose lastMoveAt + forgetAfter <= clock (each at its own instant) */
export function forgetDue(): void {
  if (forgetMs <= 0 || !listOn) return;
  while (head != NIL) {
    const t = tOf(head);
    if (t + forgetMs > clock) break;
    resetRec(head, t + forgetMs);
  }
}

/** moves the clock forward; timeouts and forgetAfter take effect at their instants */
export function advanceTo(now: i64): void {
  if (now <= clock) return;
  clock = now;
  if (!listOn) return;
  for (let k = 0; k < nClasses; k++) {
    const d = classAt(k);
    let c = load<u32>(cursorAt(k));
    while (c != NIL && tOf(c) + d <= clock) { expireFor(c, d); c = nextOf(c); }
    store<u32>(cursorAt(k), c);
  }
  forgetDue();
}

// --- (re)building --------------------------------------------------------

/** allocates the per-site occupancy state after siteInstall (counts are zero) */
export function occupancyInstall(): void {
  const nc: i32 = nClasses > 0 ? nClasses : 1;
  cursors = alloc(<usize>nc << 2);
  for (let k = 0; k < nClasses; k++) store<u32>(cursorAt(k), NIL);
  listOn = forgetMs > 0 || nClasses > 0;
}

/** takes rec off the list without touching counts or cursors (rebuilds only) */
export function listDrop(rec: u32): void { unlinkRaw(rec); }

/** links every credential with a known location, in lastMoveAt order */
export function listBuildSorted(): void {
  head = NIL; tail = NIL;
  const slots = nBuckets << 1;
  for (let rec: u32 = 0; rec < slots; rec++) {
    const mw = load<u64>(recPtr(rec), 8);
    if (mw == 0 || mwLoc(mw) == AREA_NONE) continue;
    setPrev(rec, tail);
    setNext(rec, NIL);
    if (tail == NIL) head = rec; else setNext(tail, rec);
    tail = rec;
  }
  sortList();
}

/** stable bottom-up merge sort of the list by lastMoveAt (S. Tatham's list mergesort) */
function sortList(): void {
  if (head == NIL) return;
  let list = head;
  let insize: u32 = 1;
  while (true) {
    let p = list;
    list = NIL;
    let tl = NIL;
    let merges = 0;
    while (p != NIL) {
      merges++;
      let q = p;
      let psize: u32 = 0;
      for (let i: u32 = 0; i < insize; i++) { psize++; q = nextOf(q); if (q == NIL) break; }
      let qsize = insize;
      while (psize > 0 || (qsize > 0 && q != NIL)) {
        let e: u32;
        if (psize == 0) { e = q; q = nextOf(q); qsize--; }
        else if (qsize == 0 || q == NIL) { e = p; p = nextOf(p); psize--; }
        else if (tOf(p) <= tOf(q)) { e = p; p = nextOf(p); psize--; }
        else { e = q; q = nextOf(q); qsize--; }
        if (tl != NIL) setNext(tl, e); else list = e;
        tl = e;
      }
      p = q;
    }
    setNext(tl, NIL);
    if (merges <= 1) break;
    insize <<= 1;
  }
  head = list;
  let prev = NIL;
  for (let e = list; e != NIL; e = nextOf(e)) { setPrev(e, prev); prev = e; }
  tail = prev;
}

/** each cursor at the first listed credential not timed out for its class (the list must be built) */
function cursorsFromList(): void {
  for (let k = 0; k < nClasses; k++) {
    const d = classAt(k);
    let c = head;
    while (c != NIL && tOf(c) + d <= clock) c = nextOf(c);
    store<u32>(cursorAt(k), c);
  }
}

/** the list and cursors again after the table grew (slot numbers changed; order and counts did not) */
export function listRebuild(): void {
  listBuildSorted();
  cursorsFromList();
}

/** recomputes counts and cursors from the credentials (the list must be built), then runs due forgets */
export function recount(): void {
  memory.fill(aCount, 0, <usize>nAreas << 2);
  cursorsFromList();
  const slots = nBuckets << 1;
  for (let rec: u32 = 0; rec < slots; rec++) {
    const mw = load<u64>(recPtr(rec), 8);
    const loc = mwLoc(mw);
    if (mw != 0 && loc != AREA_NONE) countMove(loc, <i64>mwTime(mw), 1);
  }
  if (listOn) forgetDue();
}

