// The exported ABI of the anti-passback core, and nothing else: the logic
// lives in the modules beside this one (see their layout comments):
//   mem.ts region allocator · table.ts credential table (64-byte buckets) ·
//   records.ts state words, creation order ·
//   arena.ts string/binary keys · site.ts site tables · occupancy.ts counts,
//   timeouts, clock · rules.ts SPEC 4-7 · batch.ts batch I/O ·
//   remap.ts reconfigure · snapshot.ts snapshot/restore.
// The host (src/engine/wasm-core.ts) refuses a module whose ABI_VERSION
// differs from its own. Times cross the boundary as f64 milliseconds (exact
// below 2^53; the core keeps 44 bits).
import { memInit, alloc } from './mem';
import { recordsInit, recCount } from './records';
import { arenaInit } from './arena';
import { tableInit, tableCapacity } from './table';
import { siteBegin as stageBegin, siteStage as stageEnd, siteInstall, setActive, nAreas } from './site';
import { advanceTo, clock, occupancyInstall, setClock } from './occupancy';
import { calendarBytes as calBytes } from './calendar';
import { batchInit, applyBatch as runBatch, lookupBatch as lookOnly, inBase, outBase, violBase, factBase, keyFromSlot, slotHash, BATCH_CAP, violEnsure } from './batch';
import { stateInto } from './rules';
import { reconfigure as remapSite } from './remap';
import { snapHeader as hdr, snapHeaderPtr as hdrPtr, snapSegments, segTable, restoreBegin as rBegin, restoreEnd as rEnd } from './snapshot';
import { countOf, supOf, aLocked } from './site';

export const ABI_VERSION: u32 = 2;

let stateOut: usize = 0;
let scratchPtr: usize = 0;
let scratchLen: usize = 0;

/** fresh state; `capacity` pre-sizes the index (credentials expected) */
export function init(capacity: u32): void {
  memInit();
  recordsInit();
  arenaInit();
  tableInit(capacity);
  scanInit();
  stateOut = alloc(9 * 8);
  scratchPtr = 0;
  scratchLen = 0;
  setClock(0);
}

/** stages a site: returns the descriptor the host fills (site.ts) */
export function siteBegin(areas: i32, readers: i32, moveListLen: i32): usize { return stageBegin(areas, readers, moveListLen); }
export function siteStage(forgetAfterMs: f64): void { stageEnd(forgetAfterMs); }
/** installs the staged site as the first one (after init) */
export function siteInstallFirst(): void {
  siteInstall();
  occupancyInstall();
  batchInit();
}
/** installs the staged site in place of the current one; maps are i32 arrays in scratch */
export function reconfigure(areaMap: usize, readerMap: usize): void { scanLayout(); remapSite(areaMap, readerMap); violEnsure(); }

/** a reusable host-writable region of at least n bytes */
export function scratch(n: u32): usize {
  if (<usize>n > scratchLen) { scratchPtr = alloc(<usize>n); scratchLen = <usize>n; }
  return scratchPtr;
}

export function inPtr(): usize { return inBase; }
export function outPtr(): usize { return outBase; }
export function violPtr(): usize { return violBase; }
export function factPtr(): usize { return factBase; }
export function batchCap(): i32 { return BATCH_CAP; }
export function statePtr(): usize { return stateOut; }

/** decides ops 0..n-1 of the input region at clock `now`; returns how many were done */
// every state change makes the cached muster listing stale (scan.ts)
export function applyBatch(n: i32, now: f64): i32 { scanStale(); return runBatch(n, <i64>now); }
/** the lookups of applyBatch(n) alone: how many of the input ops name a stored credential (no decision, no state change; for bench:core) */
export function lookupBatch(n: i32): i32 { return lookOnly(n); }
export function advance(now: f64): void { scanStale(); advanceTo(<i64>now); }
export function clockNow(): f64 { return <f64>clock; }
export function setScheduleActive(area: i32, active: i32): void { setActive(area, active != 0); }
export function occupancy(area: i32): i32 { return area >= 0 && area < nAreas ? countOf(<u32>area) : 0; }
/** supervisors among occupancy(area) (SPEC 13.2) */
export function supervisors(area: i32): i32 { return area >= 0 && area < nAreas ? supOf(<u32>area) : 0; }
export function locked(area: i32): i32 { return area >= 0 && area < nAreas ? <i32>load<u8>(aLocked + <usize>area) : 0; }
export function size(): u32 { return recCount; }
/** bytes the expiry calendar holds (calendar.ts: map and heap as allocated) */
export function calendarBytes(): usize { return calBytes(); }
export function indexCapacity(): u32 { return tableCapacity(); }

/** state of the key in input slot 0, into statePtr() (rules.ts stateInto) */
export function lookupState(): void {
  scanStale(); // settling a forgotten credential rewrites its slot
  keyFromSlot(0, slotHash(0));
  stateInto(stateOut);
}

export function snapHeader(): usize { return hdr(); }
export function snapHeaderBuf(): usize { return hdrPtr(); }
export function snapSegmentCount(): i32 { return snapSegments(); }
export function snapSegmentTable(): usize { return segTable(); }
export function restoreBegin(): i32 { return rBegin(); }
export function restoreEnd(): void { scanLayout(); rEnd(); }
import { scanStale, scanLayout, scanInit } from './scan';
// the muster list: who an area counts, resumable by record; scanSlice does it in slices of bounded work (scan.ts)
export { scanInside, scanSlice } from './scan';
