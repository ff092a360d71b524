/**
 * A stream for any site (the demo site of `npm start`, a staging site):
 * people enter the busiest top-level area through its entry readers, some
 * visit an area nested in it and come back, some leave and re-enter, and
 * 2 % of tickets are passed back (badged again at an entry while their
 * holder is inside). Readers of controllers that do not speak the native
 * protocol are left out. Passages follow grants where the move commits on
 * passage. 30 % walk into nested areas (and deeper) and back.
 * Expectations come from the same ground truth; a site using features it
 * does not model (e.g. maxOccupancy) is marked inexact. Areas under
 * supervision (SPEC 13.2) are not walked into: the model has no supervisors.
 */
import { Rng } from './rng.js';
import { MIN, SEC, ScenarioBuilder, type Scenario, type ScenarioOptions, type Walk } from './scenario.js';
import type { LooseSite } from './truth.js';

export function siteScenario(cfg: LooseSite, o: ScenarioOptions & { start?: number; name?: string } = {}): Scenario {
  const seed = o.seed ?? 1, n = o.size ?? 5000, base = o.credBase ?? 900_000_000;
  const start = o.start ?? Date.UTC(2026, 2, 7, 17, 20);
  const native = new Set(cfg.controllers.filter((c) => (c.protocol ?? 'native') === 'native').map((c) => c.id));
  const b = new ScenarioBuilder(cfg, start, start + 4 * 3_600_000);
  const s = b.truth;
  const usable = s.readers.filter((r) => native.has(r.controller));
  // the top-level area with the most entry readers from outside
  const top = s.areaIds.map((_, a) => a).filter((a) => s.parent[a] === 0);
  const entriesOf = (a: number) => usable.filter((r) => r.from === 0 && r.to === a);
  const main = top.sort((x, y) => entriesOf(y).length - entriesOf(x).length)[0];
  if (main === undefined || entriesOf(main).length === 0) throw new Error('site has no native reader from outside into a top-level area to simulate arrivals with');
  const entries = entriesOf(main).map((r) => r.id);
  const exits = usable.filter((r) => r.from === main && r.to === 0).map((r) => r.id);
  // nested visits: a reader from an area into one of its children, and one back (if any)
  const supervised = new Set(cfg.areas.filter((a) => (a.supervision ?? 'off') !== 'off').map((a) => s.areaIds.indexOf(a.id)));
  const into = (a: number) => usable.filter((r) => r.from === a && r.to !== a && s.parent[r.to] === a && !supervised.has(r.to)).map((r) => ({
    inId: r.id, to: r.to, outId: usable.find((x) => x.from === r.to && x.to === a)?.id,
  }));
  // SPEC 5: a grant is pending (a passage is sent) when an area the move enters or exits commits on passage
  const chain = (a: number) => { const out: number[] = []; for (let i = a; i > 0; i = s.parent[i]!) out.push(i); return out; };
  const passageNeeded = (id: string) => {
    const r = s.readers[s.readerIndex.get(id)!]!;
    const f = chain(r.from), t = chain(r.to);
    return [...f.filter((x) => !t.includes(x)), ...t.filter((x) => !f.includes(x))].some((x) => s.commitPassage[x]);
  };
  const rng = new Rng(seed);
  const move = (p: Walk, id: string, t: number, tag: string): number => {
    const e = p.badge(id, t, tag);
    if (e.grant && passageNeeded(id)) { t += rng.range(1, 3) * SEC; p.passage(id, t); }
    return t;
  };
  /** walks into a child of `a` (and maybe deeper), then back out to `a` */
  const visit = (p: Walk, a: number, t: number, depth: number): number => {
    const opts = into(a);
    if (!opts.length) return t;
    const v = rng.pick(opts);
    t = move(p, v.inId, t + rng.range(1, 10) * MIN, 'visit');
    if (depth < 3 && rng.chance(0.4)) t = visit(p, v.to, t, depth + 1);
    if (v.outId) t = move(p, v.outId, t + rng.range(5, 30) * MIN, 'visit');
    return t;
  };
  const WINDOW = 40 * MIN;
  for (let i = 0; i < n; i++) {
    const p = b.person(base + i);
    let t = start + rng.triangular(0, 0.7 * WINDOW, WINDOW);
    t = move(p, rng.pick(entries), t, 'entry');
    if (rng.chance(0.02)) { t += rng.range(30, 600) * SEC; t = move(p, rng.pick(entries), t, 'passback'); }
    if (rng.chance(0.3)) t = visit(p, main, t, 1);
    if (exits.length && rng.chance(0.05)) {
      t = move(p, rng.pick(exits), t + rng.range(5, 20) * MIN, 'exit');
      t = move(p, rng.pick(entries), t + rng.range(2, 10) * MIN, 'reentry-legit');
    }
    p.done();
  }
  return b.finish(o.name ?? cfg.site ?? 'site', seed);
}
