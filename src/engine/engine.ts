/**
 * The engine driver: a core (WASM or reference) plus the site calendar.
 * Cores know nothing of time zones; the driver turns wall-clock rules into
 * core inputs at their exact instants (SPEC 12 "Instants"):
 *  - periodic resets (`resetAt`) due in (clock, now] run in time order, each
 *    as a resetArea op at its own instant, before anything at `now`;
 *  - schedule flags are refreshed at every change instant in (clock, now];
 *  - the first call only sets the clock (no resets for the time before it).
 * Standing `credentials: [{cred, exempt: true, supervisor: true}]` of the configuration are
 * applied at creation and again at every reconfigure (a credential dropped
 * from that list keeps its flag: operators' exemptions look the same).
 */
import { readSync } from 'node:fs';
import type { CompiledSite } from '../config/types.js';
import { SiteCalendar } from '../config/calendar.js';
import { diffSites } from '../config/diff.js';
import { ApbError } from '../errors.js';
import { parseCred } from './cred.js';
import type { Cred } from './cred.js';
import { createReferenceCore } from './reference-core.js';
import type { CoreOp, CoreResult, CredState, Engine, EngineCore, InsidePage, ReloadReport, SliceOptions } from './types.js';
import { WasmCore, createWasmCore } from './wasm-core.js';

export type CoreKind = 'wasm' | 'reference';

export function createCore(site: CompiledSite, kind: CoreKind = 'wasm'): EngineCore {
  // the table sized up front: no growth pauses on the way to the expected count (a restore replaces it by the snapshot's)
  return kind === 'reference' ? createReferenceCore(site) : createWasmCore(site, { capacity: site.config?.expectedCredentials ?? 0 });
}

/** An engine whose core is the WASM core: it also takes the hub's wire fast path (decideWire). */
export interface WireEngine extends Engine { readonly core: WasmCore; decideWire(n: number, now: number): number }

/** `e` as a WireEngine when its core is the WASM core, else null (the general path only). */
export function wireEngine(e: Engine): WireEngine | null {
  return e instanceof Driver && e.core instanceof WasmCore ? (e as unknown as WireEngine) : null;
}

export function createEngine(site: CompiledSite, opts: { core?: CoreKind } = {}): Engine {
  return new Driver(site, createCore(site, opts.core ?? 'wasm'));
}

/*
 * Snapshot bytes (little-endian):
 *   0  u32  magic "APBE"
 *   4  u32  version (1)
 *   8  f64  clock
 *  16  u8   started (1 once the first call set the clock)
 *  17  u8[7] zero
 *  24  u32  core snapshot length n
 *  28  u8[n] core snapshot (EngineCore.snapshot of the same kind)
 */
const MAGIC = 0x45425041; // "APBE"
const VERSION = 1;
const HEADER = 28;
/** how far ahead tick() asks the calendar for the next periodic reset */
const RESET_PROBE_MS = 2 * 86_400_000;

class Driver implements Engine {
  onPeriodicReset?: (area: number, at: number, changed: number) => void;
  private _site: CompiledSite;
  private calendar: SiteCalendar;
  private _clock = 0;
  private started = false;
  /** areas whose schedule is not "always" (the only flags that ever change) */
  private scheduled: number[];
  /** cached calendar.nextScheduleChange(clock) (NaN = not known); the calendar is fixed between reconfigures */
  private nextFlagAt = NaN;
  /**
   * No periodic reset and no schedule change happens before this instant
   * (-Infinity = not known): tick() below it is O(1), no calendar call.
   */
  private quietUntil = -Infinity;

  constructor(site: CompiledSite, readonly core: EngineCore) {
    this._site = site;
    this.calendar = new SiteCalendar(site);
    this.scheduled = scheduledAreas(site);
    this.applyStandingFlags();
  }

  get site(): CompiledSite { return this._site; }
  get clock(): number { return this._clock; }

  private refreshFlags(at: number): void {
    for (const a of this.scheduled) this.core.setScheduleActive(a, this.calendar.scheduleActive(a, at));
  }

  tick(now: number): void {
    if (!this.started) {
      this.started = true;
      this._clock = now;
      this.core.advance(now);
      this.refreshFlags(now);
      this.nextFlagAt = NaN;
      this.quietUntil = -Infinity;
      return;
    }
    if (now <= this._clock) return;
    if (now < this.quietUntil) {
      this.core.advance(now);
      this._clock = now;
      return;
    }
    const resets = this.calendar.resetsBetween(this._clock, now);
    let ri = 0;
    if (Number.isNaN(this.nextFlagAt)) this.nextFlagAt = this.scheduled.length ? this.calendar.nextScheduleChange(this._clock) : Infinity;
    let nextFlag = this.nextFlagAt;
    for (;;) {
      const r = ri < resets.length ? resets[ri]!.at : Infinity;
      const s = nextFlag <= now ? nextFlag : Infinity;
      if (r === Infinity && s === Infinity) break;
      if (s <= r) {
        // flags do not affect resets, so at a shared instant their order does not matter
        this.core.advance(s);
        this._clock = Math.max(this._clock, s);
        this.refreshFlags(s);
        const next = this.calendar.nextScheduleChange(s);
        nextFlag = next > s ? next : Infinity; // guard: the calendar must move forward
        continue;
      }
      const { area, at } = resets[ri++]!;
      this._clock = Math.max(this._clock, at);
      const res = this.core.apply([{ op: 'resetArea', area }], at)[0] as { changed: number };
      this.onPeriodicReset?.(area, at, res.changed);
    }
    this.nextFlagAt = nextFlag;
    this.core.advance(now);
    this._clock = now;
    this.quietUntil = Math.min(nextFlag, this.nextResetAfter(now)); // nextFlag > now here
  }

  /**
   * A bound b > t with no periodic reset in (t, b): the first reset within
   * two days after t, else t + 2 days (then the calendar is asked again).
   */
  private nextResetAfter(t: number): number {
    const horizon = t + RESET_PROBE_MS;
    const ticks = this.calendar.resetsBetween(t, horizon);
    return ticks.length ? ticks[0]!.at : horizon;
  }

  apply(ops: CoreOp[], now: number): CoreResult[] {
    const at = this.started && now < this._clock ? this._clock : now;
    this.tick(at);
    return this.core.apply(ops, this._clock);
  }

  /**
   * The wire fast path's apply(): the same clock handling (tick, `now` below
   * the clock taken as the clock), then the WASM core decides the first n
   * input slots its caller filled (WasmCore.wireViews/decideWire). Returns
   * how many were done; call again (the clock no longer moves) for the rest.
   */
  decideWire(n: number, now: number): number {
    const core = this.core as WasmCore;
    const at = this.started && now < this._clock ? this._clock : now;
    if (!this.started || at <= this._clock || at < this.quietUntil) this.tick(at); // no periodic reset can run
    else {
      // a periodic reset runs through core.apply, which uses input slot 0: keep the caller's op there
      core.saveSlot0();
      this.tick(at);
      core.restoreSlot0();
    }
    return core.decideWire(n, this._clock);
  }

  occupancy(area: number): number { return this.core.occupancy(area); }
  supervisors(area: number): number { return this.core.supervisors(area); }
  locked(area: number): boolean { return this.core.locked(area); }
  credentialsIn(area: number, from: number, max: number): InsidePage { return this.core.credentialsIn(area, from, max); }
  credentialsInAsync(area: number, from: number, max: number, opts?: SliceOptions): Promise<InsidePage> { return this.core.credentialsInAsync(area, from, max, opts); }
  state(cred: Cred): CredState { return this.core.state(cred); }

  snapshot(into?: Uint8Array): Uint8Array {
    const out = this.core.snapshot(HEADER, into); // the core leaves room for the header (zeroed): no second copy
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    dv.setUint32(0, MAGIC, true);
    dv.setUint32(4, VERSION, true);
    dv.setFloat64(8, this._clock, true);
    out[16] = this.started ? 1 : 0;
    dv.setUint32(24, out.length - HEADER, true);
    return out;
  }

  restore(bytes: Uint8Array): void {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = checkHead(dv, bytes.length >= HEADER, bytes.length);
    this.core.restore(bytes.subarray(HEADER, HEADER + n));
    this.resume(dv);
  }

  /** clock and started from a checked snapshot header; the cached calendar bounds are dropped */
  private resume(head: DataView): void {
    this._clock = head.getFloat64(8, true);
    this.started = head.getUint8(16) === 1;
    this.nextFlagAt = NaN;
    this.quietUntil = -Infinity;
  }

  /**
   * restore() from a snapshot file: reads the small header, then lets the core
   * read its part straight into its own memory (restoreFromFile) or, for a core
   * without it, reads that part into a buffer and restores it.
   */
  restoreFromFile(fd: number, position: number, length: number): void {
    const head = new Uint8Array(HEADER);
    const got = length >= HEADER ? readSync(fd, head, 0, HEADER, position) : 0;
    const dv = new DataView(head.buffer);
    const n = checkHead(dv, got >= HEADER, length);
    if (this.core.restoreFromFile) this.core.restoreFromFile(fd, position + HEADER, n);
    else {
      const body = Buffer.allocUnsafeSlow(n);
      for (let off = 0; off < n;) {
        const k = readSync(fd, body, off, Math.min(64 << 20, n - off), position + HEADER + off);
        if (k === 0) throw new ApbError('bad_message', `engine snapshot: truncated (${HEADER + off} of ${length} bytes)`);
        off += k;
      }
      this.core.restore(body);
    }
    this.resume(dv);
  }

  reconfigure(next: CompiledSite): ReloadReport {
    const prev = this._site;
    const { report, areaMap, readerMap } = diffSites(prev, next);
    // Step 1 drops the locations in removed areas under the old site, so that
    // area 0's count (every known location) tells exactly how many were dropped.
    const before = this.core.occupancy(0);
    const keepAreas = Int32Array.from(areaMap, (n: number, a: number) => (n >= 0 ? a : -1));
    const sameReaders = Int32Array.from(readerMap, (_, r) => r);
    this.core.reconfigure(prev, keepAreas, sameReaders);
    const dropped = before - this.core.occupancy(0);
    this.core.reconfigure(next, areaMap, readerMap);
    this._site = next;
    this.calendar = new SiteCalendar(next);
    this.scheduled = scheduledAreas(next);
    this.nextFlagAt = NaN;
    this.quietUntil = -Infinity;
    // an area whose schedule became "always" must not keep an old inactive flag
    for (let a = 0; a < next.areaIds.length; a++) if (!next.hasSchedule[a]) this.core.setScheduleActive(a, true);
    if (this.started) this.refreshFlags(this._clock);
    this.applyStandingFlags();
    return { ...report, locationsDropped: dropped };
  }

  private applyStandingFlags(): void {
    const ops: CoreOp[] = [];
    for (const c of this._site.config.credentials ?? []) {
      if (c.exempt) ops.push({ op: 'exempt', cred: parseCred(c.cred, 'credentials[].cred'), on: true });
      if (c.supervisor) ops.push({ op: 'supervisor', cred: parseCred(c.cred, 'credentials[].cred'), on: true });
    }
    if (ops.length) this.core.apply(ops, this._clock);
  }
}

/**
 * Checks a snapshot header (`whole`: all HEADER bytes are there) against a
 * snapshot of `length` bytes; returns the core snapshot's length.
 */
function checkHead(dv: DataView, whole: boolean, length: number): number {
  if (!whole || dv.getUint32(0, true) !== MAGIC || dv.getUint32(4, true) !== VERSION) {
    throw new ApbError('bad_message', 'engine snapshot: not an apb engine snapshot (bad magic or version)');
  }
  const n = dv.getUint32(24, true);
  if (HEADER + n !== length) throw new ApbError('bad_message', `engine snapshot: length ${length} does not match its header (${HEADER + n})`);
  return n;
}

function scheduledAreas(site: CompiledSite): number[] {
  const out: number[] = [];
  for (let a = 0; a < site.areaIds.length; a++) if (site.hasSchedule[a]) out.push(a);
  return out;
}
