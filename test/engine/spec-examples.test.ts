/**
 * SPEC 4's worked examples and the exact rules of SPEC 5-8 and 12, each a
 * named test, run on every core (reference and WASM).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Bench, CORES, DAY, HOUR, MIN, SEC, T0, bin, int, site, str, vios } from './harness.js';
import type { CompiledSite } from '../../src/config/types.js';

/** SPEC 4's site: outside > building > lab; R1 outside→building, R2 building→outside, R3 building→lab, R4 lab→building */
function buildingSite(building: string, lab = '', extra = ''): CompiledSite {
  return site(`areas:
  - { id: building, ${building} }
  - { id: lab, parent: building${lab ? ', ' + lab : ''} }
readers:
  - { id: R1, from: outside, to: building, controller: c }
  - { id: R2, from: building, to: outside, controller: c }
  - { id: R3, from: building, to: lab, controller: c }
  - { id: R4, from: lab, to: building, controller: c }
${extra}`);
}

for (const factory of CORES) {
  const make = (s: CompiledSite): Bench => new Bench(s, factory.make(s));

  describe(`SPEC examples on the ${factory.kind} core`, () => {
    test('4 example 1: unknown grants, reentry denied, exit then entry granted', () => {
      const b = make(buildingSite('entry: hard'));
      const c = int(1);
      let r = b.badge(c, 'R1', T0);
      assert.equal(r.grant, true); assert.equal(r.reason, 'ok'); assert.equal(b.loc(c), 'building');
      r = b.badge(c, 'R1', T0 + MIN);
      assert.equal(r.grant, false); assert.equal(r.reason, 'reentry'); assert.deepEqual(vios(b.site, r), ['reentry/hard/building']);
      assert.equal(b.core.state(c).lastMoveAt, T0, 'a deny changes nothing');
      assert.equal(b.badge(c, 'R2', T0 + 2 * MIN).grant, true); assert.equal(b.loc(c), 'outside');
      assert.equal(b.badge(c, 'R1', T0 + 3 * MIN).grant, true); assert.equal(b.loc(c), 'building');
    });

    test('4 example 2: strict lab, tailgated into the building: sequence', () => {
      const b = make(buildingSite('entry: hard', 'entry: hard, strict: true'));
      const c = int(2);
      b.badge(c, 'R1', T0); b.badge(c, 'R2', T0 + MIN); // known outside
      const r = b.badge(c, 'R3', T0 + 2 * MIN);
      assert.equal(r.grant, false); assert.equal(r.reason, 'sequence'); assert.deepEqual(vios(b.site, r), ['sequence/hard/lab']);
      assert.equal(b.loc(c), 'outside');
    });

    test('4 example 3: relaxed lab grants; only re-entering the lab is denied', () => {
      const b = make(buildingSite('entry: hard', 'entry: hard'));
      const c = int(3);
      b.badge(c, 'R1', T0); b.badge(c, 'R2', T0 + MIN);
      const r = b.badge(c, 'R3', T0 + 2 * MIN);
      assert.equal(r.grant, true); assert.equal(r.reason, 'ok'); assert.equal(b.loc(c), 'lab');
      const again = b.badge(c, 'R3', T0 + 3 * MIN);
      assert.equal(again.grant, false); assert.equal(again.reason, 'reentry');
    });

    test('4 example 4: presence timeout 3600 s lets a free-exit leaver back in at 10:30', () => {
      const b = make(buildingSite('entry: hard, presenceTimeout: 3600'));
      const c = int(4);
      assert.equal(b.badge(c, 'R1', T0).grant, true); // 09:00
      assert.equal(b.badge(c, 'R1', T0 + 30 * MIN).reason, 'reentry'); // still present at 09:30
      const r = b.badge(c, 'R1', T0 + 90 * MIN); // 10:30
      assert.equal(r.grant, true); assert.equal(r.reason, 'ok'); assert.deepEqual(r.violations, []);
    });

    test('4 example 5: soft entry grants twice, the second with a soft reentry', () => {
      const b = make(buildingSite('entry: soft'));
      const c = int(5);
      assert.equal(b.badge(c, 'R1', T0).reason, 'ok');
      const r = b.badge(c, 'R1', T0 + MIN);
      assert.equal(r.grant, true); assert.equal(r.reason, 'soft_violation'); assert.deepEqual(vios(b.site, r), ['reentry/soft/building']);
      assert.equal(r.area, b.a('building'));
    });

    test('4 example 6: forgive gives one free pass', () => {
      const b = make(buildingSite('entry: hard'));
      const c = int(6);
      b.badge(c, 'R1', T0);
      assert.equal(b.badge(c, 'R1', T0 + MIN).reason, 'reentry');
      assert.equal(b.action({ op: 'forgive', cred: c }, T0 + 2 * MIN), 1);
      assert.equal(b.action({ op: 'forgive', cred: c }, T0 + 2 * MIN), 0, 'a second forgive while unused changes nothing');
      const r = b.badge(c, 'R1', T0 + 3 * MIN);
      assert.equal(r.grant, true); assert.equal(r.reason, 'forgiven'); assert.deepEqual(vios(b.site, r), ['reentry/hard/building']);
      assert.equal(b.core.state(c).freePass, false);
      assert.equal(b.badge(c, 'R1', T0 + 4 * MIN).grant, false);
    });

    test('4.1 unknown reader: deny unknown_reader, nothing stored', () => {
      const b = make(buildingSite('entry: hard'));
      const r = b.one({ op: 'badge', cred: int(7), reader: -1 }, T0) as { grant: boolean; reason: string; area: number };
      assert.equal(r.grant, false); assert.equal(r.reason, 'unknown_reader'); assert.equal(r.area, -1);
      assert.equal(b.core.state(int(7)).stored, false); assert.equal(b.core.size(), 0);
      assert.equal((b.one({ op: 'passage', cred: int(7), reader: -1 }, T0) as { applied: boolean }).applied, false);
      assert.equal((b.one({ op: 'offline', cred: int(7), reader: -1, ts: T0, granted: true }, T0) as { applied: boolean }).applied, false);
      assert.equal(b.core.size(), 0);
    });

    test('4.3 exempt: granted with reason exempt, moves still tracked, reuse memory set', () => {
      const b = make(buildingSite('entry: hard'));
      const c = int(8);
      b.action({ op: 'exempt', cred: c, on: true }, T0);
      assert.equal(b.badge(c, 'R1', T0).reason, 'exempt');
      const r = b.badge(c, 'R1', T0 + MIN);
      assert.equal(r.grant, true); assert.equal(r.reason, 'exempt'); assert.deepEqual(r.violations, []);
      assert.equal(b.loc(c), 'building'); assert.equal(b.core.state(c).lastReader, b.r('R1'));
      assert.equal(b.action({ op: 'exempt', cred: c, on: false }, T0 + 2 * MIN), 1);
      assert.equal(b.badge(c, 'R1', T0 + 3 * MIN).reason, 'reentry');
    });

    test('4.4 / 12 reuse fires while t - lastReaderAt < reuseLockout, whatever the areas', () => {
      const s = site(`areas:
  - { id: hall }
readers:
  - { id: G, from: outside, to: hall, controller: c, reuseLockout: 60 }
  - { id: S, from: outside, to: hall, controller: c, reuseLockout: 60, reuseMode: soft }
`);
      const b = make(s);
      const c = int(9);
      assert.equal(b.badge(c, 'G', T0).grant, true);
      let r = b.badge(c, 'G', T0 + 59_999);
      assert.equal(r.grant, false); assert.equal(r.reason, 'reuse'); assert.deepEqual(vios(s, r), ['reuse/hard/-']);
      assert.equal(b.badge(c, 'G', T0 + 60_000).reason, 'ok', 'the lockout has passed at exactly D');
      assert.equal(b.badge(c, 'S', T0 + 61_000).reason, 'ok', 'another reader is not reuse');
      r = b.badge(c, 'S', T0 + 62_000);
      assert.equal(r.grant, true); assert.equal(r.reason, 'soft_violation'); assert.deepEqual(vios(s, r), ['reuse/soft/-']);
    });

    test('4.5 exit_not_entered: known outside the area, badging out of it', () => {
      const b = make(buildingSite('exit: hard'));
      const c = int(10);
      assert.equal(b.badge(c, 'R2', T0).reason, 'ok', 'unknown location: first move allowed either way');
      const r = b.badge(c, 'R2', T0 + MIN);
      assert.equal(r.grant, false); assert.deepEqual(vios(b.site, r), ['exit_not_entered/hard/building']);
      assert.equal(b.badge(c, 'R1', T0 + 2 * MIN).grant, true);
      assert.equal(b.badge(c, 'R2', T0 + 3 * MIN).grant, true);
    });

    test('12 violation order: by code, exited innermost first, entered outermost first', () => {
      const s = site(`areas:
  - { id: a, entry: hard, exit: soft }
  - { id: b, parent: a, entry: soft, exit: hard }
  - { id: x, entry: soft, strict: true }
  - { id: y, parent: x, entry: hard, strict: true }
readers:
  - { id: IN, from: outside, to: b, controller: c }
  - { id: OUT, from: b, to: outside, controller: c }
  - { id: XY, from: b, to: y, controller: c, reuseLockout: 10, reuseMode: soft }
`);
      const b = make(s);
      const c = int(11);
      b.badge(c, 'IN', T0);
      let r = b.badge(c, 'IN', T0 + MIN);
      assert.deepEqual(vios(s, r), ['reentry/hard/a', 'reentry/soft/b']);
      assert.equal(r.reason, 'reentry');
      const d = int(12);
      b.action({ op: 'setLocation', cred: d, area: b.a('y') }, T0);
      r = b.badge(d, 'OUT', T0 + MIN); // known in y, leaves b and a: exited innermost first
      assert.deepEqual(vios(s, r), ['exit_not_entered/hard/b', 'exit_not_entered/soft/a']);
      assert.equal(r.reason, 'exit_not_entered'); assert.equal(r.grant, false);
      const e = int(13);
      b.action({ op: 'setLocation', cred: e, area: b.a('y') }, T0 + 5 * MIN);
      r = b.badge(e, 'XY', T0 + 6 * MIN);
      // exits a and b (known in y: not inside either), enters x and y (known in y: reentry, and y != from: sequence)
      assert.deepEqual(vios(s, r), ['exit_not_entered/hard/b', 'exit_not_entered/soft/a', 'reentry/soft/x', 'reentry/hard/y', 'sequence/soft/x', 'sequence/hard/y']);
      assert.equal(r.reason, 'exit_not_entered');
    });

    test('6 + 12 occupancy: maxOccupancy, counting once, entry off, presence timeout', () => {
      const s = site(`areas:
  - { id: room, entry: soft, maxOccupancy: 2, presenceTimeout: 600 }
  - { id: free, maxOccupancy: 1 }
readers:
  - { id: IN, from: outside, to: room, controller: c }
  - { id: FIN, from: outside, to: free, controller: c }
`);
      const b = make(s);
      b.badge(int(1), 'IN', T0); b.badge(int(2), 'IN', T0 + SEC);
      assert.equal(b.occ('room'), 2);
      let r = b.badge(int(3), 'IN', T0 + 2 * SEC);
      assert.deepEqual(vios(s, r), ['occupancy/soft/room']); assert.equal(r.grant, true);
      assert.equal(b.occ('room'), 3);
      r = b.badge(int(1), 'IN', T0 + 3 * SEC); // already counted: a soft reentry, no occupancy
      assert.deepEqual(vios(s, r), ['reentry/soft/room']);
      // entry off: maxOccupancy does not apply
      b.badge(int(1), 'FIN', T0 + 4 * SEC);
      assert.deepEqual(b.badge(int(2), 'FIN', T0 + 5 * SEC).violations, []);
      assert.equal(b.occ('free'), 2);
      // presence past the timeout is not counted; at exactly 600 s it has passed
      const t1 = T0 + 3 * SEC + 600 * SEC; // int(1) moved to free at +4 s; int(3) entered room at +2 s
      assert.equal(b.occ('room'), 1, 'int(3) only');
      b.core.advance(T0 + 2 * SEC + 600 * SEC);
      assert.equal(b.occ('room'), 0);
      assert.equal(b.occ('outside'), 3, 'area 0 counts every known location');
      assert.deepEqual(b.badge(int(4), 'IN', t1).violations, []);
    });

    test('12 durations: presenceTimeout expires at exactly D, strict included', () => {
      const b = make(buildingSite('entry: hard, presenceTimeout: 60', 'entry: hard, strict: true, presenceTimeout: 60'));
      const c = int(14);
      b.badge(c, 'R1', T0);
      assert.equal(b.badge(c, 'R1', T0 + 59_999).reason, 'reentry');
      assert.equal(b.badge(c, 'R1', T0 + 60_000).reason, 'ok');
      const d = int(15);
      const t = T0 + 2 * MIN;
      b.action({ op: 'setLocation', cred: d, area: b.a('outside') }, t);
      assert.equal(b.badge(d, 'R3', t + 59_999).reason, 'sequence');
      const r = b.badge(d, 'R3', t + 60_000);
      assert.equal(r.reason, 'ok', 'past the timeout the location is unknown for sequence too');
      assert.equal(b.loc(d), 'lab');
    });

    test('12 forgetAfter: location forgotten at exactly lastMoveAt + F, as a reset at that instant', () => {
      const b = make(buildingSite('entry: hard', '', 'forgetAfter: 3600'));
      const c = int(16);
      b.badge(c, 'R1', T0);
      b.core.advance(T0 + HOUR - 1);
      assert.equal(b.loc(c), 'building'); assert.equal(b.occ('building'), 1);
      b.core.advance(T0 + HOUR);
      assert.equal(b.loc(c), null); assert.equal(b.occ('building'), 0); assert.equal(b.occ('outside'), 0);
      const st = b.core.state(c);
      assert.equal(st.lastMoveAt, T0 + HOUR); assert.equal(st.lastReader, -1);
      assert.equal(b.offline(c, 'R2', T0 + HOUR - 5, true, T0 + 2 * HOUR).applied, false, 'older than the forget reset');
      assert.equal(b.badge(c, 'R1', T0 + 2 * HOUR).reason, 'ok');
    });

    test('5 passage: pending until passage, deadline exclusive, other reader ignored', () => {
      const b = make(buildingSite('entry: hard, commitOn: passage, passageTimeout: 10', 'commitOn: passage, passageTimeout: 30'));
      const c = int(17);
      let r = b.badge(c, 'R1', T0);
      assert.equal(r.grant, true); assert.equal(r.pending, true); assert.equal(b.loc(c), null);
      assert.deepEqual(b.core.state(c).pending, { reader: b.r('R1'), to: b.a('building'), deadline: T0 + 10 * SEC });
      assert.equal(b.passage(c, 'R2', T0 + SEC), false, 'another reader');
      assert.equal(b.passage(c, 'R1', T0 + 2 * SEC), true);
      assert.equal(b.loc(c), 'building'); assert.equal(b.core.state(c).lastMoveAt, T0 + 2 * SEC);
      assert.equal(b.core.state(c).pending, null);
      assert.equal(b.passage(c, 'R1', T0 + 3 * SEC), false, 'no pending move left');
      // R3 enters lab (30 s) from building (not exited): the largest timeout of the commitOn areas involved
      r = b.badge(c, 'R3', T0 + 4 * SEC);
      assert.equal(b.core.state(c).pending?.deadline, T0 + 34 * SEC);
      assert.equal(b.passage(c, 'R3', T0 + 34 * SEC), false, 'at the deadline is too late');
      assert.equal(b.loc(c), 'building'); assert.equal(b.core.state(c).pending, null);
      assert.equal(b.core.state(c).lastReader, b.r('R3'), 'the grant set lastReader');
    });

    test('5 + 12 passage: a deny keeps the pending move, a new grant replaces it, exempt is pending too', () => {
      const b = make(buildingSite('entry: hard, commitOn: passage'));
      const c = int(18);
      b.action({ op: 'setLocation', cred: c, area: b.a('building') }, T0);
      b.action({ op: 'forgive', cred: c }, T0);
      b.badge(c, 'R2', T0 + SEC); // pending exit
      const deny = b.badge(int(18), 'R1', T0 + 2 * SEC); // still in building: reentry... but has free pass
      assert.equal(deny.reason, 'forgiven');
      assert.equal(b.core.state(c).pending?.reader, b.r('R1'), 'the new grant replaced the pending move');
      const d = int(19);
      b.action({ op: 'setLocation', cred: d, area: b.a('building') }, T0);
      b.badge(d, 'R2', T0 + SEC);
      assert.equal(b.badge(d, 'R1', T0 + 2 * SEC).grant, false);
      assert.equal(b.core.state(d).pending?.reader, b.r('R2'), 'a deny changes nothing, not even a pending move');
      const e = int(20);
      b.action({ op: 'exempt', cred: e, on: true }, T0);
      const r = b.badge(e, 'R1', T0 + 3 * SEC);
      assert.equal(r.reason, 'exempt'); assert.equal(r.pending, true);
    });

    test('7 offline: applied only when newer, late violations, lastReader never moves back', () => {
      const b = make(buildingSite('entry: hard, commitOn: passage'));
      const c = int(21);
      b.badge(c, 'R1', T0); b.passage(c, 'R1', T0 + SEC);
      const late = b.offline(c, 'R1', T0 + 5 * SEC, true, T0 + 10 * SEC);
      assert.equal(late.applied, true); assert.deepEqual(vios(b.site, late), ['reentry/hard/building']);
      assert.equal(b.core.state(c).lastMoveAt, T0 + 5 * SEC); assert.equal(b.core.state(c).pending, null, 'applied at once, never pending');
      assert.equal(b.offline(c, 'R2', T0 + 5 * SEC, true, T0 + 11 * SEC).applied, false, 'not newer than lastMoveAt');
      assert.equal(b.offline(c, 'R2', T0 + 6 * SEC, false, T0 + 11 * SEC).applied, false, 'a local deny moves nobody');
      // a pending grant at R1 at +20 s; an upload of R2 at +15 s applies but leaves lastReader at R1
      b.action({ op: 'reset', cred: c }, T0 + 12 * SEC);
      b.badge(c, 'R1', T0 + 20 * SEC);
      const up = b.offline(c, 'R2', T0 + 15 * SEC, true, T0 + 21 * SEC);
      assert.equal(up.applied, true); assert.deepEqual(up.violations, []);
      const st = b.core.state(c);
      assert.equal(st.lastReader, b.r('R1')); assert.equal(st.lastReaderAt, T0 + 20 * SEC);
      assert.equal(st.pending, null, 'applying any move drops the pending move');
      assert.equal(b.loc(c), 'outside');
    });

    test('12 resets: reset(c) keeps the free pass, drops reuse memory; resetArea reaches nested areas only', () => {
      const b = make(buildingSite('entry: hard'));
      const [c1, c2, c3, c4] = [int(31), int(32), int(33), int(34)];
      b.badge(c1, 'R1', T0); b.badge(c2, 'R1', T0); b.badge(c2, 'R3', T0 + SEC); b.badge(c3, 'R2', T0);
      b.action({ op: 'forgive', cred: c1 }, T0 + 2 * SEC);
      assert.equal(b.action({ op: 'reset', cred: c1 }, T0 + 3 * SEC), 1);
      let st = b.core.state(c1);
      assert.equal(st.location, -1); assert.equal(st.freePass, true); assert.equal(st.lastReader, -1); assert.equal(st.lastMoveAt, T0 + 3 * SEC);
      assert.equal(b.action({ op: 'reset', cred: c4 }, T0 + 3 * SEC), 1, 'reset always applies');
      assert.equal(b.core.state(c4).lastMoveAt, T0 + 3 * SEC);
      assert.equal(b.offline(c4, 'R1', T0 + 2 * SEC, true, T0 + 4 * SEC).applied, false, 'older than the reset');
      b.badge(c1, 'R1', T0 + 4 * SEC);
      assert.equal(b.action({ op: 'resetArea', area: b.a('building') }, T0 + 5 * SEC), 2, 'c1 in building and c2 in lab');
      assert.equal(b.loc(c2), null); assert.equal(b.loc(c3), 'outside');
      st = b.core.state(c2);
      assert.equal(st.lastMoveAt, T0 + 5 * SEC);
      assert.equal(b.action({ op: 'resetArea', area: b.a('building') }, T0 + 6 * SEC), 0, 'unknown locations are untouched');
      assert.equal(b.action({ op: 'resetArea', area: 0 }, T0 + 7 * SEC), 1, 'outside reaches everyone known');
      assert.equal(b.occ('outside'), 0);
    });

    test('12 setLocation is a move at the action time and drops the pending move', () => {
      const b = make(buildingSite('entry: hard, commitOn: passage'));
      const c = int(40);
      b.badge(c, 'R1', T0);
      assert.equal(b.action({ op: 'setLocation', cred: c, area: b.a('lab') }, T0 + SEC), 1);
      const st = b.core.state(c);
      assert.equal(b.loc(c), 'lab'); assert.equal(st.lastMoveAt, T0 + SEC); assert.equal(st.pending, null);
      assert.equal(b.occ('building'), 1); assert.equal(b.occ('lab'), 1);
    });

    test('3 schedule: an inactive area raises nothing but still tracks moves', () => {
      const b = make(buildingSite('entry: hard'));
      const c = int(41);
      b.core.setScheduleActive(b.a('building'), false);
      b.badge(c, 'R1', T0);
      assert.equal(b.badge(c, 'R1', T0 + SEC).reason, 'ok');
      assert.equal(b.loc(c), 'building');
      b.core.setScheduleActive(b.a('building'), true);
      assert.equal(b.badge(c, 'R1', T0 + 2 * SEC).reason, 'reentry');
    });

    test('1 credentials: 123, "123" and binary 0x7b are distinct', () => {
      const b = make(buildingSite('entry: hard'));
      b.badge(int(123), 'R1', T0);
      assert.equal(b.badge(str('123'), 'R1', T0 + SEC).reason, 'ok');
      assert.equal(b.badge(bin('7b'), 'R1', T0 + 2 * SEC).reason, 'ok');
      assert.equal(b.badge(int(2n ** 64n - 1n), 'R1', T0 + 3 * SEC).reason, 'ok');
      assert.equal(b.badge(int(2n ** 64n - 1n), 'R1', T0 + 4 * SEC).reason, 'reentry');
      assert.equal(b.core.size(), 4);
      assert.equal(b.occ('building'), 4);
    });

    test('snapshot and restore give identical behaviour', () => {
      const s = buildingSite('entry: hard, presenceTimeout: 100, commitOn: passage', 'entry: soft, maxOccupancy: 1', 'forgetAfter: 500');
      const b = make(s);
      b.badge(int(1), 'R1', T0); b.passage(int(1), 'R1', T0 + SEC); b.badge(int(2), 'R1', T0 + 2 * SEC);
      b.action({ op: 'forgive', cred: int(3) }, T0 + 3 * SEC);
      b.core.setScheduleActive(b.a('lab'), false);
      const snap = b.core.snapshot();
      const b2 = make(s);
      b2.core.restore(snap);
      for (const x of [b, b2]) {
        assert.equal(x.passage(int(2), 'R1', T0 + 4 * SEC), true);
        assert.equal(x.badge(int(1), 'R1', T0 + 5 * SEC).reason, 'reentry');
        assert.equal(x.core.state(int(3)).freePass, true);
        assert.equal(x.occ('building'), 2);
      }
      b.core.advance(T0 + DAY); b2.core.advance(T0 + DAY);
      assert.deepEqual(b2.core.state(int(1)), b.core.state(int(1)));
      assert.equal(b2.occ('outside'), 0);
    });
  });
}
