/**
 * WASM core vs reference model (DESIGN "the oracle of property tests"):
 * random sites (area trees up to depth 3, every policy setting, schedules
 * and resetAt in Europe/London with streams crossing DST changes) and random
 * op streams (badges, passages, offline uploads older and newer than the
 * last move, operator actions, clock jumps, snapshot/restore and reconfigure
 * mid-stream) through createEngine(core 'wasm') and createEngine(core
 * 'reference'): every result, every credential's state, every area's
 * occupancy, every area's muster list (credentialsIn, paged) and the store
 * size must be identical after every step.
 *
 * Reproduce a failure with APB_PROP_SEED=<seed> (printed with the path by
 * fast-check); APB_PROP_RUNS raises the run count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadSiteText } from '../../src/config/load.js';
import type { CompiledSite } from '../../src/config/types.js';
import { createEngine } from '../../src/engine/engine.js';
import type { Cred } from '../../src/engine/cred.js';
import type { CoreOp, Engine, InsideRow } from '../../src/engine/types.js';
import { createReferenceCore } from '../../src/engine/reference-core.js';
import { bin, int, str } from './harness.js';

const AREA_IDS = ['a1', 'a2', 'a3', 'a4', 'a5'];
const READER_IDS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
const TIMES = ['00:00', '01:30', '02:00', '03:00', '08:00', '18:00', '23:30'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const CREDS: Cred[] = [int(1), int(2), int(2n ** 64n - 1n), str('1'), str('ticket 7'), bin('01'), bin('ff00aa')];
const STARTS = [Date.UTC(2026, 2, 28, 22), Date.UTC(2026, 9, 24, 22), Date.UTC(2026, 0, 5, 7, 55)]; // spring DST, autumn DST, a Monday

const mode = fc.constantFrom('off', 'soft', 'hard');
const windowArb = fc.record({
  days: fc.uniqueArray(fc.constantFrom(...DAYS), { minLength: 1, maxLength: 7 }),
  from: fc.constantFrom(...TIMES),
  to: fc.constantFrom(...TIMES),
}).filter((w) => w.from !== w.to);

const areaPolicy = fc.record({
  entry: mode, exit: mode, strict: fc.boolean(),
  presenceTimeout: fc.constantFrom(0, 0, 30, 120),
  schedule: fc.oneof(fc.constant('always' as const), fc.array(windowArb, { minLength: 1, maxLength: 2 })),
  resetAt: fc.oneof(fc.constant([] as string[]), fc.uniqueArray(fc.constantFrom(...TIMES), { minLength: 1, maxLength: 2 })),
  maxOccupancy: fc.constantFrom(null, null, 1, 2, 3),
  commitOn: fc.constantFrom('grant', 'grant', 'passage'),
  passageTimeout: fc.constantFrom(5, 10, 20),
  supervision: fc.constantFrom('off', 'off', 'soft', 'hard'),
});

/** a random site config object (JSON is valid YAML); parents only among earlier areas, depth <= 3 */
const siteArb = fc.record({
  nAreas: fc.integer({ min: 1, max: 5 }),
  parents: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
  policies: fc.array(areaPolicy, { minLength: 5, maxLength: 5 }),
  readers: fc.array(fc.record({ from: fc.nat(), to: fc.nat(), reuseLockout: fc.constantFrom(0, 0, 10, 60), reuseMode: fc.constantFrom('soft', 'hard') }), { minLength: 1, maxLength: 6 }),
  forgetAfter: fc.constantFrom(0, 0, 300, 3600),
}).map((g) => {
  const ids = AREA_IDS.slice(0, g.nAreas);
  const depth: Record<string, number> = { outside: 0 };
  const areas = ids.map((id, i) => {
    const choices = ['outside', ...ids.slice(0, i).filter((p) => depth[p]! < 3)];
    const parent = choices[g.parents[i]! % choices.length]!;
    depth[id] = depth[parent]! + 1;
    return { id, parent, ...g.policies[i]! };
  });
  const all = ['outside', ...ids];
  const readers = g.readers.map((r, i) => {
    const from = all[r.from % all.length]!;
    let to = all[r.to % all.length]!;
    if (to === from) to = all[(r.to + 1) % all.length]!;
    return { id: READER_IDS[i]!, from, to, controller: 'c', reuseLockout: r.reuseLockout, reuseMode: r.reuseMode };
  });
  return { site: 'prop', timezone: 'Europe/London', forgetAfter: g.forgetAfter, areas, readers, controllers: [{ id: 'c', token: 't-long-test-token' }] };
});

type Step =
  | { k: 'ops'; dt: number; ops: OpGen[] }
  | { k: 'tick'; dt: number }
  | { k: 'snapshot' }
  | { k: 'reconfigure'; to: 0 | 1 };

type OpGen =
  | { t: 'badge' | 'passage'; c: number; r: number }
  | { t: 'offline'; c: number; r: number; back: number; granted: boolean }
  | { t: 'forgive' | 'reset'; c: number }
  | { t: 'exempt'; c: number; on: boolean }
  | { t: 'setLocation'; c: number; a: number }
  | { t: 'resetArea'; a: number }
  | { t: 'supervisor'; c: number; on: boolean }
  | { t: 'lockdown'; a: number; on: boolean };

const dtArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 15_000 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 30 * 60_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 * 3_600_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: -5_000, max: -1 }) }, // a now below the clock
);
const credIx = fc.nat({ max: CREDS.length - 1 });
const readerIx = fc.integer({ min: -1, max: 5 }); // -1: unknown reader; >= site's count: also unknown
const areaIx = fc.nat({ max: 5 });
const opArb: fc.Arbitrary<OpGen> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('badge' as const), c: credIx, r: readerIx }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('passage' as const), c: credIx, r: readerIx }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('offline' as const), c: credIx, r: readerIx, back: fc.integer({ min: -10_000, max: 2 * 3_600_000 }), granted: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constantFrom('forgive' as const, 'reset' as const), c: credIx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('exempt' as const), c: credIx, on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('setLocation' as const), c: credIx, a: areaIx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('resetArea' as const), a: areaIx }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('supervisor' as const), c: credIx, on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('lockdown' as const), a: areaIx, on: fc.boolean() }) },
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ k: fc.constant('ops' as const), dt: dtArb, ops: fc.array(opArb, { minLength: 1, maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), dt: dtArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('snapshot' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('reconfigure' as const), to: fc.constantFrom(0 as const, 1 as const) }) },
);

function toOp(g: OpGen, site: CompiledSite, clock: number): CoreOp {
  const reader = (r: number): number => (r < site.readerIds.length ? r : -1);
  const area = (a: number): number => a % site.areaIds.length;
  switch (g.t) {
    case 'badge': case 'passage': return { op: g.t, cred: CREDS[g.c]!, reader: reader(g.r) };
    case 'offline': return { op: 'offline', cred: CREDS[g.c]!, reader: reader(g.r), ts: Math.max(0, clock - g.back), granted: g.granted };
    case 'forgive': case 'reset': return { op: g.t, cred: CREDS[g.c]! };
    case 'exempt': return { op: 'exempt', cred: CREDS[g.c]!, on: g.on };
    case 'setLocation': return { op: 'setLocation', cred: CREDS[g.c]!, area: area(g.a) };
    case 'resetArea': return { op: 'resetArea', area: area(g.a) };
    case 'supervisor': return { op: 'supervisor', cred: CREDS[g.c]!, on: g.on };
    case 'lockdown': return { op: 'lockdown', area: Math.max(1, area(g.a)), on: g.on }; // outside is refused before a core
  }
}

function compare(w: Engine, r: Engine, where: string): void {
  assert.equal(w.clock, r.clock, `${where}: clock`);
  for (const c of CREDS) assert.deepEqual(w.state(c), r.state(c), `${where}: state of ${JSON.stringify(c, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
  const refCore = r.core as unknown as { occupancyByScan(a: number): number };
  for (let a = 0; a < r.site.areaIds.length; a++) {
    const ro = r.occupancy(a);
    assert.equal(ro, refCore.occupancyByScan(a), `${where}: reference occupancy of ${r.site.areaIds[a]} vs its definition`);
    assert.equal(w.occupancy(a), ro, `${where}: occupancy of ${r.site.areaIds[a]}`);
    assert.equal(w.supervisors(a), r.supervisors(a), `${where}: supervisors in ${r.site.areaIds[a]}`);
    assert.equal(w.locked(a), r.locked(a), `${where}: lockdown of ${r.site.areaIds[a]}`);
  }
  assert.equal(w.core.size(), r.core.size(), `${where}: size`);
  // the muster list: both cores list the same credentials, in the same record order, exactly those occupancy counts
  for (let a = 0; a < r.site.areaIds.length; a++) {
    const lw = listAll(w, a, 1 + (a % 3)), lr = listAll(r, a, 2);
    assert.deepEqual(lw, lr, `${where}: credentials in ${r.site.areaIds[a]}`);
    assert.equal(lr.length, r.occupancy(a), `${where}: the list of ${r.site.areaIds[a]} has its occupancy's length`);
    assert.equal(new Set(lr.map((x) => x.cred)).size, lr.length, `${where}: no credential twice`);
    for (const x of lr) assert.ok(x.location === a || isBelow(r.site.parent, x.location, a), `${where}: ${x.cred} is in ${r.site.areaIds[a]} or below`);
  }
}

/** every row of engine.credentialsIn(area), paged `max` at a time */
function listAll(e: Engine, area: number, max: number): InsideRow[] {
  const out: InsideRow[] = [];
  for (let from: number | null = 0, n = 0; from !== null; n++) {
    const p = e.credentialsIn(area, from, max);
    assert.ok(p.rows.length <= max && n < 1000);
    out.push(...p.rows);
    from = p.next;
  }
  return out;
}

function isBelow(parent: ArrayLike<number>, loc: number, area: number): boolean {
  for (let x = loc; x > 0; x = parent[x]!) if (parent[x] === area) return true;
  return false;
}

// APB_PROP_OTHER=reference pits the reference model against itself (checks the harness's determinism).
const OTHER = (process.env.APB_PROP_OTHER ?? 'wasm') as 'wasm' | 'reference';

test('WASM core and reference model agree on random sites and streams', () => {
  const seed = process.env.APB_PROP_SEED ? Number(process.env.APB_PROP_SEED) : undefined;
  const numRuns = Number(process.env.APB_PROP_RUNS ?? 150);
  const property = fc.property(siteArb, siteArb, fc.constantFrom(...STARTS), fc.array(stepArb, { minLength: 5, maxLength: 60 }), (cfgA, cfgB, start, steps) => {
    const sites = [loadSiteText(JSON.stringify(cfgA)).site, loadSiteText(JSON.stringify(cfgB)).site];
    let wasm = createEngine(sites[0]!, { core: OTHER });
    let ref = createEngine(sites[0]!, { core: 'reference' });
    let now = start;
    steps.forEach((step, i) => {
      const where = `step ${i} (${step.k})`;
      switch (step.k) {
        case 'ops': {
          now += step.dt;
          const ops = step.ops.map((g) => toOp(g, ref.site, Math.max(now, ref.clock)));
          const rw = wasm.apply(ops, now), rr = ref.apply(ops, now);
          assert.deepEqual(rw, rr, `${where}: results of ${JSON.stringify(step.ops)}`);
          break;
        }
        case 'tick':
          now += step.dt;
          wasm.tick(now); ref.tick(now);
          break;
        case 'snapshot': {
          const sw = wasm.snapshot(), sr = ref.snapshot();
          const site = ref.site;
          wasm = createEngine(site, { core: OTHER }); wasm.restore(sw);
          ref = createEngine(site, { core: 'reference' }); ref.restore(sr);
          break;
        }
        case 'reconfigure': {
          const next = sites[step.to]!;
          const pw = wasm.reconfigure(next), pr = ref.reconfigure(next);
          assert.deepEqual(pw, pr, `${where}: reload reports`);
          break;
        }
      }
      compare(wasm, ref, where);
    });
  });
  fc.assert(property, { numRuns, ...(seed !== undefined ? { seed } : {}), verbose: 0 });
});

test('the reference model\'s incremental counts equal its definition (no WASM involved)', () => {
  // Guards the oracle itself: occupancy() (kept incrementally) vs occupancyByScan() on random streams.
  fc.assert(fc.property(siteArb, fc.array(fc.tuple(dtArb, opArb), { minLength: 1, maxLength: 80 }), (cfg, ops) => {
    const site = loadSiteText(JSON.stringify(cfg)).site;
    const core = createReferenceCore(site) as ReturnType<typeof createReferenceCore> & { occupancyByScan(a: number): number };
    let now = STARTS[0]!;
    for (const [dt, g] of ops) {
      now += Math.max(0, dt);
      core.apply([toOp(g, site, now)], now);
      for (let a = 0; a < site.areaIds.length; a++) assert.equal(core.occupancy(a), core.occupancyByScan(a));
    }
  }), { numRuns: 200 });
});
