/**
 * Metro rush hour: a card base of 2 M (`cards`), `size` trips (default
 * 400 000) from 06:30 to 09:00 peaking at 08:00, over `stations` stations
 * (default 120) of 3 tap-in and 3 tap-out gates (720 readers). Injected:
 * 1.5 % pass-backs at the same gate within the 20 s lockout (reuse and
 * re-entry), 0.5 % at another gate of the station (re-entry), 0.3 % double
 * tap-outs, gate jumpers who then tap out (exit_not_entered when their
 * location is known), 10 % of cards making a second trip.
 */
import { Rng } from './rng.js';
import { MIN, SEC, ScenarioBuilder, type Scenario, type ScenarioOptions } from './scenario.js';
import { METRO_GATES, metroSite, stationId } from './sites.js';

export const METRO_START = Date.UTC(2026, 2, 3, 6, 30); // a Tuesday
const WINDOW = 150 * MIN;

export function metroScenario(o: ScenarioOptions & { stations?: number; cards?: number } = {}): Scenario {
  const seed = o.seed ?? 1, trips = o.size ?? 400_000, stations = o.stations ?? 120;
  const cards = Math.max(o.cards ?? 2_000_000, trips), base = o.credBase ?? 3_000_000_000;
  const rng = new Rng(seed);
  const b = new ScenarioBuilder(metroSite(stations), METRO_START, METRO_START + 4 * 3_600_000);
  const gateIn = (s: number) => `${stationId(s)}-in-${rng.range(1, METRO_GATES)}`;
  const gateOut = (s: number) => `${stationId(s)}-out-${rng.range(1, METRO_GATES)}`;
  const other = (s: number) => (s + 1 + rng.int(stations - 1)) % stations;
  // distinct cards drawn from the base: i * 1_000_003 mod cards is a permutation when gcd = 1
  const STRIDE = 1_000_003;
  let made = 0;
  for (let i = 0; made < trips; i++) {
    const p = b.person(base + ((i * STRIDE) % cards));
    let t = METRO_START + rng.triangular(0, 90 * MIN, WINDOW);
    let s = rng.int(stations);
    const nTrips = rng.chance(0.1) ? 2 : 1;
    for (let k = 0; k < nTrips && made < trips; k++, made++) {
      const jump = k === 0 ? rng.chance(0.005) : rng.chance(0.1);
      if (!jump) {
        const g = gateIn(s);
        p.badge(g, t, 'tap-in');
        if (rng.chance(0.015)) { t += rng.range(2, 8) * SEC; p.badge(g, t, 'passback-same-gate'); }
        else if (rng.chance(0.005)) { t += rng.range(10, 60) * SEC; p.badge(gateIn(s), t, 'passback'); }
      }
      t += rng.range(5, 40) * MIN;
      s = other(s);
      const g = gateOut(s);
      p.badge(g, t, jump ? 'jumper-tap-out' : 'tap-out');
      if (rng.chance(0.003)) { t += rng.range(1, 5) * SEC; p.badge(g, t, 'double-tap-out'); }
      t += rng.range(30, 90) * MIN;
    }
    p.done();
  }
  return b.finish('metro', seed);
}
