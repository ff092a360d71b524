/**
 * Decisions that explain themselves (SPEC 13.3): the `seen` state and the
 * per-violation facts of an event record, by id, from a core result.
 *
 * The cores output only what the host cannot derive: the state the
 * decision saw (two words per decision, assembly/rules.ts seenInto) and,
 * per violation, occupancy's count and last_supervisor's others. Everything
 * else a fact names (the reader's lockout, its `from`, the area's maximum,
 * the credential's location) comes from the site and `seen`, here, only
 * when an event record is written.
 */
import type { CompiledSite } from '../config/types.js';
import type { Seen, Violation } from './types.js';

/** `seen` as an event record carries it: areas and readers by id, null for none */
export interface SeenRecord {
  location: string | null;
  lastMoveAt: number;
  lastReader: string | null;
  lastReaderAt: number;
  freePass: boolean;
  exempt: boolean;
  supervisor: boolean;
  pending: { reader: string | null; to: string | null; deadline: number } | null;
}

/** a violation of an event record: code, mode, area and the facts that raised it (flat) */
export interface ViolationRecord {
  code: string;
  mode: string;
  area: string | null;
  [fact: string]: string | number | null;
}

const areaId = (site: CompiledSite, a: number): string | null => (a >= 0 ? site.areaIds[a] ?? null : null);
const readerId = (site: CompiledSite, r: number): string | null => (r >= 0 ? site.readerIds[r] ?? null : null);

export function seenRecord(s: Seen, site: CompiledSite): SeenRecord {
  return {
    location: areaId(site, s.location), lastMoveAt: s.lastMoveAt,
    lastReader: readerId(site, s.lastReader), lastReaderAt: s.lastReaderAt,
    freePass: s.freePass, exempt: s.exempt, supervisor: s.supervisor,
    pending: s.pending ? { reader: readerId(site, s.pending.reader), to: areaId(site, s.pending.to), deadline: s.pending.deadline } : null,
  };
}

/**
 * One violation with its facts (SPEC 13.3), for a move through reader r judged at time t
 * (the clock; an upload's own ts) against `seen`.
 */
export function violationRecord(v: Violation, seen: Seen, site: CompiledSite, r: number, t: number): ViolationRecord {
  const area = areaId(site, v.area);
  const out: ViolationRecord = { code: v.code, mode: v.mode, area };
  const location = areaId(site, seen.location);
  switch (v.code) {
    case 'reuse':
      out.reader = readerId(site, r); out.lockout = site.reuseLockoutMs[r] ?? 0; out.sinceMs = t - seen.lastReaderAt; break;
    case 'exit_not_entered': case 'reentry': out.location = location; break;
    case 'sequence': out.from = areaId(site, site.readerFrom[r] ?? -1); out.location = location; break;
    case 'occupancy': out.count = v.count ?? 0; out.max = site.maxOccupancy[v.area] ?? -1; break;
    case 'last_supervisor': out.others = v.count ?? 0; break;
    case 'no_supervisor': case 'lockdown': break;
  }
  return out;
}

export function violationRecords(vs: readonly Violation[], seen: Seen, site: CompiledSite, r: number, t: number): ViolationRecord[] {
  return vs.map((v) => violationRecord(v, seen, site, r, t));
}
