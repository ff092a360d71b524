// Swapping in a new site (EngineCore.reconfigure). areaMap[old] and
// readerMap[old] give the new index or -1. Locations in a removed area
// become unknown (lastMoveAt kept); a removed lastReader is dropped
// (lastReaderAt 0); a pending move survives when its reader and target
// survive, with its deadline unchanged (an override entry holds target and
// deadline when the new reader's `to` or passage time no longer give them).
// Schedule and lockdown flags of kept areas are kept (a removed area's
// lockdown goes with it). Counts (supervisors' included) and the expiry
// calendar are rebuilt, and a new forgetAfter takes effect at once (lazily, occupancy.ts
// settle, after the old one has been applied to everyone).
import {
  NIL, AREA_NONE, READER_NONE, PENDING, OVERRIDE, RW_EMPTY, SUPERVISOR,
  mwLoc, mwTime, mwWith, rwReader, rwTime, rwMake,
} from './records';
import { slotPtr as recPtr, nBuckets } from './table';
import { nAreas, aActive, aLocked, rTo, rPassage, siteInstall, readerTo, readerPassage, lockedRecount } from './site';
import { clock, occupancyInstall, recount, ovFind, ovRemove, ovSet, settleAll } from './occupancy';
import { violEnsure } from './batch';

export function reconfigure(areaMap: usize, readerMap: usize): void {
  const oldA = nAreas;
  const oldActive = aActive, oldLocked = aLocked, oldTo = rTo, oldPassage = rPassage;
  settleAll(); // forgets due under the old forgetAfter happened before the swap
  siteInstall();
  for (let a = 0; a < oldA; a++) {
    const m = load<i32>(areaMap + (<usize>a << 2));
    if (m >= 0 && m < nAreas) {
      store<u8>(aActive + <usize>m, load<u8>(oldActive + <usize>a));
      if (m > 0) store<u8>(aLocked + <usize>m, load<u8>(oldLocked + <usize>a));
    }
  }
  lockedRecount();
  occupancyInstall();
  violEnsure();
  const slots = nBuckets << 1;
  for (let rec: u32 = 0; rec < slots; rec++) {
    const p = recPtr(rec);
    const mw = load<u64>(p, 8);
    if (mw == 0) continue; // empty slot
    const loc = mwLoc(mw);
    if (loc != AREA_NONE) {
      const m = load<i32>(areaMap + (<usize>loc << 2));
      if (m < 0) {
        store<u64>(p, mwWith(mw, AREA_NONE, mwTime(mw)), 8);
      } else store<u64>(p, mwWith(mw, <u32>m, mwTime(mw)), 8);
    }
    const rw = load<u64>(p, 16);
    const lr = rwReader(rw);
    if (lr == READER_NONE) continue;
    const nr = load<i32>(readerMap + (<usize>lr << 2));
    const hadOv = (rw & OVERRIDE) != 0;
    // the pending move as the old site defines it
    let pendTo: i32 = -1;
    let deadline: i64 = 0;
    if ((rw & PENDING) != 0) {
      let oldTarget: u32, dl: i64;
      if (hadOv) { const e = ovFind(rec); oldTarget = load<u32>(e, 12); dl = load<i64>(e, 16); }
      else { oldTarget = load<u32>(oldTo + (<usize>lr << 2)); dl = <i64>rwTime(rw) + load<i64>(oldPassage + (<usize>lr << 3)); }
      if (clock < dl) { pendTo = load<i32>(areaMap + (<usize>oldTarget << 2)); deadline = dl; }
    }
    if (nr < 0) {
      if (hadOv) ovRemove(rec);
      store<u64>(p, RW_EMPTY | (rw & SUPERVISOR), 16);
      continue;
    }
    const unr = <u32>nr;
    let nrw = rwMake(unr, rwTime(rw)) | (rw & SUPERVISOR);
    if (pendTo >= 0) {
      nrw |= PENDING;
      const pass = readerPassage(unr);
      if (readerTo(unr) == <u32>pendTo && pass > 0 && <i64>rwTime(rw) + pass == deadline) {
        if (hadOv) ovRemove(rec);
      } else {
        ovSet(rec, <u32>pendTo, deadline, hadOv);
        nrw |= OVERRIDE;
      }
    } else if (hadOv) ovRemove(rec);
    store<u64>(p, nrw, 16);
  }
  recount();
}
