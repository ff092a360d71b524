// Who is inside an area (the muster list), in record order (creation
// order; a record number stays a valid resume point while badges go on).
//
// A record is listed for area X when X counts it (occupancy.ts countMove):
// its location is X or inside X, and X has no expiry or lastMoveAt +
// expire(X) > clock (expire covers forgetAfter too: a forgotten record whose
// state is not settled yet is left out, as its count already is).
//
// scanSlice(area, from, max, out, budget) lists the listed records numbered
// from `from` on, at most `max` of them, doing at most about `budget` units
// of work (0 = no limit; scanInside is scanSlice without a limit). `out` is
// the host's scratch region of at least 16 + max × 32 bytes:
//
//   +0   u32  rows written (k <= max)
//   +4   u32  record to resume from: the last row's + 1 when k == max, else
//             recCount (the end) or, when the listing was cut (see below),
//             the record after the last one it holds, or when the slice ran
//             out of budget (+12 = 1), where the next call goes on
//   +8   u32  recCount when the scan ran
//   +12  u32  1: the slice ran out of budget before the answer was complete;
//             the k rows are good, call again from +4 (batches may run in
//             between). 0: complete, as scanInside.
//   +16  k rows of 32 bytes:
//        +0   u32  record number
//        +4   u16  location (area index; X or an area below it)
//        +6   u8   key kind (0 integer, 1 string, 2 binary)
//        +7   u8   0
//        +8   u64  integer credential, or (string/binary) the address of the key's
//                  arena entry: a length byte, then the bytes (arena.ts); valid until
//                  the next call that may allocate
//        +16  f64  lastMoveAt (ms)
//        +24  i32  lastReader (-1 none)
//        +28  u32  0
//
// How: credentials lie in the table in hash order, so walking them in
// record order would read one random line each. Instead the table is read
// in memory order (a sequential stream), keeping the `cap` smallest record
// numbers >= from that X counts in a max-heap of (record, slot); the scan
// stops once it has met all count(X) of them (an area that counts nobody
// is not scanned at all). The heap, sorted, is the listing, kept for the
// next pages while nothing changed (scanGen: every batch, clock advance,
// reconfigure and restore changes it). A listing that overflowed the heap
// holds the `cap` first records and says where it was cut; the host's next
// call scans again from there. `cap` starts at 4096 (a page or two: a small
// heap costs little per credential) and grows x4, up to 1 M, each time a
// listing continues where the last one was cut (a whole list read at once:
// CSV, a search), so that takes a few scans, not one per 4096 rows.
//
// Sliced: the scan and the heap sort after it stop when the budget is spent
// (a bucket read is 1 unit, a heap extraction SORT_UNITS; a call with any
// budget makes some progress, so slices always end) and go on at the
// next call for the same area and `from`, the heap and the position kept
// here. Batches may run between slices; the listing stays exact for every
// record X counted throughout, because nothing moves a credential between
// buckets but a growth or a restore (table.ts tableGen) and nothing
// renumbers areas but a reconfigure (scanEpoch): any of these restarts the
// scan. So a record X counted throughout sits in one bucket the whole time
// and is met exactly once, counted, whichever slice reads it. Two things
// change with slicing: "met all count(X)" ends the scan only when nothing
// changed since it began (a record met, then gone, then another arriving
// behind the scan would fool it), and a row is written only if X still
// counts its record when the rows are written (one that left after its
// bucket was read is left out; one that came in behind the scan is not
// listed: both moved meanwhile). A call for another area or `from`
// abandons the scan under way (the host runs one at a time).
//
// An area that counts many (at least 8 × max) is listed the other way:
// its first `max` records are among the first few thousand, so walking the
// records in order (each found from its hash, records.ts; the home buckets
// of the next 256 touched first so their misses overlap) finds them after a few thousand random
// lines, far less than the whole table. A walked record costs about 30 ns
// here, a scanned one about 4: the walk expects max × recCount / count
// records, at most recCount / 8 past that threshold, so it costs at most
// about one scan; it gives up after recCount / 8 + 4096 records (an area
// filled by late records: then at most about two scans) and the scan above
// lists the rest. The walk is sliced too (WALK_UNITS a record): it checks
// each record once, in order, at the time it reaches it, so a slice ends
// with the rows it found and the next call walks on from there.
import { recCount, recHash, mwKind, mwLoc, mwTime, rwReader, AREA_NONE, READER_NONE } from './records';
import { slotPtr, bucketPtr, homeBucket, findRec, segPtr, segBuckets, nSegs, SEG_BITS, tableGen } from './table';
import { arenaAt } from './arena';
import { nAreas, expireOf, isInside, countOf } from './site';
import { clock } from './occupancy';
import { alloc, release } from './mem';

export const SCAN_ROW: usize = 32;
/** records whose buckets are touched ahead of being read in a walk (the batch pass idea, batch.ts) */
const AHEAD: u32 = 256;
const FIRST_CAP: u32 = 4096;
const MAX_CAP: u32 = 1 << 20; // 8 MiB of listing
/** budget units of a walked record and of a heap extraction (a bucket read is 1: ~7 ns at 10 M here) */
const WALK_UNITS: u64 = 4;
const SORT_UNITS: u64 = 4;

/** changes whenever the listed set may have changed */
let scanGen: u32 = 1;
export function scanStale(): void { scanGen++; }
/** changes when area numbers or every credential's place may have changed (reconfigure, restore): a scan under way restarts */
let scanEpoch: u32 = 0;
export function scanLayout(): void { scanEpoch++; scanGen++; }
/** a fresh core: no listing (its memory went with the old allocator state) */
export function scanInit(): void {
  list = 0; listRoom = 0; listCap = FIRST_CAP; listN = 0; listGen = 0; listArea = -1; listOk = false;
  bOn = false; wOn = false; scanEpoch++;
}

// the listing: u64 (record << 32 | slot), a max-heap while it is built, ascending once done
let list: usize = 0;
let listRoom: u32 = 0;
let listCap: u32 = FIRST_CAP;
let listN: u32 = 0;
let listGen: u32 = 0;
let listArea: i32 = -1;
let listFrom: u32 = 0;
/** a finished listing is in `list` (false while one is being built) */
let listOk: bool = false;
/** the listing holds every listed record >= listFrom (else it was cut after its last one) */
let listAll: bool = false;

// the scan under way (bOn): area, from, where it stands, what it started from
let bOn: bool = false;
let bArea: u32 = 0;
let bFrom: u32 = 0;
let bSeg: u32 = 0;
let bBucket: u32 = 0;
let bSeen: u32 = 0;
let bWant: u32 = 0;
let bGen: u32 = 0;
let bTable: u32 = 0;
let bEpoch: u32 = 0;
/** nothing changed since the scan began: "met all count(X)" may end it */
let bExact: bool = false;
/** 0 scanning, 1 sorting (bSortN entries still in the heap) */
let bPhase: u32 = 0;
let bSortN: u32 = 0;

// the walk under way when a slice ended inside it (wOn): area, next record, walk budget left
let wOn: bool = false;
let wArea: u32 = 0;
let wNext: u32 = 0;
let wLeft: u32 = 0;

/** budget units left in this call */
let units: u64 = 0;

// @ts-ignore: decorator
@inline function at(i: u32): usize { return list + (<usize>i << 3); }
// @ts-ignore: decorator
@inline function lastRec(): u32 { return <u32>(load<u64>(at(listN - 1)) >> 32); }

/** does area x (expiry `to`) count the credential whose move word is mw */
// @ts-ignore: decorator
@inline function counts(mw: u64, x: u32, to: i64): bool {
  const loc = mwLoc(mw);
  if (loc == AREA_NONE || !isInside(loc, x)) return false;
  return to == 0 || <i64>mwTime(mw) + to > clock;
}

function siftDown(i: u32, n: u32): void {
  const v = load<u64>(at(i));
  while (true) {
    let c: u32 = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && load<u64>(at(c + 1)) > load<u64>(at(c))) c++;
    if (load<u64>(at(c)) <= v) break;
    store<u64>(at(i), load<u64>(at(c)));
    i = c;
  }
  store<u64>(at(i), v);
}

function heapPush(v: u64): void {
  let i = listN++;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (load<u64>(at(p)) >= v) break;
    store<u64>(at(i), load<u64>(at(p)));
    i = p;
  }
  store<u64>(at(i), v);
}

/** starts the listing of area x from record `from` on (see the top) */
function begin(x: u32, from: u32): void {
  const continues = listOk && listArea == <i32>x && !listAll && listN > 0 && from == lastRec() + 1;
  listCap = continues ? (listCap >= MAX_CAP >> 2 ? MAX_CAP : listCap << 2) : FIRST_CAP;
  if (listCap > listRoom) {
    if (listRoom > 0) release(list, <usize>listRoom << 3);
    list = alloc(<usize>listCap << 3);
    listRoom = listCap;
  }
  listN = 0;
  listAll = true;
  listOk = false;
  bOn = true;
  bArea = x;
  bFrom = from;
  bSeg = 0;
  bBucket = 0;
  bSeen = 0;
  bWant = <u32>countOf(x);
  bGen = scanGen;
  bTable = tableGen;
  bEpoch = scanEpoch;
  bExact = true;
  bPhase = 0;
}

/** goes on with the listing under way within the budget; true once it is finished */
function buildStep(): bool {
  const x = bArea, from = bFrom;
  if (scanGen != bGen) bExact = false;
  if (bPhase == 0) {
    const to = expireOf(x);
    const sb = segBuckets();
    let si = bSeg, b = bBucket, seen = bSeen;
    while (si < nSegs && !(bExact && seen >= bWant)) {
      if (units == 0) { bSeg = si; bBucket = b; bSeen = seen; return false; }
      const base = segPtr(si);
      let end = sb;
      if (<u64>(sb - b) > units) end = b + <u32>units;
      units -= <u64>(end - b);
      for (; b < end; b++) {
        const bp = base + (<usize>b << 6);
        for (let j: u32 = 0; j < 2; j++) {
          const mw = load<u64>(bp + <usize>j * 24, 8);
          if (mw == 0 || !counts(mw, x, to)) continue;
          seen++;
          const rec = load<u32>(bp + 48 + (<usize>j << 2));
          if (rec < from) continue;
          const v = (<u64>rec << 32) | <u64>((((si << SEG_BITS) | b) << 1) | j);
          if (listN < listCap) heapPush(v);
          else {
            listAll = false;
            if (v < load<u64>(at(0))) { store<u64>(at(0), v); siftDown(0, listN); }
          }
        }
      }
      if (b == sb) { si++; b = 0; }
    }
    bPhase = 1;
    bSortN = listN;
  }
  // heap sort: ascending record numbers
  let n = bSortN;
  for (; n > 1; n--) {
    if (units == 0) { bSortN = n; return false; }
    units = units > SORT_UNITS ? units - SORT_UNITS : 0;
    const top = load<u64>(at(0));
    store<u64>(at(0), load<u64>(at(n - 1)));
    store<u64>(at(n - 1), top);
    siftDown(0, n - 1);
  }
  bOn = false;
  listOk = true;
  listGen = scanGen;
  listArea = <i32>x;
  listFrom = from;
  return true;
}

/** row k of `out` from the credential in slot `slot`, record `rec` */
// @ts-ignore: decorator
@inline function putRow(out: usize, k: u32, rec: u32, slot: u32): void {
  const p = slotPtr(slot);
  const mw = load<u64>(p, 8);
  const row = out + 16 + <usize>k * SCAN_ROW;
  const kind = mwKind(mw);
  const reader = rwReader(load<u64>(p, 16));
  store<u32>(row, rec);
  store<u16>(row, <u16>mwLoc(mw), 4);
  store<u8>(row, <u8>kind, 6);
  store<u8>(row, 0, 7);
  store<u64>(row, kind == 0 ? load<u64>(p) : <u64>arenaAt(load<u64>(p)), 8);
  store<f64>(row, <f64>mwTime(mw), 16);
  store<i32>(row, reader == READER_NONE ? -1 : <i32>reader, 24);
  store<u32>(row, 0, 28);
}

/**
 * The record walk (see the top): rows from `from` on until max rows, the
 * walk's own budget (walkLeft: it gives up) or the slice's (walkCut).
 * Returns rows written; sets walkEnd.
 */
let walkEnd: u32 = 0;
let walkLeft: u32 = 0;
let walkCut: bool = false;
function walk(x: u32, from: u32, max: u32, out: usize): u32 {
  const to = expireOf(x);
  let left = wOn && wArea == x && wNext == from ? wLeft : (recCount >> 3) + 4096;
  wOn = false;
  walkCut = false;
  let k: u32 = 0;
  let rec = from;
  let touched = rec;
  for (; rec < recCount && k < max && left > 0; rec++, left--) {
    if (units == 0) { walkCut = true; break; }
    units = units > WALK_UNITS ? units - WALK_UNITS : 0;
    if (rec == touched) {
      const end = recCount - rec > AHEAD ? rec + AHEAD : recCount;
      let acc: u32 = 0;
      for (let i = rec; i < end; i++) acc += load<u32>(bucketPtr(homeBucket(recHash(i))), 8);
      store<u32>(out, acc, 12); // stored so the loads stay (overwritten by the caller)
      touched = end;
    }
    const slot = findRec(recHash(rec), rec);
    if (!counts(load<u64>(slotPtr(slot), 8), x, to)) continue;
    putRow(out, k, rec, slot);
    k++;
  }
  walkEnd = rec;
  walkLeft = left;
  return k;
}

/** does the finished listing hold area x's listed records from `from` on (or up to where it was cut), in this state */
function usable(x: u32, from: u32): bool {
  if (!listOk || listGen != scanGen || listArea != <i32>x || from < listFrom) return false;
  return listAll || (listN > 0 && from <= lastRec());
}

/** is the scan under way the one for (x, from), still valid */
// @ts-ignore: decorator
@inline function building(x: u32, from: u32): bool {
  return bOn && bArea == x && bFrom == from && bTable == tableGen && bEpoch == scanEpoch;
}

export function scanSlice(area: i32, from: u32, max: u32, out: usize, budget: u32): void {
  units = budget == 0 ? u64.MAX_VALUE : <u64>budget;
  let k: u32 = 0;
  let resume = recCount;
  let more = false;
  if (area >= 0 && area < nAreas && from < recCount && max > 0 && countOf(<u32>area) > 0) {
    const x = <u32>area;
    let rest = true; // rows still to come from the listing
    if (!building(x, from) && !usable(x, from) && <u64>max * 8 <= <u64>countOf(x)) {
      k = walk(x, from, max, out);
      if (k == max) { resume = walkEnd; rest = false; } // the last row's + 1
      else if (walkEnd >= recCount) rest = false;
      else if (walkCut) {
        // out of this slice's budget: the next call walks on
        wOn = true; wArea = x; wNext = walkEnd; wLeft = walkLeft;
        resume = walkEnd; more = true; rest = false;
      } else from = walkEnd; // out of the walk's budget: the listing gives the rest
    }
    if (rest && !usable(x, from)) {
      if (!building(x, from)) begin(x, from);
      if (!buildStep()) { resume = from; more = true; rest = false; }
    }
    if (rest) {
      // first entry >= from
      let lo: u32 = 0, hi = listN;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (<u32>(load<u64>(at(mid)) >> 32) < from) lo = mid + 1; else hi = mid;
      }
      // only records x still counts: one that left since its bucket was read (a sliced scan) is left out
      const to = expireOf(x);
      for (let i = lo; i < listN && k < max; i++) {
        const v = load<u64>(at(i));
        if (!counts(load<u64>(slotPtr(<u32>v), 8), x, to)) continue;
        const rec = <u32>(v >> 32);
        putRow(out, k, rec, <u32>v);
        k++;
        if (k == max) resume = rec + 1;
      }
      if (k < max && !listAll) resume = lastRec() + 1;
    }
  }
  store<u32>(out, k);
  store<u32>(out, resume, 4);
  store<u32>(out, recCount, 8);
  store<u32>(out, more ? 1 : 0, 12);
}

export function scanInside(area: i32, from: u32, max: u32, out: usize): void { scanSlice(area, from, max, out, 0); }
