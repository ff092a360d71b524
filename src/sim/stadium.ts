/**
 * Stadium gate opening: `size` ticket holders (default 60 000) arrive over
 * 40 minutes with a peak near kick-off. Turnstiles confirm passage (the
 * stadium commits on passage). Injected: 2 % pass-back attempts (the ticket
 * handed back over the fence and badged again while its holder is inside),
 * 1 % badge-but-no-push re-badges, 5 % legitimate exits and re-entries, and
 * 3 % VIP lounge visits of which a fifth badge the lounge twice.
 */
import { Rng } from './rng.js';
import { HOUR, MIN, SEC, ScenarioBuilder, type Scenario, type ScenarioOptions } from './scenario.js';
import { STADIUM_GATES, STADIUM_IN_LANES, STADIUM_OUT_LANES, stadiumSite } from './sites.js';

export const STADIUM_START = Date.UTC(2026, 2, 7, 17, 20); // Saturday, gates open 40 min before kick-off
const WINDOW = 40 * MIN;

export function stadiumScenario(o: ScenarioOptions = {}): Scenario {
  const seed = o.seed ?? 1, n = o.size ?? 60_000, base = o.credBase ?? 700_000_000;
  const rng = new Rng(seed);
  const b = new ScenarioBuilder(stadiumSite(), STADIUM_START, STADIUM_START + 2 * HOUR);
  const inLane = (g: string) => `${g}-in-${rng.range(1, STADIUM_IN_LANES)}`;
  const outLane = (g: string) => `${g}-out-${rng.range(1, STADIUM_OUT_LANES)}`;
  for (let i = 0; i < n; i++) {
    const p = b.person(base + i);
    const gate = rng.pick(STADIUM_GATES);
    let t = STADIUM_START + rng.triangular(0, 0.7 * WINDOW, WINDOW);
    let lane = inLane(gate);
    p.badge(lane, t, 'entry');
    if (rng.chance(0.01)) { t += rng.range(12, 40) * SEC; lane = inLane(gate); p.badge(lane, t, 'rebadge'); }
    t += rng.range(1, 4) * SEC;
    p.passage(lane, t);
    if (rng.chance(0.02)) { t += rng.range(30, 600) * SEC; p.badge(inLane(rng.pick(STADIUM_GATES)), t, 'passback'); }
    if (rng.chance(0.03)) {
      t += rng.range(2, 15) * MIN; p.badge('vip-in', t, 'vip');
      if (rng.chance(0.2)) { t += rng.range(60, 300) * SEC; p.badge('vip-in', t, 'vip-passback'); }
      t += rng.range(10, 40) * MIN; p.badge('vip-out', t, 'vip');
    }
    if (rng.chance(0.05)) {
      t += rng.range(5, 20) * MIN; lane = outLane(gate); p.badge(lane, t, 'exit'); t += rng.range(1, 3) * SEC; p.passage(lane, t);
      t += rng.range(2, 10) * MIN; lane = inLane(gate); p.badge(lane, t, 'reentry-legit'); t += rng.range(1, 3) * SEC; p.passage(lane, t);
    }
    p.done();
  }
  return b.finish('stadium', seed);
}
