// Exact occupancy (SPEC 8, 12 "Occupancy") and the instants at which state
// changes by itself as the clock advances (presenceTimeout, forgetAfter).
//
// count[a] (site.ts aCount) = credentials whose location is inside area a
// and whose lastMoveAt + expire(a) > clock (expire: the smaller of a's
// presenceTimeout and forgetAfter, 0 = never). Every location write goes
// through moveRec/resetRec, which move the credential's contribution
// (countMove) between its old and new areas and its calendar entries
// (calendar.ts), which take it off the counts at its instants. So counts
// are exact at every instant, advancing the clock touches no credential,
// and a read is one load.
// sup[a] (site.ts aSup) counts the supervisors among them (SPEC 13.2) by the
// same rule: the supervisor bit rides along in every countMove and calendar
// entry (supervisors have entries of their own), and toggling the bit moves
// only that credential's sup share (countSup).
//
// forgetAfter is applied to a credential's own state lazily: settle(slot),
// called before anything reads a credential, turns a known location whose
// lastMoveAt + forgetAfter <= clock into the reset that happened at that
// instant (SPEC 12 "Resets"); its counts already fell then, by the calendar.
// presenceTimeout needs nothing of the kind: the rules judge it from
// lastMoveAt (rules.ts knownFor).
//
// Pending overrides (ovTab, 24 bytes each: key word u64, key kind u32,
// to u32, deadline i64): the few pending moves whose target/deadline no
// longer follow from their reader after a reconfigure (records.ts reader
// word bit 61). They are found by key, which stays put when the table grows.
import { alloc, release } from './mem';
import {
  AREA_NONE, PENDING, OVERRIDE, RW_EMPTY, SUPERVISOR,
  mwLoc, mwTime, mwWith, rwReader, rwTime,
} from './records';
import { slotPtr as recPtr, nBuckets } from './table';
import {
  nAreas, aCount, aSup, nClasses, forgetMs, parentOf, expireOf, addCount, addSup, readerTo, readerPassage,
} from './site';
import { calMove, calExpire, calReset } from './calendar';

export let clock: i64 = 0;

export let ovTab: usize = 0;
export let ovCount: u32 = 0;
let ovCap: u32 = 0;

export function setClock(t: i64): void { clock = t; }
export function setOvCount(n: u32): void { ovCount = n; }

/** ± one credential at `loc` with lastMoveAt t, in every area it is counted in at the clock (and in sup when a supervisor) */
export function countMove(loc: u32, t: i64, d: i32, sup: bool): void {
  let a = <i32>loc;
  while (a >= 0) {
    const e = expireOf(<u32>a);
    if (e == 0 || t + e > clock) {
      addCount(<u32>a, d);
      if (sup) addSup(<u32>a, d);
    }
    a = parentOf(<u32>a);
  }
  calMove(loc, t, d, clock, sup);
}

/** a present credential's supervisor flag turned on (d = 1) or off (-1): its sup share and calendar entries move, its count does not */
export function countSup(loc: u32, t: i64, d: i32): void {
  let a = <i32>loc;
  while (a >= 0) {
    const e = expireOf(<u32>a);
    if (e == 0 || t + e > clock) addSup(<u32>a, d);
    a = parentOf(<u32>a);
  }
  calMove(loc, t, -1, clock, d < 0);
  calMove(loc, t, 1, clock, d > 0);
}

// @ts-ignore: decorator
@inline export function isSupRw(rw: u64): bool { return (rw & SUPERVISOR) != 0; }

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
  const old = load<u64>(r, 16);
  if ((old & OVERRIDE) != 0) ovRemove(rec);
  store<u64>(r, rw | (old & SUPERVISOR), 16); // a standing flag, not part of the reader memory
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

/** takes rec out of its location's counts and calendar entries; returns its moveWord */
// @ts-ignore: decorator
@inline function leaveLocation(r: usize): u64 {
  const mw = load<u64>(r, 8);
  const old = mwLoc(mw);
  if (old != AREA_NONE) countMove(old, <i64>mwTime(mw), -1, isSupRw(load<u64>(r, 16)));
  return mw;
}

/** applies a move: location = loc, lastMoveAt = t, pending dropped */
export function moveRec(rec: u32, loc: u32, t: i64): void {
  const r = recPtr(rec);
  const mw = leaveLocation(r);
  store<u64>(r, mwWith(mw, loc, <u64>t), 8);
  const rw = load<u64>(r, 16);
  countMove(loc, t, 1, isSupRw(rw));
  if ((rw & PENDING) != 0) setRw(rec, rw & ~(PENDING | OVERRIDE));
}

/** a reset at instant `at`: location unknown, lastMoveAt = at, pending and reuse memory dropped, flags kept */
export function resetRec(rec: u32, at: i64): void {
  const r = recPtr(rec);
  const mw = leaveLocation(r);
  store<u64>(r, mwWith(mw, AREA_NONE, <u64>at), 8);
  setRw(rec, RW_EMPTY);
}

/**
 * Brings rec's own state to the clock: a known location past forgetAfter
 * becomes the reset that happened at lastMoveAt + forgetAfter (the counts
 * fell at that instant already, by the calendar).
 */
export function settle(rec: u32): void {
  if (forgetMs <= 0) return;
  const r = recPtr(rec);
  const mw = load<u64>(r, 8);
  if (mwLoc(mw) == AREA_NONE) return;
  const at = <i64>mwTime(mw) + forgetMs;
  if (at > clock) return;
  store<u64>(r, mwWith(mw, AREA_NONE, <u64>at), 8);
  setRw(rec, RW_EMPTY);
}

/** settles every credential (before a reconfigure changes forgetAfter) */
export function settleAll(): void {
  if (forgetMs <= 0) return;
  const slots = nBuckets << 1;
  for (let rec: u32 = 0; rec < slots; rec++) if (load<u64>(recPtr(rec), 8) != 0) settle(rec);
}

// --- the clock -----------------------------------------------------------

/** moves the clock forward; timeouts and forgetAfter take effect at their instants */
export function advanceTo(now: i64): void {
  if (now <= clock) return;
  clock = now;
  calExpire(clock);
}

// --- (re)building --------------------------------------------------------

/** per-site occupancy state after siteInstall: counts are zero, the calendar empty */
export function occupancyInstall(): void {
  calReset(0, 0);
}

/** recomputes counts and the calendar from the credentials */
export function recount(): void {
  memory.fill(aCount, 0, <usize>nAreas << 2);
  memory.fill(aSup, 0, <usize>nAreas << 2);
  calReset(0, 0);
  const slots = nBuckets << 1;
  for (let rec: u32 = 0; rec < slots; rec++) {
    const mw = load<u64>(recPtr(rec), 8);
    const loc = mwLoc(mw);
    if (mw != 0 && loc != AREA_NONE) countMove(loc, <i64>mwTime(mw), 1, isSupRw(load<u64>(recPtr(rec), 16)));
  }
}
