/**
 * Wall-clock arithmetic in one IANA time zone, on top of Intl (correct for
 * every zone the runtime knows, DST both ways, historic offsets).
 *
 * A "wall" value is the local date-time written as milliseconds since
 * 1970-01-01T00:00 *as if it were UTC*; `wall(t) - t` is the zone's offset
 * at instant t. Local days are numbered like epoch days: day = floor(wall / DAY).
 */
export const DAY = 86_400_000;
export const MINUTE = 60_000;

/** Monday = 0 ... Sunday = 6 for a local day number (1970-01-01 was a Thursday). */
export function weekdayOf(day: number): number {
  return (((day + 3) % 7) + 7) % 7;
}

export class Zone {
  readonly name: string;
  private readonly fmt: Intl.DateTimeFormat;

  constructor(name: string) {
    this.name = name;
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  }

  /** Local wall time of instant t. */
  wall(t: number): number {
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    for (const p of this.fmt.formatToParts(t)) {
      switch (p.type) {
        case 'year': y = +p.value; break;
        case 'month': mo = +p.value; break;
        case 'day': d = +p.value; break;
        case 'hour': h = +p.value; break;
        case 'minute': mi = +p.value; break;
        case 'second': s = +p.value; break;
      }
    }
    const ms = t - Math.floor(t / 1000) * 1000;
    return Date.UTC(y, mo - 1, d, h, mi, s) + ms;
  }

  offset(t: number): number { return this.wall(t) - t; }

  /** Local day number of instant t. */
  dayOf(t: number): number { return Math.floor(this.wall(t) / DAY); }

  /** Every instant whose wall time is exactly w: one normally, two in a fall-back overlap, none in a gap. */
  occurrences(w: number): number[] {
    const out: number[] = [];
    for (const o of [this.offset(w - DAY), this.offset(w + DAY)]) {
      const t = w - o;
      if (this.wall(t) === w && !out.includes(t)) out.push(t);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * SPEC 12 "Local times": the instant of wall time w; in a fall-back
   * overlap the first occurrence; in a spring-forward gap the first instant
   * after the gap (the first whose wall time is >= w).
   */
  instantOf(w: number): number {
    const occ = this.occurrences(w);
    if (occ.length) return occ[0]!;
    const a = w - this.offset(w - DAY), b = w - this.offset(w + DAY);
    let lo = Math.min(a, b), hi = Math.max(a, b); // wall(lo) < w <= wall(hi)
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.wall(mid) >= w) hi = mid; else lo = mid;
    }
    return hi;
  }

  /** Instants in (from, to] where the offset changes (scanned in 6-hour steps: transitions are months apart). */
  transitions(from: number, to: number): number[] {
    const out: number[] = [];
    const STEP = 6 * 3_600_000;
    let x = from, ox = this.offset(x);
    while (x < to) {
      const y = Math.min(x + STEP, to), oy = this.offset(y);
      if (oy !== ox) {
        let lo = x, hi = y; // offset(lo) = ox, offset(hi) = oy
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if (this.offset(mid) === ox) lo = mid; else hi = mid;
        }
        out.push(hi);
      }
      x = y; ox = oy;
    }
    return out;
  }
}
