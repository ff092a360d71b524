/**
 * The scenario generators' ground truth against the engine, in process and
 * in simulated time: small seeded runs of each scenario through the WASM
 * core and the reference core must find exactly the violations injected,
 * badge by badge. Also: the ground truth model on SPEC worked examples, the
 * stream is deterministic per seed, and the checker does catch a difference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Checker } from '../../src/sim/check.js';
import { runInProcess } from '../../src/sim/inprocess.js';
import { SCENARIOS, type ScenarioName } from '../../src/sim/scenarios.js';
import { badge, newPerson, passage, truthSite } from '../../src/sim/truth.js';

const SMALL: Record<ScenarioName, { size: number; codes: string[] }> = {
  stadium: { size: 3000, codes: ['reentry'] },
  metro: { size: 6000, codes: ['reuse', 'reentry', 'exit_not_entered'] },
  office: { size: 500, codes: ['reentry', 'reuse', 'sequence', 'exit_not_entered'] },
};

for (const name of Object.keys(SMALL) as ScenarioName[]) {
  test(`${name}: violations found == violations injected (wasm and reference, simulated time)`, () => {
    const sc = SCENARIOS[name]({ size: SMALL[name].size, seed: 11 });
    assert.ok(sc.exact, `${name} site is fully modelled`);
    assert.ok(sc.events.length > SMALL[name].size, 'a stream was generated');
    for (let i = 1; i < sc.events.length; i++) assert.ok(sc.events[i - 1]!.at <= sc.events[i]!.at, 'time-ordered');
    for (const core of ['wasm', 'reference'] as const) {
      const r = runInProcess(sc, { core });
      const s = r.summary;
      assert.equal(s.mismatches, 0, `${core}: ${JSON.stringify(s.samples.slice(0, 3))}`);
      assert.deepEqual(s.found, s.injected, `${core}: counts by code`);
      for (const c of SMALL[name].codes) assert.ok((s.injected[c] ?? 0) > 0, `${name} injects ${c}`);
      assert.equal(s.badges + s.passages, sc.events.length);
      assert.ok(s.denied > 0 && s.granted > s.denied);
    }
  });
}

test('the same seed gives the same stream, another seed another', () => {
  const a = SCENARIOS.office({ size: 200, seed: 5 }), b = SCENARIOS.office({ size: 200, seed: 5 }), c = SCENARIOS.office({ size: 200, seed: 6 });
  assert.deepEqual(a.events, b.events);
  assert.notDeepEqual(a.events.map((e) => e.at), c.events.map((e) => e.at));
});

test('timing-dependent people are marked: office has some (timeouts, reset), stadium none', () => {
  const office = SCENARIOS.office({ size: 500, seed: 3 });
  assert.ok(office.timingPersons > 0 && office.timingPersons < office.persons);
  assert.ok(office.events.some((e) => e.timing) && office.events.some((e) => !e.timing));
  assert.equal(SCENARIOS.stadium({ size: 500, seed: 3 }).timingPersons, 0);
});

test('ground truth model follows SPEC 4/5/12 on worked examples', () => {
  const s = truthSite({
    timezone: 'UTC',
    areas: [{ id: 'building', entry: 'hard', presenceTimeout: 3600 }, { id: 'lab', parent: 'building', entry: 'hard', strict: true }, { id: 'hall', commitOn: 'passage', passageTimeout: 10, entry: 'hard', resetAt: ['00:00'] }],
    readers: [
      { id: 'R1', from: 'outside', to: 'building', controller: 'c' }, { id: 'R2', from: 'building', to: 'outside', controller: 'c' },
      { id: 'R3', from: 'building', to: 'lab', controller: 'c', reuseLockout: 5 }, { id: 'H', from: 'outside', to: 'hall', controller: 'c' },
    ],
    controllers: [{ id: 'c', token: 't-long-test-token' }],
  }, { from: Date.UTC(2026, 0, 1, 12), to: Date.UTC(2026, 0, 2, 12) });
  const r = (id: string) => s.readerIndex.get(id)!;
  const T = Date.UTC(2026, 0, 1, 12);
  const p = newPerson();
  assert.deepEqual(badge(s, p, r('R1'), T, 'sim'), { grant: true, codes: [] });
  assert.deepEqual(badge(s, p, r('R1'), T + 1000, 'sim'), { grant: false, codes: ['reentry'] });
  assert.deepEqual(badge(s, p, r('R2'), T + 2000, 'sim'), { grant: true, codes: [] });
  // tailgates in: location outside, strict lab → sequence
  assert.deepEqual(badge(s, p, r('R3'), T + 3000, 'sim'), { grant: false, codes: ['sequence'] });
  // presence timeout: R1 at T+1h after the last move (T+2s) is not a re-entry yet, after it is allowed
  const q = newPerson();
  badge(s, q, r('R1'), T, 'sim');
  assert.deepEqual(badge(s, q, r('R1'), T + 3_599_999, 'sim').codes, ['reentry']);
  assert.deepEqual(badge(s, q, r('R1'), T + 3_600_000, 'sim'), { grant: true, codes: [] });
  assert.deepEqual(badge(s, q, r('R1'), T + 3_600_001, 'zero').codes, ['reentry'], 'the zero clock never times out');
  // reuse at the lab within the lockout, listed before reentry and sequence
  const l = newPerson();
  badge(s, l, r('R1'), T, 'sim'); badge(s, l, r('R3'), T + 1000, 'sim');
  assert.deepEqual(badge(s, l, r('R3'), T + 2000, 'sim'), { grant: false, codes: ['reuse', 'reentry', 'sequence'] });
  // passage: applied only before the deadline; the midnight reset clears the hall
  const h = newPerson();
  badge(s, h, r('H'), T, 'sim'); passage(s, h, r('H'), T + 10_000, 'sim');
  assert.equal(h.loc, -1, 'passage at the deadline is late');
  badge(s, h, r('H'), T + 20_000, 'sim'); passage(s, h, r('H'), T + 29_999, 'sim');
  assert.equal(h.loc, s.areaIds.indexOf('hall'));
  assert.deepEqual(badge(s, h, r('H'), Date.UTC(2026, 0, 1, 23), 'sim').codes, ['reentry']);
  assert.deepEqual(badge(s, h, r('H'), Date.UTC(2026, 0, 2, 0, 1), 'sim'), { grant: true, codes: [] }, 'after the midnight reset');
});

test('the checker reports a badge decided differently from the ground truth', () => {
  const sc = SCENARIOS.stadium({ size: 300, seed: 2 });
  const ev = sc.events.find((e) => e.expect && e.expect.codes.length === 0)!;
  const c = new Checker((r) => sc.truth.readers[r]!.id);
  c.badge(ev, true, []);
  assert.equal(c.s.mismatches, 0);
  c.badge(ev, false, [{ code: 'reentry', mode: 'hard' }]);
  assert.equal(c.s.mismatches, 1);
  assert.equal(c.s.samples[0]!.expected, 'grant');
  assert.equal(c.s.samples[0]!.found, 'deny [reentry]');
  assert.deepEqual(c.s.found, { reentry: 1 });
});
