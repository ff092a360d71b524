// Who is inside an area (the muster list): a resumable scan of the records
// in record order (creation order; records are never deleted or moved, so a
// record number stays a valid resume point while badges go on).
//
// A record is listed for area X when X counts it (occupancy.ts countMove):
// its location is X or inside X, and X has no expiry or lastMoveAt +
// expire(X) > clock (expire covers forgetAfter too: a forgotten record whose
// state is not settled yet is left out, as its count already is).
//
// scanInside(area, from, max, out) visits records from .. recCount-1 and
// stops after `max` listed ones. `out` is the host's scratch region of at
// least 16 + max × 32 bytes:
//
//   +0   u32  rows written (k <= max)
//   +4   u32  record to resume from (recCount when the scan reached the end)
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
import { recCount, posOf, mwKind, mwLoc, mwTime, rwReader, AREA_NONE, READER_NONE } from './records';
import { slotPtr } from './table';
import { arenaAt } from './arena';
import { nAreas, expireOf, isInside } from './site';
import { clock } from './occupancy';

export const SCAN_ROW: usize = 32;
/** records whose buckets are touched ahead of being read (the batch pass idea, batch.ts) */
const AHEAD: u32 = 256;

export function scanInside(area: i32, from: u32, max: u32, out: usize): void {
  let k: u32 = 0;
  let rec = from;
  if (area >= 0 && area < nAreas) {
    const x = <u32>area;
    const to = expireOf(x);
    let touched = rec; // records before this one have had their bucket touched
    for (; rec < recCount && k < max; rec++) {
      if (rec == touched) {
        // records are in creation order, their buckets at random: touch the
        // next AHEAD buckets with independent loads so their misses overlap
        const end = recCount - rec > AHEAD ? rec + AHEAD : recCount;
        let acc: u32 = 0;
        for (let i = rec; i < end; i++) acc += load<u32>(slotPtr(posOf(i)), 8);
        store<u32>(out, acc, 12); // stored so the loads stay (overwritten below)
        touched = end;
      }
      const p = slotPtr(posOf(rec));
      const mw = load<u64>(p, 8);
      const loc = mwLoc(mw);
      if (loc == AREA_NONE || !isInside(loc, x)) continue;
      const t = <i64>mwTime(mw);
      if (to != 0 && t + to <= clock) continue;
      const row = out + 16 + <usize>k * SCAN_ROW;
      const kind = mwKind(mw);
      const reader = rwReader(load<u64>(p, 16));
      store<u32>(row, rec);
      store<u16>(row, <u16>loc, 4);
      store<u8>(row, <u8>kind, 6);
      store<u8>(row, 0, 7);
      store<u64>(row, kind == 0 ? load<u64>(p) : <u64>arenaAt(load<u64>(p)), 8);
      store<f64>(row, <f64>t, 16);
      store<i32>(row, reader == READER_NONE ? -1 : <i32>reader, 24);
      store<u32>(row, 0, 28);
      k++;
    }
  } else {
    rec = recCount;
  }
  store<u32>(out, k);
  store<u32>(out, rec, 4);
  store<u32>(out, recCount, 8);
  store<u32>(out, 0, 12);
}
