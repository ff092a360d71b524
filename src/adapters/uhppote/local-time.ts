/**
 * UHPPOTE controllers stamp events in local time; the site's `timezone`
 * says which. Converted with the config's Zone (src/config/tz.ts), by the
 * SPEC 12 "Local times" rule: a time that occurs twice (clocks fall back)
 * is the first instant, one that does not exist (clocks spring forward) is
 * the first instant after the gap.
 *
 * Intl is slow (~10 µs a call), so each zone caches, per 15-minute window of
 * wall time, the offset when one offset maps the whole window one-to-one
 * (both ends have a single occurrence at the same offset: no gap or overlap
 * inside, since real ones last 30 minutes or more). Windows touching a
 * transition are not cached and take the exact path.
 */
import { ApbError } from '../../errors.js';
import { Zone } from '../../config/tz.js';

const WINDOW = 15 * 60_000;
const MAX_CACHED = 50_000;

interface CachedZone { zone: Zone; offsets: Map<number, number | null> }
const zones = new Map<string, CachedZone>();

function zoneFor(tz: string): CachedZone {
  let z = zones.get(tz);
  if (!z) {
    try { z = { zone: new Zone(tz), offsets: new Map() }; } catch { throw new ApbError('invalid_config', `timezone: "${tz}" is not an IANA time zone this runtime knows`); }
    zones.set(tz, z);
  }
  return z;
}

/** wall: local date-time as ms "as if UTC" → the instant */
export function wallToInstant(tz: string, wall: number): number {
  const z = zoneFor(tz);
  const k = Math.floor(wall / WINDOW);
  let o = z.offsets.get(k);
  if (o === undefined) {
    const start = k * WINDOW, end = start + WINDOW - 1;
    const a = z.zone.occurrences(start), b = z.zone.occurrences(end);
    o = a.length === 1 && b.length === 1 && start - a[0]! === end - b[0]! ? start - a[0]! : null;
    if (z.offsets.size >= MAX_CACHED) z.offsets.clear();
    z.offsets.set(k, o);
  }
  return o === null ? z.zone.instantOf(wall) : wall - o;
}

export function localToUtc(tz: string, year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  return wallToInstant(tz, Date.UTC(year, month - 1, day, hour, minute, second));
}
