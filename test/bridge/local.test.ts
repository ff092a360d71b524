/**
 * Local decisions (policy `local`) with the engine's own WASM core over the
 * cut-down site: what it keeps of the site, decisions from the known state
 * (the rules of the engine: reentry, sequence, reuse), the facility
 * allowlist, grants waiting for a passage, and the engine's state replacing
 * the bridge's after an outage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSiteText } from '../../src/config/load.js';
import { LocalDecider, localSite } from '../../src/bridge/offline/local.js';
import type { KnownState } from '../../src/bridge/offline/store.js';

const SITE = loadSiteText(`site: local-test
timezone: UTC
areas:
  - { id: campus, entry: hard, maxOccupancy: 5 }
  - { id: building, parent: campus, entry: hard }
  - { id: lab, parent: building, entry: hard, strict: true }
  - { id: annex, parent: campus, entry: hard }
  - { id: pool, commitOn: passage, passageTimeout: 5 }
readers:
  - { id: b-in, from: campus, to: building, controller: gate, reuseLockout: 60 }
  - { id: lab-in, from: building, to: lab, controller: gate }
  - { id: pool-in, from: outside, to: pool, controller: gate }
  - { id: annex-in, from: campus, to: annex, controller: other }
controllers:
  - { id: gate, token: gate-token-0123456789abcdef }
  - { id: other, token: other-token-0123456789abcdef }
`);
const READERS = ['b-in', 'lab-in', 'pool-in'];
const T = 1_800_000_000_000;
const at = (location: string | null, t: number, reader: string | null = null): KnownState => ({ location, lastMoveAt: t, lastReader: reader, lastReaderAt: reader ? t : 0, exempt: false, freePass: false });

function decider(known: [string, KnownState][] = [], facilities: number[] | null = null) {
  const saved = new Map<string, KnownState>();
  const d = new LocalDecider(SITE, 'gate', READERS, new Map(known), facilities ? new Set(facilities) : null, (c, s) => saved.set(c, s));
  return { d, saved };
}

test('the cut-down site: the readers\' areas with their ancestors, no occupancy limits, only this controller', () => {
  const s = localSite(SITE, 'gate', READERS);
  assert.deepEqual(s.areaIds, ['outside', 'campus', 'building', 'lab', 'pool']);
  assert.deepEqual(s.readerIds, READERS);
  assert.deepEqual(s.controllerIds, ['gate']);
  assert.ok([...s.maxOccupancy].every((m) => m === -1), 'maxOccupancy dropped: the bridge cannot count the others');
  assert.ok(s.readerPassageMs[s.readerIndex.get('pool-in')!]! > 0);
});

test('decides from the known state like the engine, and remembers its grants', () => {
  const { d, saved } = decider([['1:1', at('campus', T - 60_000)], ['1:2', at('building', T - 60_000)], ['1:3', at('annex', T - 60_000)]]);
  assert.deepEqual(d.decide('1:1', 'b-in', T), { grant: true, reason: 'ok', area: 'building' });
  assert.equal(saved.get('1:1')?.location, 'building');
  assert.equal(d.decide('1:1', 'b-in', T + 1000).reason, 'reuse', 'reuse lockout at the same reader');
  assert.equal(d.decide('1:2', 'b-in', T).reason, 'reentry', 'already in the building');
  assert.deepEqual(d.decide('1:2', 'lab-in', T).grant, true);
  // annex is outside the cut-down site: the credential counts as in campus, not in the building
  assert.equal(d.decide('1:3', 'lab-in', T).reason, 'sequence', 'strict lab: not coming from the building');
  assert.equal(d.decide('1:3', 'b-in', T).grant, true);
  assert.equal(d.decide('1:9', 'annex-in', T).reason, 'unknown_reader', 'another controller\'s reader');
});

test('unknown credentials: decided as the engine would, or only listed facility codes', () => {
  assert.equal(decider().d.decide('99:1', 'b-in', T).grant, true, 'no allowlist: first move allowed');
  const { d } = decider([['99:7', at('campus', T - 1000)]], [67]);
  assert.deepEqual(d.decide('99:1', 'b-in', T), { grant: false, reason: 'not_allowlisted', area: null });
  assert.equal(d.decide('pin:1234', 'b-in', T).reason, 'not_allowlisted');
  assert.equal(d.decide('67:1', 'b-in', T).grant, true);
  assert.equal(d.decide('99:7', 'b-in', T).grant, true, 'a known credential needs no allowlist');
});

test('grants at a passage reader wait for the passage', () => {
  const { d } = decider();
  d.granted('5:5', 'pool-in', T);
  assert.equal(d.locationOf('5:5'), null, 'not moved before the passage');
  d.passage('5:5', 'pool-in', T + 1000);
  assert.equal(d.locationOf('5:5'), 'pool');
  const local = decider().d;
  assert.equal(local.decide('6:6', 'pool-in', T).grant, true);
  assert.equal(local.locationOf('6:6'), null, 'the local core keeps it pending');
  local.passage('6:6', 'pool-in', T + 6000);
  assert.equal(local.locationOf('6:6'), null, 'a passage after the timeout applies nothing');
  assert.equal(local.decide('6:6', 'pool-in', T + 7000).grant, true);
  local.passage('6:6', 'pool-in', T + 8000);
  assert.equal(local.locationOf('6:6'), 'pool');
});

test('the engine\'s state replaces the bridge\'s', () => {
  const { d, saved } = decider([['1:1', at('building', T - 1000, 'b-in')]]);
  assert.equal(d.decide('1:1', 'b-in', T).grant, false);
  d.refresh([['1:1', at('campus', T + 500)]]);
  assert.equal(saved.get('1:1')?.location, 'campus');
  assert.equal(d.locationOf('1:1'), 'campus');
  assert.equal(d.decide('1:1', 'b-in', T + 1000).grant, true);
  d.refresh([['1:1', at(null, T + 2000)]]);
  assert.equal(d.locationOf('1:1'), null, 'reset by an operator');
});
