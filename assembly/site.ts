// The site's dense tables (src/config/types.ts CompiledSite), copied in by
// the host. A site is staged with siteBegin (which hands the host a
// descriptor of where to write each array), finished with siteStage, and
// made current with siteInstall (first load, or reconfigure).
//
// descriptor (u32 × DESC_FIELDS, written by siteBegin, read by the host):
//   0 parent   i32 × A     5 timeout  f64→i64 × A   10 hard     u8  × R
//   1 depth    i32 × A     6 max      f64→i64 × A   11 passage  f64→i64 × R
//   2 entry    u8  × A     7 from     i32 × R       12 exitAt   u32 × R
//   3 exit     u8  × A     8 to       i32 × R       13 exitLen  u32 × R
//   4 strict   u8  × A     9 lockout  f64→i64 × R   14 entryAt  u32 × R
//                                                   15 entryLen u32 × R
//  17 superv   u8  × A (supervision: 0 off, 1 soft, 2 hard)  16 moves i32 × L
// A = areas (0 = outside), R = readers. moves[exitAt[r] ..] lists the areas
// reader r's move exits (innermost first), moves[entryAt[r] ..] those it
// enters (outermost first), as src/config/tree.ts movePath computes them.
// The host writes times as f64 ms; siteStage converts them to i64 in place.
// Per-site state the core keeps beside them (allocated by siteInstall):
//   active u8 × A (schedule flags, 1 = active), count i32 × A (occupancy),
//   sup i32 × A (supervisors among count), locked u8 × A (lockdown, SPEC 13.1),
//   expire i64 × A: how long after lastMoveAt the area stops counting a
//     credential: the smaller of its presenceTimeout and forgetAfter (0 =
//     never; forgetAfter resets the credential, so it leaves every area),
//   cls i32 × A: the area's expiry class (index of its expire value among
//     the site's distinct non-zero ones, -1 none; calendar.ts).
import { alloc } from './mem';

export const DESC_FIELDS: i32 = 18;

// current site
export let nAreas: i32 = 0;
export let nReaders: i32 = 0;
export let aParent: usize = 0;
export let aDepth: usize = 0;
export let aEntry: usize = 0;
export let aExit: usize = 0;
export let aStrict: usize = 0;
export let aTimeout: usize = 0;
export let aMax: usize = 0;
export let aActive: usize = 0;
export let aCount: usize = 0;
export let aSup: usize = 0;
export let aSuperv: usize = 0;
export let aLocked: usize = 0;
/** how many areas are locked: 0 keeps the lockdown test off the decision path */
export let nLocked: i32 = 0;
/** does any area have supervision: false keeps the SPEC 13.2 loops off the decision path */
export let anySuperv: bool = false;
export let aClass: usize = 0;
export let aExpire: usize = 0;
export let rFrom: usize = 0;
export let rTo: usize = 0;
export let rLockout: usize = 0;
export let rHard: usize = 0;
export let rPassage: usize = 0;
export let rExitAt: usize = 0;
export let rExitLen: usize = 0;
export let rEntryAt: usize = 0;
export let rEntryLen: usize = 0;
export let moves: usize = 0;
export let forgetMs: i64 = 0;
/** expiry classes: distinct non-zero expire values, i64 × nClasses */
export let nClasses: i32 = 0;
export let classMs: usize = 0;
/** distinct non-zero presenceTimeouts (what the layout-1 snapshot header recorded as classes) */
export let nPresenceClasses: i32 = 0;
/** most violations one decision can raise */
export let maxViolPerOp: i32 = 1;

// staged site
let sDesc: usize = 0;
let sA: i32 = 0;
let sR: i32 = 0;
let sL: i32 = 0;
let sForget: i64 = 0;

// @ts-ignore: decorator
@inline function field(i: i32): usize { return <usize>load<u32>(sDesc + (<usize>i << 2)); }

export function siteBegin(a: i32, r: i32, l: i32): usize {
  sA = a; sR = r; sL = l;
  sDesc = alloc(<usize>DESC_FIELDS * 4);
  const A = <usize>a, R = <usize>r;
  store<u32>(sDesc, <u32>alloc(A * 4), 0);
  store<u32>(sDesc, <u32>alloc(A * 4), 4);
  store<u32>(sDesc, <u32>alloc(A), 8);
  store<u32>(sDesc, <u32>alloc(A), 12);
  store<u32>(sDesc, <u32>alloc(A), 16);
  store<u32>(sDesc, <u32>alloc(A * 8), 20);
  store<u32>(sDesc, <u32>alloc(A * 8), 24);
  store<u32>(sDesc, <u32>alloc(R * 4), 28);
  store<u32>(sDesc, <u32>alloc(R * 4), 32);
  store<u32>(sDesc, <u32>alloc(R * 8), 36);
  store<u32>(sDesc, <u32>alloc(R), 40);
  store<u32>(sDesc, <u32>alloc(R * 8), 44);
  store<u32>(sDesc, <u32>alloc(R * 4), 48);
  store<u32>(sDesc, <u32>alloc(R * 4), 52);
  store<u32>(sDesc, <u32>alloc(R * 4), 56);
  store<u32>(sDesc, <u32>alloc(R * 4), 60);
  store<u32>(sDesc, <u32>alloc(<usize>l * 4 + 4), 64);
  store<u32>(sDesc, <u32>alloc(A), 68);
  return sDesc;
}

function f64ToI64(p: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const q = p + (<usize>i << 3);
    store<i64>(q, <i64>load<f64>(q));
  }
}

/** finishes the staged site: converts its time tables to i64 */
export function siteStage(forgetAfterMs: f64): void {
  f64ToI64(field(5), sA);
  f64ToI64(field(6), sA);
  f64ToI64(field(9), sR);
  f64ToI64(field(11), sR);
  sForget = <i64>forgetAfterMs;
}

/** makes the staged site current; schedule flags start active, counts zero */
export function siteInstall(): void {
  nAreas = sA; nReaders = sR;
  aParent = field(0); aDepth = field(1); aEntry = field(2); aExit = field(3); aStrict = field(4);
  aTimeout = field(5); aMax = field(6);
  rFrom = field(7); rTo = field(8); rLockout = field(9); rHard = field(10); rPassage = field(11);
  rExitAt = field(12); rExitLen = field(13); rEntryAt = field(14); rEntryLen = field(15); moves = field(16);
  aSuperv = field(17);
  forgetMs = sForget;
  const A = <usize>sA;
  aActive = alloc(A);
  memory.fill(aActive, 1, A);
  aCount = alloc(A * 4);
  aSup = alloc(A * 4);
  aLocked = alloc(A);
  nLocked = 0;
  anySuperv = false;
  for (let a = 0; a < sA; a++) if (load<u8>(aSuperv + <usize>a) != 0) anySuperv = true;
  aClass = alloc(A * 4);
  aExpire = alloc(A * 8);
  classMs = alloc(A * 8);
  nClasses = 0;
  nPresenceClasses = 0;
  for (let a = 0; a < sA; a++) {
    const to = load<i64>(aTimeout + (<usize>a << 3));
    if (to > 0) {
      let seen = false;
      for (let b = 0; b < a; b++) if (load<i64>(aTimeout + (<usize>b << 3)) == to) { seen = true; break; }
      if (!seen) nPresenceClasses++;
    }
    let t = to;
    if (sForget > 0 && (t == 0 || sForget < t)) t = sForget;
    store<i64>(aExpire + (<usize>a << 3), t);
    let c: i32 = -1;
    if (t > 0) {
      for (let k = 0; k < nClasses; k++) if (load<i64>(classMs + (<usize>k << 3)) == t) { c = k; break; }
      if (c < 0) { c = nClasses++; store<i64>(classMs + (<usize>c << 3), t); }
    }
    store<i32>(aClass + (<usize>a << 2), c);
  }
  let mv: i32 = 1;
  for (let r = 0; r < sR; r++) {
    // reuse, 2 per exited area (exit_not_entered, last_supervisor), 4 per entered one
    const n = 1 + 2 * <i32>load<u32>(rExitLen + (<usize>r << 2)) + 4 * <i32>load<u32>(rEntryLen + (<usize>r << 2));
    if (n > mv) mv = n;
  }
  maxViolPerOp = mv;
}

// --- accessors (inner loops; indexes checked once at the boundary) ---------

// @ts-ignore: decorator
@inline export function parentOf(a: u32): i32 { return load<i32>(aParent + (<usize>a << 2)); }
// @ts-ignore: decorator
@inline export function depthOf(a: u32): i32 { return load<i32>(aDepth + (<usize>a << 2)); }
// @ts-ignore: decorator
@inline export function timeoutOf(a: u32): i64 { return load<i64>(aTimeout + (<usize>a << 3)); }
// @ts-ignore: decorator
@inline export function expireOf(a: u32): i64 { return load<i64>(aExpire + (<usize>a << 3)); }
// @ts-ignore: decorator
@inline export function classOf(a: u32): i32 { return load<i32>(aClass + (<usize>a << 2)); }
// @ts-ignore: decorator
@inline export function classDur(k: i32): i64 { return load<i64>(classMs + (<usize>k << 3)); }
// @ts-ignore: decorator
@inline export function countOf(a: u32): i32 { return load<i32>(aCount + (<usize>a << 2)); }
// @ts-ignore: decorator
@inline export function addCount(a: u32, d: i32): void { const p = aCount + (<usize>a << 2); store<i32>(p, load<i32>(p) + d); }
// @ts-ignore: decorator
@inline export function supOf(a: u32): i32 { return load<i32>(aSup + (<usize>a << 2)); }
// @ts-ignore: decorator
@inline export function addSup(a: u32, d: i32): void { const p = aSup + (<usize>a << 2); store<i32>(p, load<i32>(p) + d); }
// @ts-ignore: decorator
@inline export function supervOf(a: u32): u32 { return <u32>load<u8>(aSuperv + <usize>a); }
// @ts-ignore: decorator
@inline export function readerTo(r: u32): u32 { return load<u32>(rTo + (<usize>r << 2)); }
// @ts-ignore: decorator
@inline export function readerFrom(r: u32): u32 { return load<u32>(rFrom + (<usize>r << 2)); }
// @ts-ignore: decorator
@inline export function readerPassage(r: u32): i64 { return load<i64>(rPassage + (<usize>r << 3)); }

/** is area `loc` inside area `x` (or equal to it) */
export function isInside(loc: u32, x: u32): bool {
  let d = depthOf(loc);
  const dx = depthOf(x);
  while (d > dx) { loc = <u32>parentOf(loc); d--; }
  return loc == x;
}

/** the outermost locked area containing `to` (itself included), or -1 */
export function lockedOuter(to: u32): i32 {
  let out: i32 = -1;
  let a = <i32>to;
  while (a > 0) {
    if (load<u8>(aLocked + <usize>a) != 0) out = a;
    a = parentOf(<u32>a);
  }
  return out;
}

/** lockdown(area, on); returns 1 when the flag changed. `outside` (0) is never locked. */
export function setLocked(a: i32, on: bool): i32 {
  if (a <= 0 || a >= nAreas) return 0;
  const p = aLocked + <usize>a;
  if ((load<u8>(p) != 0) == on) return 0;
  store<u8>(p, on ? 1 : 0);
  nLocked += on ? 1 : -1;
  return 1;
}

/** recounts nLocked after the flags were copied in (reconfigure, restore) */
export function lockedRecount(): void {
  nLocked = 0;
  for (let a = 1; a < nAreas; a++) if (load<u8>(aLocked + <usize>a) != 0) nLocked++;
}

export function setActive(a: i32, on: bool): void {
  if (a >= 0 && a < nAreas) store<u8>(aActive + <usize>a, on ? 1 : 0);
}
