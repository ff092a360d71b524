/**
 * Office day, 06:00 to 06:00: `size` employees (default 3 000) badge in at
 * the lobby or garage and out through badge-out readers. Injected:
 * pass-backs at the lobby, lunch-time tailgaters who later badge out
 * (exit_not_entered, soft) or try the strict lab (sequence), double badges at
 * the lab (reuse soft + re-entry + sequence), people who leave by a free exit
 * and come back before or after the 10 h presence timeout, and late workers
 * whose presence the midnight reset clears.
 */
import { Rng } from './rng.js';
import { HOUR, MIN, SEC, ScenarioBuilder, type Scenario, type ScenarioOptions, type Walk } from './scenario.js';
import { officeSite } from './sites.js';

export const OFFICE_START = Date.UTC(2026, 2, 3, 6, 0); // a Tuesday, 06:00 UTC
const at = (h: number, m = 0) => OFFICE_START + (h - 6) * HOUR + m * MIN;

export function officeScenario(o: ScenarioOptions = {}): Scenario {
  const seed = o.seed ?? 1, n = o.size ?? 3000, base = o.credBase ?? 500_000;
  const rng = new Rng(seed);
  const b = new ScenarioBuilder(officeSite(), OFFICE_START, OFFICE_START + 24 * HOUR);
  const door = (dir: 'in' | 'out') => (rng.chance(0.8) ? `lobby-${dir}-${rng.range(1, 4)}` : `garage-${dir}`);
  const lab = (p: Walk, t: number): number => {
    p.badge('lab-in', t, 'lab');
    if (rng.chance(0.1)) { t += rng.range(3, 20) * SEC; p.badge('lab-in', t, 'lab-double'); }
    t += rng.range(20, 90) * MIN;
    p.badge('lab-out', t, 'lab');
    return t;
  };
  for (let i = 0; i < n; i++) {
    const p = b.person(base + i);
    const kind = rng.next();
    if (kind < 0.05) {
      // late worker: in the evening, out by a free exit before midnight, back after the reset
      let t = at(20) + rng.range(0, 180) * MIN;
      p.badge(door('in'), t, 'late');
      t = Math.max(t + 10 * MIN, at(23) + rng.range(0, 50) * MIN);   // free exit, no event
      t = at(24, 10) + rng.range(0, 110) * MIN;
      p.badge(door('in'), t, 'after-reset');
      t += rng.range(30, 150) * MIN;
      p.badge(door('out'), t, 'late');
    } else if (kind < 0.09) {
      // forgetful: leaves by a free exit, comes back before or after the presence timeout
      let t = at(7) + rng.range(0, 180) * MIN;
      const arrived = t;
      p.badge(door('in'), t, 'arrive');
      t = arrived + rng.range(2 * 60, 13 * 60) * MIN;
      p.badge(door('in'), t, 'return-after-free-exit');
      t += rng.range(60, 180) * MIN;
      p.badge(door('out'), t, 'leave');
    } else {
      let t = at(7) + rng.range(0, 180) * MIN;
      p.badge(door('in'), t, 'arrive');
      if (rng.chance(0.02)) { t += rng.range(1, 30) * MIN; p.badge(`lobby-in-${rng.range(1, 4)}`, t, 'passback'); }
      if (rng.chance(0.1)) t = lab(p, t + rng.range(10, 90) * MIN);
      if (rng.chance(0.5)) {
        t = Math.max(t + 10 * MIN, at(12) + rng.range(0, 90) * MIN);
        p.badge(door('out'), t, 'lunch');
        t += rng.range(30, 60) * MIN;
        if (rng.chance(0.06)) {
          // tailgates back in: no event; may then try the strict lab
          if (rng.chance(0.3)) t = lab(p, t + rng.range(10, 60) * MIN);
        } else p.badge(door('in'), t, 'lunch');
      }
      if (rng.chance(0.15)) t = lab(p, t + rng.range(10, 90) * MIN);
      t = Math.max(t + 10 * MIN, at(16) + rng.range(0, 180) * MIN);
      if (rng.chance(0.9)) p.badge(door('out'), t, 'leave');
    }
    p.done();
  }
  return b.finish('office', seed);
}
