// SPEC 4-7 and 12: deciding badges, passages and offline uploads, and the
// operator actions. Each op reads the credential key from the "current key"
// (set by batch.ts from the input slot), looks its table slot up, and only
// stores the credential when it changes state (a deny stores nothing).
// `rec` below is a table slot number (table.ts), not a record number.
//
// Violations are written as u32 words: code | mode << 8 | area << 16
// (code = index in VIOLATION_CODES, mode 1 soft / 2 hard, area 0xFFFF for
// reuse), in SPEC 12/13.2 order: reuse, exit_not_entered, last_supervisor,
// reentry, sequence, occupancy, no_supervisor; exited areas innermost
// first, entered areas outermost first. A lockdown deny (SPEC 13.1) is the
// single word `lockdown`. Beside each word, at the same index of the fact
// region (batch.ts), a u32 fact the host cannot derive from the state it
// sees: occupancy's count, last_supervisor's others; 0 for the rest.
import {
  recAppend, NIL, AREA_NONE, READER_NONE, FREEPASS, EXEMPT, PENDING, OVERRIDE, SUPERVISOR, RW_EMPTY,
  mwLoc, mwTime, rwReader, rwTime, rwMake, kindBits,
} from './records';
import { findInt, findBytes, tableInsert, tableFull, tableGrow, tableGen, slotPtr as recPtr, nBuckets, setSlotRec } from './table';
import { arenaPut } from './arena';
import {
  nAreas, nReaders, aEntry, aExit, aStrict, aActive, aMax, rLockout, rHard, rExitAt, rExitLen, rEntryAt, rEntryLen,
  moves, forgetMs, timeoutOf, countOf, readerTo, readerFrom, readerPassage, isInside,
  nLocked, lockedOuter, setLocked, supOf, supervOf, anySuperv,
} from './site';
import { clock, moveRec, resetRec, setRw, pendingOf, pTo, pDeadline, settle, countSup } from './occupancy';

export const C_REUSE: u32 = 0;
export const C_EXIT: u32 = 1;
export const C_REENTRY: u32 = 2;
export const C_SEQUENCE: u32 = 3;
export const C_OCCUPANCY: u32 = 4;
export const C_LAST_SUP: u32 = 5;
export const C_NO_SUP: u32 = 6;
export const C_LOCKDOWN: u32 = 7;
export const M_SOFT: u32 = 1;
export const M_HARD: u32 = 2;
// reasons: index in src/engine/types.ts REASONS
export const R_OK: u32 = 0;
export const R_SOFT: u32 = 1;
export const R_FORGIVEN: u32 = 2;
export const R_EXEMPT: u32 = 3;
export const R_UNKNOWN_READER: u32 = 4;
export const R_CODE0: u32 = 5; // + violation code

// --- the current key -----------------------------------------------------
export let kKind: u32 = 0;
export let kInt: u64 = 0;
export let kPtr: usize = 0;
export let kLen: u32 = 0;
export let kHash: u32 = 0;
/**
 * The key's slot when batch.ts already found it, else NIL (then keyFind
 * looks it up). Valid while the table has not grown since (kHintGen:
 * credentials are never deleted, and move only when the table grows); a
 * NIL hint is not trusted, since an earlier op of the batch may have created it.
 */
let kHint: u32 = NIL;
let kHintGen: u32 = 0;

export function setKey(kind: u32, v: u64, p: usize, len: u32, h: u32): void {
  kKind = kind; kInt = v; kPtr = p; kLen = len; kHash = h; kHint = NIL;
}

/** the current key's record as found before the batch's decisions (see kHint) */
export function setKeyHint(rec: u32, gen: u32): void { kHint = rec; kHintGen = gen; }

/** the current key's slot, its state brought to the clock (occupancy.ts settle), or NIL */
export function keyFind(): u32 {
  let rec = kHint;
  if (rec == NIL || kHintGen != tableGen) rec = kKind == 0 ? findInt(kHash, kInt) : findBytes(kHash, kKind, kPtr, kLen);
  if (rec != NIL) settle(rec);
  return rec;
}

function keyCreate(): u32 {
  if (tableFull()) tableGrow();
  const rec = tableInsert(kHash);
  const r = recPtr(rec);
  store<u64>(r, kKind == 0 ? kInt : arenaPut(kPtr, kLen));
  store<u64>(r, mwAbsent(), 8);
  store<u64>(r, RW_EMPTY, 16);
  setSlotRec(rec, recAppend(kHash));
  return rec;
}

// the word of a credential that has no record
// @ts-ignore: decorator
@inline function mwAbsent(): u64 { return kindBits(kKind) | (<u64>AREA_NONE << 44); }

// --- checks (SPEC 4 steps 2, 4-6) ----------------------------------------

/** code of the first hard violation written by the last check(), or -1 */
export let firstHard: i32 = -1;
/** where the current op's violation facts go (batch.ts sets it beside vOut) */
let factOut: usize = 0;
export function setFactOut(p: usize): void { factOut = p; }

// @ts-ignore: decorator
@inline function put(out: usize, n: i32, code: u32, mode: u32, area: u32, fact: u32): i32 {
  store<u32>(out + (<usize>n << 2), code | (mode << 8) | (area << 16));
  store<u32>(factOut + (<usize>n << 2), fact);
  if (mode == M_HARD && firstHard < 0) firstHard = <i32>code;
  return n + 1;
}

/** is a credential at loc with lastMoveAt lm counted in area x at the clock (SPEC 8: occupancy's rule) */
// @ts-ignore: decorator
@inline function countedIn(loc: u32, lm: i64, x: u32): bool {
  const to = timeoutOf(x);
  return loc != AREA_NONE && (to == 0 || lm + to > clock) && isInside(loc, x);
}

/** the lockdown deny of a move through r (SPEC 13.1), written at out: 1, or 0 when no lockdown applies */
// @ts-ignore: decorator
@inline function lockdownCheck(r: u32, out: usize): i32 {
  if (nLocked == 0 || load<u32>(rEntryLen + (<usize>r << 2)) == 0) return 0;
  const l = lockedOuter(readerTo(r));
  if (l < 0) return 0;
  firstHard = -1;
  return put(out, 0, C_LOCKDOWN, M_HARD, <u32>l, 0);
}

/** c's location as area x's checks see it at time t (unknown when forgotten or timed out there) */
// @ts-ignore: decorator
@inline function knownFor(x: u32, t: i64, lm: i64): bool {
  const to = timeoutOf(x);
  return to == 0 || t - lm < to;
}

/** every violation of a move through reader r at time t by a credential in state (mw, rw); returns how many */
function check(mw: u64, rw: u64, r: u32, t: i64, out: usize): i32 {
  let n = 0;
  firstHard = -1;
  const loc = mwLoc(mw);
  const lm = <i64>mwTime(mw);
  const lock = load<i64>(rLockout + (<usize>r << 3));
  if (lock > 0 && rwReader(rw) == r && t - <i64>rwTime(rw) < lock) {
    n = put(out, n, C_REUSE, load<u8>(rHard + <usize>r) != 0 ? M_HARD : M_SOFT, 0xFFFF, 0);
  }
  const known = loc != AREA_NONE && !(forgetMs > 0 && t - lm >= forgetMs);
  const xs = moves + (<usize>load<u32>(rExitAt + (<usize>r << 2)) << 2);
  const xl = load<u32>(rExitLen + (<usize>r << 2));
  for (let i: u32 = 0; i < xl; i++) {
    const x = load<u32>(xs + (<usize>i << 2));
    const m = <u32>load<u8>(aExit + <usize>x);
    if (m == 0 || load<u8>(aActive + <usize>x) == 0) continue;
    if (known && knownFor(x, t, lm) && !isInside(loc, x)) n = put(out, n, C_EXIT, m, x, 0);
  }
  const sup = (rw & SUPERVISOR) != 0;
  if (sup && anySuperv) {
    // last_supervisor: c is the only supervisor X counts, and X counts someone else
    for (let i: u32 = 0; i < xl; i++) {
      const x = load<u32>(xs + (<usize>i << 2));
      const m = supervOf(x);
      if (m == 0 || load<u8>(aActive + <usize>x) == 0) continue;
      const others = countOf(x) - supOf(x);
      if (supOf(x) == 1 && others > 0 && countedIn(loc, lm, x)) n = put(out, n, C_LAST_SUP, m, x, <u32>others);
    }
  }
  const es = moves + (<usize>load<u32>(rEntryAt + (<usize>r << 2)) << 2);
  const el = load<u32>(rEntryLen + (<usize>r << 2));
  if (el == 0) return n;
  for (let i: u32 = 0; i < el; i++) {
    const y = load<u32>(es + (<usize>i << 2));
    const m = <u32>load<u8>(aEntry + <usize>y);
    if (m == 0 || load<u8>(aActive + <usize>y) == 0) continue;
    if (known && knownFor(y, t, lm) && isInside(loc, y)) n = put(out, n, C_REENTRY, m, y, 0);
  }
  const from = readerFrom(r);
  for (let i: u32 = 0; i < el; i++) {
    const y = load<u32>(es + (<usize>i << 2));
    const m = <u32>load<u8>(aEntry + <usize>y);
    if (m == 0 || load<u8>(aActive + <usize>y) == 0 || load<u8>(aStrict + <usize>y) == 0) continue;
    if (known && knownFor(y, t, lm) && loc != from) n = put(out, n, C_SEQUENCE, m, y, 0);
  }
  for (let i: u32 = 0; i < el; i++) {
    const y = load<u32>(es + (<usize>i << 2));
    const m = <u32>load<u8>(aEntry + <usize>y);
    if (m == 0 || load<u8>(aActive + <usize>y) == 0) continue;
    const max = load<i64>(aMax + (<usize>y << 3));
    const count = countOf(y);
    if (max < 0 || <i64>count < max) continue;
    // counted in y at the clock: a soft re-entry raises no occupancy violation
    if (!countedIn(loc, lm, y)) n = put(out, n, C_OCCUPANCY, m, y, <u32>count);
  }
  if (!sup && anySuperv) {
    for (let i: u32 = 0; i < el; i++) {
      const y = load<u32>(es + (<usize>i << 2));
      const m = supervOf(y);
      if (m == 0 || load<u8>(aActive + <usize>y) == 0) continue;
      if (supOf(y) == 0) n = put(out, n, C_NO_SUP, m, y, 0);
    }
  }
  return n;
}

// --- ops -----------------------------------------------------------------
// Each writes its 16-byte result slot (batch.ts) and returns the number of
// violation words it wrote at vOut.

// @ts-ignore: decorator
@inline function result(o: usize, ok: u32, reason: u32, pending: u32, arg: i32): void {
  store<u8>(o, <u8>ok);
  store<u8>(o, <u8>reason, 1);
  store<u8>(o, <u8>pending, 2);
  store<i32>(o, arg, 4);
}

/**
 * The state a badge decision saw (SPEC 13.3 `seen`), into its output slot:
 *   +16 u64 move word, +24 u64 reader word (records.ts; the pending bit only
 *   when the move is still in time), +32 f64 pending deadline, +40 u32 pending to.
 */
// @ts-ignore: decorator
@inline function seenInto(o: usize, rec: u32, mw: u64, rw: u64): void {
  store<u64>(o, mw, 16);
  if ((rw & PENDING) != 0) {
    if (pendingOf(rec, rw)) { store<f64>(o, <f64>pDeadline, 32); store<u32>(o, pTo, 40); }
    else rw &= ~PENDING;
  }
  store<u64>(o, rw & ~OVERRIDE, 24);
}

export function badge(r: i32, o: usize, vOut: usize): i32 {
  let rec = keyFind();
  let mw: u64, rw: u64;
  if (rec == NIL) { mw = mwAbsent(); rw = RW_EMPTY; }
  else { const p = recPtr(rec); mw = load<u64>(p, 8); rw = load<u64>(p, 16); }
  seenInto(o, rec, mw, rw);
  if (r < 0 || r >= nReaders) { result(o, 0, R_UNKNOWN_READER, 0, -1); return 0; }
  const ur = <u32>r;
  let reason: u32;
  let n = 0;
  let usePass = false;
  if ((mw & EXEMPT) != 0) reason = R_EXEMPT;
  else {
    n = lockdownCheck(ur, vOut);
    if (n > 0) { result(o, 0, R_CODE0 + C_LOCKDOWN, 0, -1); return n; }
    n = check(mw, rw, ur, clock, vOut);
    if (firstHard >= 0) {
      if ((mw & FREEPASS) == 0) { result(o, 0, R_CODE0 + <u32>firstHard, 0, -1); return n; }
      reason = R_FORGIVEN;
      usePass = true;
    } else reason = n > 0 ? R_SOFT : R_OK;
  }
  // grant
  if (rec == NIL) rec = keyCreate();
  const p = recPtr(rec);
  if (usePass) store<u64>(p, load<u64>(p, 8) & ~FREEPASS, 8);
  const to = readerTo(ur);
  if (readerPassage(ur) > 0) {
    setRw(rec, rwMake(ur, <u64>clock) | PENDING);
    result(o, 1, reason, 1, <i32>to);
  } else {
    setRw(rec, rwMake(ur, <u64>clock));
    moveRec(rec, to, clock);
    result(o, 1, reason, 0, <i32>to);
  }
  return n;
}

export function passage(r: i32, o: usize): void {
  if (r < 0 || r >= nReaders) { result(o, 0, 0, 0, 0); return; }
  const rec = keyFind();
  if (rec == NIL) { result(o, 0, 0, 0, 0); return; }
  const rw = load<u64>(recPtr(rec), 16);
  if (rwReader(rw) != <u32>r || !pendingOf(rec, rw)) { result(o, 0, 0, 0, 0); return; }
  moveRec(rec, pTo, clock);
  result(o, 1, 0, 0, 0);
}

export function offline(r: i32, ts: i64, granted: bool, o: usize, vOut: usize): i32 {
  let rec = keyFind();
  let mw: u64, rw: u64;
  if (rec == NIL) { mw = mwAbsent(); rw = RW_EMPTY; }
  else { const p = recPtr(rec); mw = load<u64>(p, 8); rw = load<u64>(p, 16); }
  seenInto(o, rec, mw, rw); // what a late violation's facts refer to
  if (r < 0 || r >= nReaders || !granted) { result(o, 0, 0, 0, 0); return 0; }
  const ur = <u32>r;
  if (!(ts > <i64>mwTime(mw))) { result(o, 0, 0, 0, 0); return 0; }
  let n = 0;
  if ((mw & EXEMPT) == 0) {
    n = lockdownCheck(ur, vOut); // SPEC 13.1: a lockdown at arrival would have denied it, and nothing else is judged
    if (n == 0) n = check(mw, rw, ur, ts, vOut);
  }
  if (rec == NIL) rec = keyCreate();
  moveRec(rec, readerTo(ur), ts);
  const p = recPtr(rec);
  const rw2 = load<u64>(p, 16);
  if (ts >= <i64>rwTime(rw2)) store<u64>(p, rwMake(ur, <u64>ts) | (rw2 & SUPERVISOR), 16); // no pending left after moveRec
  settle(rec); // an upload older than forgetAfter is forgotten at once (at its own instant)
  result(o, 1, 0, 0, 0);
  return n;
}

export function forgive(o: usize): void {
  let rec = keyFind();
  if (rec != NIL && (load<u64>(recPtr(rec), 8) & FREEPASS) != 0) { result(o, 0, 0, 0, 0); return; }
  if (rec == NIL) rec = keyCreate();
  const p = recPtr(rec);
  store<u64>(p, load<u64>(p, 8) | FREEPASS, 8);
  result(o, 0, 0, 0, 1);
}

export function reset(o: usize): void {
  let rec = keyFind();
  if (rec == NIL) rec = keyCreate();
  resetRec(rec, clock);
  result(o, 0, 0, 0, 1);
}

export function exempt(on: bool, o: usize): void {
  let rec = keyFind();
  const cur = rec != NIL && (load<u64>(recPtr(rec), 8) & EXEMPT) != 0;
  if (cur == on) { result(o, 0, 0, 0, 0); return; }
  if (rec == NIL) rec = keyCreate();
  const p = recPtr(rec);
  const mw = load<u64>(p, 8);
  store<u64>(p, on ? mw | EXEMPT : mw & ~EXEMPT, 8);
  result(o, 0, 0, 0, 1);
}

/** supervisor(c, on) (SPEC 13.2): a standing flag; a present credential moves into or out of the sup counts */
export function supervisor(on: bool, o: usize): void {
  let rec = keyFind();
  const cur = rec != NIL && (load<u64>(recPtr(rec), 16) & SUPERVISOR) != 0;
  if (cur == on) { result(o, 0, 0, 0, 0); return; }
  if (rec == NIL) rec = keyCreate();
  const p = recPtr(rec);
  const rw = load<u64>(p, 16);
  store<u64>(p, on ? rw | SUPERVISOR : rw & ~SUPERVISOR, 16);
  const mw = load<u64>(p, 8);
  const loc = mwLoc(mw);
  if (loc != AREA_NONE) countSup(loc, <i64>mwTime(mw), on ? 1 : -1);
  result(o, 0, 0, 0, 1);
}

/** lockdown(area, on) (SPEC 13.1); `outside` is refused by the host and changes nothing here */
export function lockdown(area: i32, on: bool, o: usize): void {
  result(o, 0, 0, 0, setLocked(area, on));
}

export function setLocation(area: i32, o: usize): void {
  if (area < 0 || area >= nAreas) { result(o, 0, 0, 0, 0); return; }
  let rec = keyFind();
  if (rec == NIL) rec = keyCreate();
  moveRec(rec, <u32>area, clock);
  result(o, 0, 0, 0, 1);
}

export function resetArea(area: i32, o: usize): void {
  let changed = 0;
  if (area >= 0 && area < nAreas) {
    const x = <u32>area;
    const slots = nBuckets << 1;
    for (let rec: u32 = 0; rec < slots; rec++) {
      if (load<u64>(recPtr(rec), 8) == 0) continue;
      settle(rec);
      const mw = load<u64>(recPtr(rec), 8);
      const loc = mwLoc(mw);
      if (mw != 0 && loc != AREA_NONE && (x == 0 || isInside(loc, x))) { resetRec(rec, clock); changed++; }
    }
  }
  result(o, 0, 0, 0, changed);
}

/**
 * The current key's state at the clock into `out` (f64 × 9):
 * stored, location, lastMoveAt, lastReader, lastReaderAt, flags (1 freePass, 2 exempt, 4 supervisor),
 * pending reader (-1 none), pending to, pending deadline.
 */
export function stateInto(out: usize): void {
  const rec = keyFind();
  if (rec == NIL) {
    store<f64>(out, 0); store<f64>(out, -1, 8); store<f64>(out, 0, 16); store<f64>(out, -1, 24);
    store<f64>(out, 0, 32); store<f64>(out, 0, 40); store<f64>(out, -1, 48); store<f64>(out, -1, 56); store<f64>(out, 0, 64);
    return;
  }
  const p = recPtr(rec);
  const mw = load<u64>(p, 8), rw = load<u64>(p, 16);
  const loc = mwLoc(mw), lr = rwReader(rw);
  store<f64>(out, 1);
  store<f64>(out, loc == AREA_NONE ? -1 : <f64>loc, 8);
  store<f64>(out, <f64>mwTime(mw), 16);
  store<f64>(out, lr == READER_NONE ? -1 : <f64>lr, 24);
  store<f64>(out, <f64>rwTime(rw), 32);
  store<f64>(out, <f64>(((mw & FREEPASS) != 0 ? 1 : 0) | ((mw & EXEMPT) != 0 ? 2 : 0) | ((rw & SUPERVISOR) != 0 ? 4 : 0)), 40);
  if (pendingOf(rec, rw)) {
    store<f64>(out, <f64>lr, 48); store<f64>(out, <f64>pTo, 56); store<f64>(out, <f64>pDeadline, 64);
  } else {
    store<f64>(out, -1, 48); store<f64>(out, -1, 56); store<f64>(out, 0, 64);
  }
}
