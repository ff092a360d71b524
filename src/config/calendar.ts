/**
 * The site's calendar (SPEC 3 `schedule`, `resetAt`; SPEC 12 "Local
 * times"): when periodic resets happen and when schedules are active, in
 * the site's time zone. The engine driver asks it; the cores never see time
 * zones.
 *
 * - resetAt "HH:MM" happens once per local day: in a fall-back overlap at
 *   the first occurrence, in a spring-forward gap at the first instant after
 *   the gap.
 * - A window holds `from <= local < to` on the listed days; with to < from
 *   it runs past midnight and belongs to the day it starts on.
 *
 * Reset instants are cached per local day, and the span up to the next
 * reset is remembered, so a replay asking for tiny spans costs nothing
 * between resets and a year-long span costs one entry per day.
 */
import type { CompiledSite, ScheduleWindow } from './types.js';
import { WEEKDAYS } from './schema.js';
import { DAY, MINUTE, weekdayOf, Zone } from './tz.js';

interface Win { days: boolean[]; from: number; to: number }
const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const MAX_CACHED_DAYS = 4096;

export interface ResetTick { area: number; at: number }

export class SiteCalendar {
  private readonly zone: Zone;
  /** distinct reset minutes of the day, ascending, each with its areas (ascending) */
  private readonly resetMinutes: { minute: number; areas: number[] }[] = [];
  private readonly resetDays = new Map<number, ResetTick[]>();
  /** known: no reset instant r with emptyFrom < r < emptyTo */
  private emptyFrom = 0;
  private emptyTo = -Infinity;
  /** windows per area; null = always */
  private readonly windows: (Win[] | null)[];
  private readonly scheduled: number[];
  private readonly boundaryMinutes: number[];

  constructor(site: CompiledSite) {
    this.zone = new Zone(site.config.timezone);
    const byMinute = new Map<number, number[]>();
    site.config.areas.forEach((a, k) => {
      for (const r of a.resetAt) {
        const m = minutes(r);
        if (!byMinute.has(m)) byMinute.set(m, []);
        byMinute.get(m)!.push(k + 1);
      }
    });
    for (const [minute, areas] of [...byMinute].sort((x, y) => x[0] - y[0])) this.resetMinutes.push({ minute, areas });

    const bounds = new Set<number>();
    this.windows = [null, ...site.config.areas.map((a) => (a.schedule === 'always' ? null : a.schedule.map((w: ScheduleWindow) => {
      const win: Win = { days: WEEKDAYS.map((d) => w.days.includes(d)), from: minutes(w.from), to: minutes(w.to) };
      bounds.add(win.from); bounds.add(win.to);
      return win;
    })))];
    this.scheduled = this.windows.flatMap((w, i) => (w ? [i] : []));
    this.boundaryMinutes = [...bounds].sort((a, b) => a - b);
  }

  /** Periodic resets with fromExcl < at <= toIncl, ordered by instant then area index. */
  resetsBetween(fromExcl: number, toIncl: number): ResetTick[] {
    if (!(toIncl > fromExcl) || this.resetMinutes.length === 0) return [];
    if (fromExcl >= this.emptyFrom && toIncl < this.emptyTo) return [];
    const out: ResetTick[] = [];
    const last = this.zone.dayOf(toIncl) + 1;
    for (let d = this.zone.dayOf(fromExcl) - 1; d <= last; d++) {
      for (const r of this.resetsOfDay(d)) if (r.at > fromExcl && r.at <= toIncl) out.push(r);
    }
    out.sort((a, b) => a.at - b.at || a.area - b.area);
    // Remember the quiet span after toIncl (every day has a reset, so it ends within two days).
    let next = Infinity;
    for (let d = last - 2; d <= last + 2 && next === Infinity; d++) {
      for (const r of this.resetsOfDay(d)) if (r.at > toIncl && r.at < next) next = r.at;
    }
    this.emptyFrom = toIncl;
    this.emptyTo = next;
    return out;
  }

  private resetsOfDay(day: number): ResetTick[] {
    let ticks = this.resetDays.get(day);
    if (ticks) return ticks;
    ticks = [];
    const seen = new Set<string>();
    for (const { minute, areas } of this.resetMinutes) {
      const at = this.zone.instantOf(day * DAY + minute * MINUTE);
      for (const area of areas) {
        // two reset times inside one spring-forward gap land on the same instant: once is enough
        const key = `${area}:${at}`;
        if (!seen.has(key)) { seen.add(key); ticks.push({ area, at }); }
      }
    }
    ticks.sort((a, b) => a.at - b.at || a.area - b.area);
    if (this.resetDays.size >= MAX_CACHED_DAYS) this.resetDays.clear();
    this.resetDays.set(day, ticks);
    return ticks;
  }

  /** Whether violations of `area` are raised at t (areas with schedule "always" are always active). */
  scheduleActive(area: number, t: number): boolean {
    const wins = this.windows[area];
    if (!wins) return true;
    const w = this.zone.wall(t);
    const day = Math.floor(w / DAY);
    return activeAt(wins, weekdayOf(day), Math.floor((w - day * DAY) / MINUTE));
  }

  /** The first instant after t at which any area's scheduleActive changes; Infinity if none ever does. */
  nextScheduleChange(t: number): number {
    if (this.scheduled.length === 0) return Infinity;
    const state = (x: number) => {
      const w = this.zone.wall(x), day = Math.floor(w / DAY), wd = weekdayOf(day), m = Math.floor((w - day * DAY) / MINUTE);
      let bits = '';
      for (const a of this.scheduled) bits += activeAt(this.windows[a]!, wd, m) ? '1' : '0';
      return bits;
    };
    const now = state(t);
    // Between two consecutive candidates the wall clock runs without a jump and
    // crosses no window boundary, so the state is constant there; the week repeats.
    const first = this.zone.dayOf(t);
    const cands = new Set<number>();
    for (let d = first - 1; d <= first + 8; d++) {
      for (const m of this.boundaryMinutes) {
        const w = d * DAY + m * MINUTE;
        const occ = this.zone.occurrences(w);
        for (const x of occ.length ? occ : [this.zone.instantOf(w)]) if (x > t) cands.add(x);
      }
    }
    for (const x of this.zone.transitions(t, t + 10 * DAY)) cands.add(x);
    for (const x of [...cands].sort((a, b) => a - b)) if (state(x) !== now) return x;
    return Infinity;
  }
}

function activeAt(wins: Win[], wd: number, m: number): boolean {
  const prev = (wd + 6) % 7;
  for (const w of wins) {
    if (w.from < w.to) { if (w.days[wd] && m >= w.from && m < w.to) return true; }
    else if ((w.days[wd] && m >= w.from) || (w.days[prev] && m < w.to)) return true;
  }
  return false;
}
