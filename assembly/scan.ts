// Who is inside an area (the muster list), in record order (creation
// order; a record number stays a valid resume point while badges go on).
//
// A record is listed for area X when X counts it (occupancy.ts countMove):
// its location is X or inside X, and X has no expiry or lastMoveAt +
// expire(X) > clock (expire covers forgetAfter too: a forgotten record whose
// state is not settled yet is left out, as its count already is).
//
// scanInside(area, from, max, out) lists the listed records numbered from
// `from` on, at most `max` of them. `out` is the host's scratch region of
// at least 16 + max × 32 bytes:
//
//   +0   u32  rows written (k <= max)
//   +4   u32  record to resume from: the last row's + 1 when k == max, else
//             recCount (the end) or, when the listing was cut (see below),
//             the record after the last one it holds
//   +8   u32  recCount when the scan ran
//   +12  u32  0
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
// listing continues where the last one was cut in the same state (a whole
// list read at once: CSV, a search), so that takes a few scans, not one per
// 4096 rows.
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
// lists the rest.
import { recCount, recHash, mwKind, mwLoc, mwTime, rwReader, AREA_NONE, READER_NONE } from './records';
import { slotPtr, bucketPtr, homeBucket, findRec, segPtr, segBuckets, nSegs, SEG_BITS } from './table';
import { arenaAt } from './arena';
import { nAreas, expireOf, isInside, countOf } from './site';
import { clock } from './occupancy';
import { alloc, release } from './mem';

export const SCAN_ROW: usize = 32;
/** records whose buckets are touched ahead of being read in a walk (the batch pass idea, batch.ts) */
const AHEAD: u32 = 256;
const FIRST_CAP: u32 = 4096;
const MAX_CAP: u32 = 1 << 20; // 8 MiB of listing

/** changes whenever the listed set may have changed */
let scanGen: u32 = 1;
export function scanStale(): void { scanGen++; }
/** a fresh core: no listing (its memory went with the old allocator state) */
export function scanInit(): void { list = 0; listRoom = 0; listCap = FIRST_CAP; listN = 0; listGen = 0; listArea = -1; }

// the cached listing: u64 (record << 32 | slot), ascending after the scan
let list: usize = 0;
let listRoom: u32 = 0;
let listCap: u32 = FIRST_CAP;
let listN: u32 = 0;
let listGen: u32 = 0;
let listArea: i32 = -1;
let listFrom: u32 = 0;
/** the listing holds every listed record >= listFrom (else it was cut after its last one) */
let listAll: bool = false;

// @ts-ignore: decorator
@inline function at(i: u32): usize { return list + (<usize>i << 3); }

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

/** builds the listing of area x from record `from` on (see the top) */
function build(x: u32, from: u32): void {
  const last = listN > 0 ? <u32>(load<u64>(at(listN - 1)) >> 32) : 0;
  const continues = listGen == scanGen && listArea == <i32>x && !listAll && listN > 0 && from == last + 1;
  listCap = continues ? (listCap >= MAX_CAP >> 2 ? MAX_CAP : listCap << 2) : FIRST_CAP;
  if (listCap > listRoom) {
    if (listRoom > 0) release(list, <usize>listRoom << 3);
    list = alloc(<usize>listCap << 3);
    listRoom = listCap;
  }
  listN = 0;
  listAll = true;
  const want = <u32>countOf(x);
  const to = expireOf(x);
  let seen: u32 = 0;
  const sb = segBuckets();
  for (let si: u32 = 0; si < nSegs && seen < want; si++) {
    const base = segPtr(si);
    for (let b: u32 = 0; b < sb; b++) {
      const bp = base + (<usize>b << 6);
      for (let j: u32 = 0; j < 2; j++) {
        const mw = load<u64>(bp + <usize>j * 24, 8);
        if (mw == 0) continue;
        const loc = mwLoc(mw);
        if (loc == AREA_NONE || !isInside(loc, x)) continue;
        if (to != 0 && <i64>mwTime(mw) + to <= clock) continue;
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
  }
  // heap sort: ascending record numbers
  for (let n = listN; n > 1; n--) {
    const top = load<u64>(at(0));
    store<u64>(at(0), load<u64>(at(n - 1)));
    store<u64>(at(n - 1), top);
    siftDown(0, n - 1);
  }
  listGen = scanGen;
  listArea = <i32>x;
  listFrom = from;
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

/** the record walk (see the top): rows from `from` on until max rows or the budget; returns rows written, sets walkEnd */
let walkEnd: u32 = 0;
function walk(x: u32, from: u32, max: u32, out: usize): u32 {
  const to = expireOf(x);
  let budget = (recCount >> 3) + 4096;
  let k: u32 = 0;
  let rec = from;
  let touched = rec;
  for (; rec < recCount && k < max && budget > 0; rec++, budget--) {
    if (rec == touched) {
      const end = recCount - rec > AHEAD ? rec + AHEAD : recCount;
      let acc: u32 = 0;
      for (let i = rec; i < end; i++) acc += load<u32>(bucketPtr(homeBucket(recHash(i))), 8);
      store<u32>(out, acc, 12); // stored so the loads stay (overwritten by the caller)
      touched = end;
    }
    const slot = findRec(recHash(rec), rec);
    const mw = load<u64>(slotPtr(slot), 8);
    const loc = mwLoc(mw);
    if (loc == AREA_NONE || !isInside(loc, x)) continue;
    if (to != 0 && <i64>mwTime(mw) + to <= clock) continue;
    putRow(out, k, rec, slot);
    k++;
  }
  walkEnd = rec;
  return k;
}

/** does the cached listing hold area x's listed records from `from` on (or up to where it was cut) */
function usable(x: u32, from: u32): bool {
  if (listGen != scanGen || listArea != <i32>x || from < listFrom) return false;
  return listAll || (listN > 0 && from <= <u32>(load<u64>(at(listN - 1)) >> 32));
}

export function scanInside(area: i32, from: u32, max: u32, out: usize): void {
  let k: u32 = 0;
  let resume = recCount;
  if (area >= 0 && area < nAreas && from < recCount && max > 0 && countOf(<u32>area) > 0) {
    const x = <u32>area;
    let rest = true; // rows still to come from the listing
    if (!usable(x, from) && <u64>max * 8 <= <u64>countOf(x)) {
      k = walk(x, from, max, out);
      if (k == max) { resume = walkEnd; rest = false; } // the last row's + 1
      else if (walkEnd >= recCount) rest = false;
      else from = walkEnd; // out of budget: the listing gives the rest
    }
    if (rest) {
      if (!usable(x, from)) build(x, from);
      // first entry >= from
      let lo: u32 = 0, hi = listN;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (<u32>(load<u64>(at(mid)) >> 32) < from) lo = mid + 1; else hi = mid;
      }
      for (let i = lo; i < listN && k < max; i++) {
        const v = load<u64>(at(i));
        const rec = <u32>(v >> 32);
        putRow(out, k, rec, <u32>v);
        k++;
        if (k == max) resume = rec + 1;
      }
      if (k < max && !listAll) resume = <u32>(load<u64>(at(listN - 1)) >> 32) + 1;
    }
  }
  store<u32>(out, k);
  store<u32>(out, resume, 4);
  store<u32>(out, recCount, 8);
  store<u32>(out, 0, 12);
}
