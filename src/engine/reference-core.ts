/**
 * The reference model of SPEC 2-8 and 12: plain TypeScript, one record per
 * credential in a Map keyed by the credential's text form (an exact key,
 * src/engine/cred.ts). It is the oracle the property tests hold the WASM core
 * to, and the baseline the core benchmark compares against, so it is written
 * to be obviously right first and reasonably fast second.
 *
 * Interpretations (where SPEC leaves room; the WASM core follows the same):
 *
 *  I1  Lazy expiry. forgetAfter is a reset at its own instant
 *      f = lastMoveAt + forgetAfter (SPEC 12 "Resets"): location unknown,
 *      lastMoveAt = f, pending and reuse memory dropped, free pass kept. It is
 *      carried out whenever a credential is next looked at with the clock
 *      >= f, which gives the same state as doing it at f because nothing else
 *      touches that credential in between. Likewise a pending move whose
 *      deadline <= clock is gone (passage in time only while t < deadline).
 *  I2  A record is created ("stored") only by an op that changes state: a
 *      grant, an applied passage/offline event, forgive (when no pass is held),
 *      exempt (when the flag changes), setLocation, and reset(c) which always
 *      applies (lastMoveAt = its time even for a never-seen credential). A
 *      deny, an unapplied upload or a no-op action stores nothing.
 *  I3  Offline uploads (SPEC 7) are judged against the state as it stands at
 *      the clock (after every reset/expiry due by then), with t = the event's
 *      own ts for the credential's durations (presenceTimeout, forgetAfter and
 *      reuse: `ts - lastReaderAt < reuseLockout`, literally, so an upload
 *      older than the last grant at that reader within the lockout is reuse),
 *      and with schedule flags and occupancy counts as they are at the clock.
 *      Applied only when granted and ts > lastMoveAt (strictly newer). It
 *      reports every violation found (soft and hard) as late violations,
 *      never uses or needs the free pass, and an exempt credential's upload
 *      reports none. Applying sets location = reader's `to`, lastMoveAt = ts,
 *      drops the pending move, and sets lastReader/lastReaderAt only when
 *      ts >= lastReaderAt.
 *  I4  Occupancy check (step 6): raised for an entered area Y with entry on,
 *      schedule active and maxOccupancy set, when occupancy(Y) at the clock
 *      >= maxOccupancy and c is not itself counted in Y at the clock.
 *  I5  Presence timeout: for the checks of area X, c's location is unknown
 *      when X.presenceTimeout > 0 and t - lastMoveAt >= it (each area its own
 *      timeout; a nested area's own timeout governs its own checks).
 *      Occupancy of X counts c when its location is inside X and not timed
 *      out by X's own presenceTimeout; area 0 (outside, no policy) counts
 *      every known location.
 *  I6  setLocation(c, X) is a move at the action's time: location X,
 *      lastMoveAt = now, pending dropped; lastReader untouched; always
 *      changes (changed = 1). setLocation to area 0 makes c known outside.
 *  I7  reconfigure: every credential is first brought up to the clock under
 *      the old site (due forgetAfter resets happen), then locations, pending
 *      moves and lastReader are mapped; a location in a removed area becomes
 *      unknown with lastMoveAt kept; a pending move whose reader or target is
 *      gone is dropped; a removed lastReader becomes -1 (lastReaderAt 0).
 *      Schedule flags of kept areas are kept, new areas start active. A new
 *      forgetAfter applies to the kept lastMoveAt (forgotten at
 *      lastMoveAt + new forgetAfter if that is <= clock).
 *  I8  A passage applies only the pending move of the same reader and only
 *      while clock < deadline; the move's lastMoveAt is the passage's time.
 *  I9  SPEC 13. Supervisors present in X are the supervisors `counted` in X
 *      at the clock (as I4's occupancy), for offline uploads too. Lockdown
 *      and supervisor flags are kept like exempt: by resets, snapshots and
 *      reconfigure (a lockdown only while its area is kept). `seen` is the
 *      record as settled at the clock before the decision (a pending move
 *      past its deadline is none); for an unknown reader too.
 */
import type { Cred } from './cred.js';
import { credFromText, credToText } from './cred.js';
import type { CompiledSite } from '../config/types.js';
import { MODE_HARD, MODE_OFF } from '../config/types.js';
import type { CoreOp, CoreResult, CredState, EngineCore, InsidePage, InsideRow, Reason, Seen, Violation, ViolationCode } from './types.js';
import { VIOLATION_ORDER } from './types.js';
import { movePath } from '../config/tree.js';
import { ApbError } from '../errors.js';

interface Pending { reader: number; to: number; deadline: number }

/** One credential's state (SPEC 2). */
interface Rec {
  location: number;       // area index, -1 unknown
  lastMoveAt: number;
  lastReader: number;     // -1 none
  lastReaderAt: number;
  freePass: boolean;
  exempt: boolean;
  supervisor: boolean;
  pending: Pending | null;
}

function newRec(): Rec {
  return { location: -1, lastMoveAt: 0, lastReader: -1, lastReaderAt: 0, freePass: false, exempt: false, supervisor: false, pending: null };
}

function seenOf(r: Rec): Seen {
  return {
    location: r.location, lastMoveAt: r.lastMoveAt, lastReader: r.lastReader, lastReaderAt: r.lastReaderAt,
    freePass: r.freePass, exempt: r.exempt, supervisor: r.supervisor, pending: r.pending ? { ...r.pending } : null,
  };
}

export function createReferenceCore(initialSite: CompiledSite): EngineCore {
  return new ReferenceCore(initialSite);
}

class ReferenceCore implements EngineCore {
  readonly kind = 'reference' as const;
  private site: CompiledSite;
  private clock = 0;
  private recs = new Map<string, Rec>();
  /** the keys of `recs` in creation order (a record's index here is its record number, as in the WASM core) */
  private order: string[] = [];
  private schedule: boolean[];
  /** lockdown flags (SPEC 13.1) */
  private lockedFlags: boolean[];
  /** per reader: the areas its move exits (innermost first) and enters (outermost first) */
  private paths: { exited: number[]; entered: number[] }[];
  /** raw[X] = stored records whose location is inside X, expiry ignored; exact occupancy when nothing can expire */
  private raw: number[];

  constructor(site: CompiledSite) {
    this.site = site;
    this.schedule = site.areaIds.map(() => true);
    this.lockedFlags = site.areaIds.map(() => false);
    this.paths = this.computePaths(site);
    this.raw = site.areaIds.map(() => 0);
  }

  private computePaths(site: CompiledSite): { exited: number[]; entered: number[] }[] {
    return site.readerIds.map((_, r) => movePath(site, site.readerFrom[r]!, site.readerTo[r]!));
  }

  // ---------- tree and time helpers ----------

  private inside(loc: number, area: number): boolean {
    for (let a = loc; a >= 0; a = this.site.parent[a]!) if (a === area) return true;
    return false;
  }

  /** c's location as the checks of `area` see it at time t: -1 when unknown, forgotten or timed out for that area (I5). */
  private locFor(rec: Rec, area: number, t: number): number {
    if (rec.location < 0) return -1;
    const f = this.site.forgetAfterMs;
    if (f > 0 && t - rec.lastMoveAt >= f) return -1;
    const p = this.site.presenceTimeoutMs[area]!;
    if (p > 0 && t - rec.lastMoveAt >= p) return -1;
    return rec.location;
  }

  /** is c counted in area's occupancy at the clock (SPEC 8, 12 "Occupancy") */
  private counted(rec: Rec, area: number): boolean {
    const loc = this.locFor(rec, area, this.clock);
    return loc >= 0 && this.inside(loc, area);
  }

  /** every location write goes through here so the raw counts stay exact */
  private setLocation(rec: Rec, loc: number): void {
    for (let a = rec.location; a >= 0; a = this.site.parent[a]!) this.raw[a]!--;
    rec.location = loc;
    for (let a = loc; a >= 0; a = this.site.parent[a]!) this.raw[a]!++;
  }

  /** a reset at instant `at` (SPEC 12 "Resets") */
  private resetRec(rec: Rec, at: number): void {
    this.setLocation(rec, -1);
    rec.lastMoveAt = at;
    rec.pending = null;
    rec.lastReader = -1;
    rec.lastReaderAt = 0;
  }

  /** brings a record up to the clock: forgetAfter reset at its own instant, expired pending dropped (I1) */
  private settle(rec: Rec): void {
    const f = this.site.forgetAfterMs;
    if (f > 0 && rec.location >= 0 && this.clock - rec.lastMoveAt >= f) this.resetRec(rec, rec.lastMoveAt + f);
    if (rec.pending && rec.pending.deadline <= this.clock) rec.pending = null;
  }

  /** the record of c brought up to the clock, or undefined if never stored */
  private get(key: string): Rec | undefined {
    const rec = this.recs.get(key);
    if (rec) this.settle(rec);
    return rec;
  }

  /** stores a new record: every creation goes through here, so `order` lists every key once */
  private add(key: string, rec: Rec): void {
    this.recs.set(key, rec);
    this.order.push(key);
  }

  private getOrCreate(key: string): Rec {
    let rec = this.get(key);
    if (!rec) { rec = newRec(); this.add(key, rec); }
    return rec;
  }

  // ---------- EngineCore ----------

  advance(now: number): void {
    if (now > this.clock) this.clock = now;
  }

  setScheduleActive(area: number, active: boolean): void {
    if (area >= 0 && area < this.schedule.length) this.schedule[area] = active;
  }

  occupancy(area: number): number {
    if (area < 0 || area >= this.raw.length) return 0;
    // Nothing can expire: the incrementally kept count is exact.
    if (this.site.forgetAfterMs === 0 && this.site.presenceTimeoutMs[area] === 0) return this.raw[area]!;
    return this.occupancyByScan(area);
  }

  /** supervisors present: by the definition, a scan (SPEC 13.2) */
  supervisors(area: number): number {
    if (area < 0 || area >= this.raw.length) return 0;
    let n = 0;
    for (const rec of this.recs.values()) {
      this.settle(rec);
      if (rec.supervisor && this.counted(rec, area)) n++;
    }
    return n;
  }

  locked(area: number): boolean { return this.lockedFlags[area] === true; }

  /** the outermost locked area containing `to` (itself included), or -1 */
  private lockedOuter(to: number): number {
    let out = -1;
    for (let a = to; a > 0; a = this.site.parent[a]!) if (this.lockedFlags[a]) out = a;
    return out;
  }

  /** the lockdown deny of a move through r (SPEC 13.1), or null */
  private lockdownViolation(r: number): Violation | null {
    if (this.paths[r]!.entered.length === 0) return null;
    const l = this.lockedOuter(this.site.readerTo[r]!);
    return l < 0 ? null : { code: 'lockdown', mode: 'hard', area: l };
  }

  /** occupancy by looking at every record (the definition itself; also used by tests to check the counts) */
  occupancyByScan(area: number): number {
    let n = 0;
    for (const rec of this.recs.values()) {
      this.settle(rec);
      if (this.counted(rec, area)) n++;
    }
    return n;
  }

  state(cred: Cred): CredState {
    const rec = this.get(credToText(cred));
    if (!rec) return { stored: false, ...seenOf(newRec()) };
    return { stored: true, ...seenOf(rec) };
  }

  size(): number { return this.recs.size; }

  /** the records `counted` in `area` at the clock, by record number from `from` (the definition occupancy scans by) */
  credentialsIn(area: number, from: number, max: number): InsidePage {
    const rows: InsideRow[] = [];
    if (!Number.isInteger(area) || area < 0 || area >= this.raw.length || !Number.isInteger(from) || from < 0) return { rows, next: null };
    for (let i = from; i < this.order.length; i++) {
      if (rows.length >= max) return { rows, next: i };
      const key = this.order[i]!;
      const rec = this.recs.get(key)!;
      this.settle(rec);
      if (!this.counted(rec, area)) continue;
      rows.push({ rec: i, cred: key, location: rec.location, lastMoveAt: rec.lastMoveAt, lastReader: rec.lastReader });
    }
    return { rows, next: null };
  }

  /** the model has no event loop to spare: the same page at once */
  credentialsInAsync(area: number, from: number, max: number): Promise<InsidePage> { return Promise.resolve(this.credentialsIn(area, from, max)); }

  apply(ops: CoreOp[], now: number): CoreResult[] {
    this.advance(now);
    return ops.map((op) => this.applyOne(op));
  }

  private applyOne(op: CoreOp): CoreResult {
    const now = this.clock;
    switch (op.op) {
      case 'badge': return this.badge(op.cred, op.reader);
      case 'passage': return { op: 'passage', applied: this.passage(op.cred, op.reader) };
      case 'offline': return this.offline(op.cred, op.reader, op.ts, op.granted);
      case 'forgive': {
        const rec = this.getOrCreateIf(op.cred, (r) => !r.freePass);
        if (!rec) return { op: 'forgive', changed: 0 };
        rec.freePass = true;
        return { op: 'forgive', changed: 1 };
      }
      case 'reset': {
        this.resetRec(this.getOrCreate(credToText(op.cred)), now);
        return { op: 'reset', changed: 1 };
      }
      case 'exempt': {
        const rec = this.getOrCreateIf(op.cred, (r) => r.exempt !== op.on);
        if (!rec) return { op: 'exempt', changed: 0 };
        rec.exempt = op.on;
        return { op: 'exempt', changed: 1 };
      }
      case 'setLocation': {
        const rec = this.getOrCreate(credToText(op.cred));
        this.setLocation(rec, op.area);
        rec.lastMoveAt = now;
        rec.pending = null;
        return { op: 'setLocation', changed: 1 };
      }
      case 'supervisor': {
        const rec = this.getOrCreateIf(op.cred, (r) => r.supervisor !== op.on);
        if (!rec) return { op: 'supervisor', changed: 0 };
        rec.supervisor = op.on;
        return { op: 'supervisor', changed: 1 };
      }
      case 'lockdown': {
        const a = op.area;
        if (!(a > 0 && a < this.lockedFlags.length) || this.lockedFlags[a] === op.on) return { op: 'lockdown', changed: 0 };
        this.lockedFlags[a] = op.on;
        return { op: 'lockdown', changed: 1 };
      }
      case 'resetArea': {
        let changed = 0;
        for (const rec of this.recs.values()) {
          this.settle(rec);
          if (rec.location >= 0 && this.inside(rec.location, op.area)) { this.resetRec(rec, now); changed++; }
        }
        return { op: 'resetArea', changed };
      }
      default: throw new ApbError('internal', `reference core: unknown op ${(op as { op: string }).op}`);
    }
  }

  /** the settled record of c when `wouldChange` says the op changes it (created if needed), else undefined */
  private getOrCreateIf(cred: Cred, wouldChange: (r: Rec) => boolean): Rec | undefined {
    const key = credToText(cred);
    const rec = this.get(key);
    if (rec) return wouldChange(rec) ? rec : undefined;
    const fresh = newRec();
    if (!wouldChange(fresh)) return undefined;
    this.add(key, fresh);
    return fresh;
  }

  /** SPEC 4 steps 2 and 4-6 for c at reader r at time t: every violation, in SPEC 12 order */
  private violations(rec: Rec, r: number, t: number): Violation[] {
    const s = this.site;
    const byCode: Record<ViolationCode, Violation[]> = {
      reuse: [], exit_not_entered: [], last_supervisor: [], reentry: [], sequence: [], occupancy: [], no_supervisor: [], lockdown: [],
    };
    const lockout = s.reuseLockoutMs[r]!;
    if (lockout > 0 && rec.lastReader === r && t - rec.lastReaderAt < lockout) {
      byCode.reuse.push({ code: 'reuse', mode: s.reuseHard[r] ? 'hard' : 'soft', area: -1 });
    }
    const { exited, entered } = this.paths[r]!;
    for (const x of exited) {                      // innermost first
      if (s.exit[x] === MODE_OFF || !this.schedule[x]) continue;
      const loc = this.locFor(rec, x, t);
      if (loc >= 0 && !this.inside(loc, x)) byCode.exit_not_entered.push({ code: 'exit_not_entered', mode: modeName(s.exit[x]!), area: x });
    }
    for (const x of exited) {                      // SPEC 13.2, judged at the clock like occupancy
      if (!rec.supervisor || s.supervision[x] === MODE_OFF || !this.schedule[x]) continue;
      const sup = this.supervisors(x), others = this.occupancy(x) - sup;
      if (sup === 1 && others > 0 && this.counted(rec, x)) {
        byCode.last_supervisor.push({ code: 'last_supervisor', mode: modeName(s.supervision[x]!), area: x, count: others });
      }
    }
    const from = s.readerFrom[r]!;
    for (const y of entered) {                     // outermost first
      if (s.entry[y] === MODE_OFF || !this.schedule[y]) continue;
      const mode = modeName(s.entry[y]!);
      const loc = this.locFor(rec, y, t);
      if (loc >= 0 && this.inside(loc, y)) byCode.reentry.push({ code: 'reentry', mode, area: y });
      if (s.strict[y] && loc >= 0 && loc !== from) byCode.sequence.push({ code: 'sequence', mode, area: y });
      const max = s.maxOccupancy[y]!;
      const count = max >= 0 ? this.occupancy(y) : 0;
      if (max >= 0 && !this.counted(rec, y) && count >= max) byCode.occupancy.push({ code: 'occupancy', mode, area: y, count });
    }
    for (const y of entered) {
      if (rec.supervisor || s.supervision[y] === MODE_OFF || !this.schedule[y]) continue;
      if (this.supervisors(y) === 0) byCode.no_supervisor.push({ code: 'no_supervisor', mode: modeName(s.supervision[y]!), area: y });
    }
    return VIOLATION_ORDER.flatMap((c) => byCode[c]);
  }

  private badge(cred: Cred, r: number): CoreResult {
    const now = this.clock;
    const key = credToText(cred);
    const rec = this.get(key) ?? newRec();
    const seen = seenOf(rec);
    if (r < 0 || r >= this.site.readerIds.length) {
      return { op: 'badge', grant: false, reason: 'unknown_reader', violations: [], area: -1, pending: false, seen };
    }
    let violations: Violation[] = [];
    let reason: Reason;
    let usePass = false;
    if (rec.exempt) {
      reason = 'exempt';
    } else {
      const lock = this.lockdownViolation(r);
      if (lock) return { op: 'badge', grant: false, reason: 'lockdown', violations: [lock], area: -1, pending: false, seen };
      violations = this.violations(rec, r, now);
      const hard = violations.find((v) => v.mode === 'hard');
      if (hard && rec.freePass) { reason = 'forgiven'; usePass = true; }
      else if (hard) return { op: 'badge', grant: false, reason: hard.code, violations, area: -1, pending: false, seen };
      else reason = violations.length ? 'soft_violation' : 'ok';
    }
    // Grant: from here on state changes, so the record is stored.
    if (!this.recs.has(key)) this.add(key, rec);
    if (usePass) rec.freePass = false;
    rec.lastReader = r;
    rec.lastReaderAt = now;
    const to = this.site.readerTo[r]!;
    const passageMs = this.site.readerPassageMs[r]!;
    if (passageMs > 0) {
      rec.pending = { reader: r, to, deadline: now + passageMs };
    } else {
      this.setLocation(rec, to);
      rec.lastMoveAt = now;
      rec.pending = null;
    }
    return { op: 'badge', grant: true, reason, violations, area: to, pending: passageMs > 0, seen };
  }

  private passage(cred: Cred, r: number): boolean {
    if (r < 0) return false;
    const rec = this.get(credToText(cred));
    const p = rec?.pending;
    if (!rec || !p || p.reader !== r || this.clock >= p.deadline) return false;
    this.setLocation(rec, p.to);
    rec.lastMoveAt = this.clock;
    rec.pending = null;
    return true;
  }

  private offline(cred: Cred, r: number, ts: number, granted: boolean): CoreResult {
    const key = credToText(cred);
    const rec = this.get(key) ?? newRec();
    const seen = seenOf(rec);
    const none: CoreResult = { op: 'offline', applied: false, violations: [], seen };
    if (r < 0 || r >= this.site.readerIds.length || !granted) return none;
    if (!(ts > rec.lastMoveAt)) return none;
    const lock = rec.exempt ? null : this.lockdownViolation(r);
    const violations = rec.exempt ? [] : lock ? [lock] : this.violations(rec, r, ts);
    if (!this.recs.has(key)) this.add(key, rec);
    this.setLocation(rec, this.site.readerTo[r]!);
    rec.lastMoveAt = ts;
    rec.pending = null;
    if (ts >= rec.lastReaderAt) { rec.lastReader = r; rec.lastReaderAt = ts; }
    return { op: 'offline', applied: true, violations, seen };
  }

  // ---------- snapshot / reconfigure ----------

  /**
   * Snapshot bytes: UTF-8 JSON
   *   { v: 2, clock, schedule: [0|1...], locked: [0|1...], recs: [[credText, location, lastMoveAt, lastReader, lastReaderAt, flags, pReader, pTo, pDeadline]...] }
   * flags bit 0 = freePass, bit 1 = exempt, bit 2 = supervisor; pReader -1 = no pending move.
   * Version 1 (before SPEC 13) has no `locked` and no flag bit 2, and restores as nothing locked.
   */
  snapshot(headroom = 0, _into?: Uint8Array): Uint8Array { // a small image: `into` is not worth it here
    const body = this.snapshotBody();
    if (!(headroom > 0)) return body;
    const out = new Uint8Array(headroom + body.length);
    out.set(body, headroom);
    return out;
  }

  private snapshotBody(): Uint8Array {
    const recs: unknown[] = [];
    for (const [k, r] of this.recs) {
      recs.push([k, r.location, r.lastMoveAt, r.lastReader, r.lastReaderAt, (r.freePass ? 1 : 0) | (r.exempt ? 2 : 0) | (r.supervisor ? 4 : 0),
        r.pending ? r.pending.reader : -1, r.pending ? r.pending.to : -1, r.pending ? r.pending.deadline : 0]);
    }
    return new TextEncoder().encode(JSON.stringify({ v: 2, kind: 'reference', clock: this.clock, schedule: this.schedule.map((b) => (b ? 1 : 0)), locked: this.lockedFlags.map((b) => (b ? 1 : 0)), recs }));
  }

  restore(bytes: Uint8Array): void {
    let doc: { v: number; kind: string; clock: number; schedule: number[]; locked?: number[]; recs: [string, number, number, number, number, number, number, number, number][] };
    try { doc = JSON.parse(new TextDecoder().decode(bytes)); } catch { throw new ApbError('bad_message', 'reference core snapshot: not a reference snapshot'); }
    if ((doc?.v !== 1 && doc?.v !== 2) || doc.kind !== 'reference' || doc.schedule.length !== this.site.areaIds.length
      || (doc.v === 2 && doc.locked?.length !== this.site.areaIds.length)) {
      throw new ApbError('bad_message', 'reference core snapshot: wrong version or site');
    }
    this.clock = doc.clock;
    this.schedule = doc.schedule.map((b) => b === 1);
    this.lockedFlags = doc.v === 2 ? doc.locked!.map((b, a) => a > 0 && b === 1) : this.site.areaIds.map(() => false);
    this.recs = new Map();
    this.order = [];
    this.raw = this.site.areaIds.map(() => 0);
    for (const [k, loc, lastMoveAt, lastReader, lastReaderAt, flags, pr, pt, pd] of doc.recs) {
      credFromText(k); // validates the key
      const rec: Rec = { location: -1, lastMoveAt, lastReader, lastReaderAt, freePass: (flags & 1) !== 0, exempt: (flags & 2) !== 0, supervisor: (flags & 4) !== 0, pending: pr >= 0 ? { reader: pr, to: pt, deadline: pd } : null };
      this.setLocation(rec, loc);
      this.add(k, rec);
    }
  }

  reconfigure(site: CompiledSite, areaMap: Int32Array, readerMap: Int32Array): void {
    for (const rec of this.recs.values()) this.settle(rec); // I7: up to the clock under the old site
    const schedule = site.areaIds.map(() => true);
    this.schedule.forEach((on, a) => { const n = areaMap[a] ?? -1; if (n >= 0) schedule[n] = on; });
    const locked = site.areaIds.map(() => false);
    this.lockedFlags.forEach((on, a) => { const n = areaMap[a] ?? -1; if (n > 0) locked[n] = on; });
    this.site = site;
    this.schedule = schedule;
    this.lockedFlags = locked;
    this.paths = this.computePaths(site);
    this.raw = site.areaIds.map(() => 0);
    const mapArea = (a: number): number => (a >= 0 ? areaMap[a] ?? -1 : -1);
    const mapReader = (r: number): number => (r >= 0 ? readerMap[r] ?? -1 : -1);
    for (const rec of this.recs.values()) {
      const loc = mapArea(rec.location);
      rec.location = -1;
      this.setLocation(rec, loc);
      if (rec.lastReader >= 0) {
        rec.lastReader = mapReader(rec.lastReader);
        if (rec.lastReader < 0) rec.lastReaderAt = 0;
      }
      if (rec.pending) {
        const pr = mapReader(rec.pending.reader), pt = mapArea(rec.pending.to);
        rec.pending = pr >= 0 && pt >= 0 ? { reader: pr, to: pt, deadline: rec.pending.deadline } : null;
      }
    }
  }
}

function modeName(m: number): 'soft' | 'hard' {
  return m === MODE_HARD ? 'hard' : 'soft';
}
