/**
 * The contract every engine core fulfils: the WebAssembly core
 * (src/engine/wasm-core.ts over assembly/) and the plain TypeScript
 * reference model (src/engine/reference-core.ts). Property tests feed both
 * the same streams and demand identical results, so every field here is
 * fully determined by SPEC 4-8 and 12.
 *
 * A core knows nothing of time zones: the driver (src/engine/engine.ts)
 * evaluates schedules and periodic resets with src/config/calendar.ts and
 * pushes them in as schedule flags and resetArea ops at their instants.
 * Times are integer milliseconds since the Unix epoch, 0 <= t < 2^44.
 */
import type { Cred } from './cred.js';
import type { CompiledSite } from '../config/types.js';

export type ViolationCode = 'reuse' | 'exit_not_entered' | 'reentry' | 'sequence' | 'occupancy' | 'last_supervisor' | 'no_supervisor' | 'lockdown';
/**
 * Their numeric codes (index) in the WASM ABI and the compact journal: append only, so journals and
 * snapshots written before SPEC 13 keep their meaning.
 */
export const VIOLATION_CODES: readonly ViolationCode[] = ['reuse', 'exit_not_entered', 'reentry', 'sequence', 'occupancy', 'last_supervisor', 'no_supervisor', 'lockdown'];
/** the order a decision lists them in (SPEC 4, 12, 13.2); a lockdown deny lists only `lockdown` (SPEC 13.1) */
export const VIOLATION_ORDER: readonly ViolationCode[] = ['reuse', 'exit_not_entered', 'last_supervisor', 'reentry', 'sequence', 'occupancy', 'no_supervisor', 'lockdown'];
export type Reason = 'ok' | 'soft_violation' | 'forgiven' | 'exempt' | 'unknown_reader' | ViolationCode;
export const REASONS: readonly Reason[] = ['ok', 'soft_violation', 'forgiven', 'exempt', 'unknown_reader', ...VIOLATION_CODES];

export interface Violation {
  code: ViolationCode;
  mode: 'soft' | 'hard';
  /** area index the violation is about; -1 for `reuse` (a reader rule) */
  area: number;
  /** occupancy: the area's count; last_supervisor: the non-supervisors present (SPEC 13.3 facts the state alone does not give) */
  count?: number;
}

/** A credential's state as a decision saw it (SPEC 13.3 `seen`): after step 2's expiry, before the move. */
export interface Seen {
  location: number;        // area index, -1 = unknown
  lastMoveAt: number;
  lastReader: number;      // -1 = none
  lastReaderAt: number;
  freePass: boolean;
  exempt: boolean;
  supervisor: boolean;
  pending: { reader: number; to: number; deadline: number } | null;
}

/** Times beyond this are rejected as bad_message before reaching a core. */
export const MAX_TIME = 2 ** 44 - 1;

export type CoreOp =
  | { op: 'badge'; cred: Cred; reader: number }          // reader -1 = unknown reader
  | { op: 'passage'; cred: Cred; reader: number }        // reader -1: acknowledged, no change
  | { op: 'offline'; cred: Cred; reader: number; ts: number; granted: boolean } // ts = event time; does not move the clock
  | { op: 'forgive'; cred: Cred }
  | { op: 'reset'; cred: Cred }
  | { op: 'exempt'; cred: Cred; on: boolean }
  | { op: 'setLocation'; cred: Cred; area: number }
  | { op: 'resetArea'; area: number }
  | { op: 'supervisor'; cred: Cred; on: boolean }
  | { op: 'lockdown'; area: number; on: boolean };    // area 0 (outside) is refused before a core sees it

export type CoreResult =
  | { op: 'badge'; grant: boolean; reason: Reason; violations: Violation[]; area: number /* reader's `to` on grant, -1 on deny */; pending: boolean; seen: Seen }
  | { op: 'passage'; applied: boolean }
  /** violations: what the engine would have raised (late_violation alerts); only for an applied granted upload, else [] */
  | { op: 'offline'; applied: boolean; violations: Violation[]; seen: Seen }
  /** changed: how many credentials' state changed (0 when e.g. a free pass was already held) */
  | { op: 'forgive' | 'reset' | 'exempt' | 'setLocation' | 'resetArea' | 'supervisor' | 'lockdown'; changed: number };

export interface CredState {
  /** false for a credential the engine has never stored (all other fields are then defaults) */
  stored: boolean;
  location: number;        // area index, -1 = unknown
  lastMoveAt: number;      // 0 = never moved
  lastReader: number;      // -1 = none (or dropped by a reset)
  lastReaderAt: number;    // 0 when lastReader is -1
  freePass: boolean;
  exempt: boolean;
  supervisor: boolean;
  /** a granted move awaiting passage at the clock's current time (expired ones are reported as null) */
  pending: { reader: number; to: number; deadline: number } | null;
}

/** One credential an area counts (EngineCore.credentialsIn): `rec` is its record number, the scan's resume point. */
export interface InsideRow {
  rec: number;
  /** the credential's text form (src/engine/cred.ts credToText) */
  cred: string;
  /** the exact area it is in: the scanned area or one below it */
  location: number;
  lastMoveAt: number;
  /** -1 = none */
  lastReader: number;
}

/** A page of an area's credentials: `next` is the record to resume from, null when the scan reached the end. */
export interface InsidePage { rows: InsideRow[]; next: number | null }

/** EngineCore.credentialsInAsync: the work per slice aimed at, and whether to give up (the request went away) */
export interface SliceOptions { sliceMs?: number; aborted?: () => boolean }

export interface EngineCore {
  readonly kind: 'wasm' | 'reference';
  /** Moves the clock forward to `now` (a smaller `now` is ignored): presence timeouts and forgetAfter take effect at their exact instants. Periodic resets are the driver's job. */
  advance(now: number): void;
  /** Schedule flag of an area (SPEC 3 `schedule`): violations in it are raised only while active. All areas start active. */
  setScheduleActive(area: number, active: boolean): void;
  /** Decides/applies a batch in order at clock `now` (advance(now) first). Never throws for a valid op. */
  apply(ops: CoreOp[], now: number): CoreResult[];
  /** Occupancy of an area at the current clock (SPEC 8), nested areas included. Area 0 counts every known location. */
  occupancy(area: number): number;
  /** The supervisors among occupancy(area) (SPEC 13.2). */
  supervisors(area: number): number;
  /** Is the area locked down (SPEC 13.1). */
  locked(area: number): boolean;
  state(cred: Cred): CredState;
  /**
   * The credentials occupancy(area) counts at the clock (location inside the area, not timed out by the
   * area's own presenceTimeout), in record (creation) order from record `from`: at most `max` of them.
   * Records are never deleted or renumbered, so `next` stays a valid resume point while state changes.
   */
  credentialsIn(area: number, from: number, max: number): InsidePage;
  /**
   * credentialsIn without holding the event loop for long: the WASM core scans in slices of about
   * `sliceMs` with a turn of the event loop between them (batches may run meanwhile; the paging rule
   * above holds across them: whoever the area counted throughout is listed once, nobody it does not
   * count when the page is written). One at a time per core. The reference core answers at once.
   */
  credentialsInAsync(area: number, from: number, max: number, opts?: SliceOptions): Promise<InsidePage>;
  /** how many credentials are stored */
  size(): number;
  /**
   * The complete state, clock and schedule flags included, as bytes; restore() on a core of the same kind and site gives identical behaviour.
   * With `headroom` h > 0 the result has h zero bytes first (for the caller's header, saving a copy of a large snapshot) and the snapshot at [h..].
   * `into`: a buffer the caller no longer needs (an evicted snapshot): when it is large enough the result is a view of its
   * first bytes, every one of them written (no fresh memory for a large image); when it is too small (empty: none yet) the
   * result is a view of a new buffer with 1/16 to spare, for the next image of a slightly larger engine.
   */
  snapshot(headroom?: number, into?: Uint8Array): Uint8Array;
  restore(bytes: Uint8Array): void;
  /**
   * Optional: restore() of the `length` bytes at `position` in the open file `fd`, read straight into the core's
   * own memory (no intermediate buffer). Same validation, errors and guarantees as restore().
   */
  restoreFromFile?(fd: number, position: number, length: number): void;
  /** Swap in a new site. areaMap[old] / readerMap[old] give the new index or -1 (gone: locations there become unknown, lastReader there is dropped). Occupancy is recounted. */
  reconfigure(site: CompiledSite, areaMap: Int32Array, readerMap: Int32Array): void;
}

/** What a configuration swap changed (config/diff.ts computes it, Engine.reconfigure returns it). */
export interface ReloadReport {
  areasAdded: string[]; areasRemoved: string[]; areasChanged: string[];
  readersAdded: string[]; readersRemoved: string[]; readersChanged: string[];
  controllersAdded: string[]; controllersRemoved: string[]; controllersChanged: string[];
  usersChanged: boolean;
  /** other top-level settings of the site file that differ (e.g. uhppote, webhooks, timezone), by key */
  settingsChanged: string[];
  /** credentials whose location became unknown because their area was removed */
  locationsDropped: number;
}

/**
 * The driver the server, the store's recovery and `apb replay` use
 * (src/engine/engine.ts: `createEngine(site, { core })`). It owns the site
 * calendar: before applying anything at `now` it runs the periodic resets
 * due in (clock, now] in time order (each at its own instant, SPEC 12
 * "Instants") and refreshes the schedule flags. Deterministic: the same
 * sequence of apply()/reconfigure() calls with the same `now`s gives the
 * same results, which is what makes the event log a replayable journal.
 */
export interface Engine {
  readonly site: CompiledSite;
  readonly core: EngineCore;
  /** last `now` applied; 0 before the first call (no resets are run for the time before the first call) */
  readonly clock: number;
  tick(now: number): void;
  /** tick(now), then core.apply(ops, now). `now` below the clock is treated as the clock. */
  apply(ops: CoreOp[], now: number): CoreResult[];
  occupancy(area: number): number;
  supervisors(area: number): number;
  locked(area: number): boolean;
  state(cred: Cred): CredState;
  /** core.credentialsIn (the muster list; call tick(now) first, as for occupancy) */
  credentialsIn(area: number, from: number, max: number): InsidePage;
  /** core.credentialsInAsync (the muster route's path: sliced, see EngineCore) */
  credentialsInAsync(area: number, from: number, max: number, opts?: SliceOptions): Promise<InsidePage>;
  /** `into`: as EngineCore.snapshot's (a spare buffer written over when large enough) */
  snapshot(into?: Uint8Array): Uint8Array;
  restore(bytes: Uint8Array): void;
  /** restore() of the `length` bytes at `position` in the open file `fd` (a snapshot file), without reading it into a buffer first when the core can. */
  restoreFromFile?(fd: number, position: number, length: number): void;
  reconfigure(site: CompiledSite): ReloadReport;
  /** called with (area index, instant) for every periodic reset tick() runs */
  onPeriodicReset?: (area: number, at: number, changed: number) => void;
}
