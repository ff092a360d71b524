/**
 * The engine driver (src/engine/engine.ts) on every core: periodic resets at
 * their exact instants (DST days included), schedule flags at their change
 * instants, the first-call clock rule, snapshots of the driver clock,
 * reconfigure (locationsDropped, standing exemptions).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/engine/engine.js';
import type { Engine } from '../../src/engine/types.js';
import { Bench, CORES, HOUR, MIN, int, site } from './harness.js';

const LOT = (policy: string, extra = ''): string => `${extra}areas:
  - { id: lot, entry: hard, ${policy} }
  - { id: bay, parent: lot }
readers:
  - { id: in, from: outside, to: lot, controller: c }
  - { id: out, from: lot, to: outside, controller: c }
`;

const utc = (y: number, mo: number, d: number, h: number, mi = 0): number => Date.UTC(y, mo - 1, d, h, mi);

for (const factory of CORES) {
  const eng = (yaml: string): Bench<Engine> & { resets: [string, string, number][] } => {
    const s = site(yaml);
    const e = createEngine(s, { core: factory.kind });
    const b = new Bench<Engine>(s, e) as Bench<Engine> & { resets: [string, string, number][] };
    b.resets = [];
    e.onPeriodicReset = (area, at, changed) => b.resets.push([s.areaIds[area]!, new Date(at).toISOString(), changed]);
    return b;
  };

  describe(`engine driver on the ${factory.kind} core`, () => {
    test('resetAt runs at its local time, once a day, before events at that instant', () => {
      const b = eng(LOT('resetAt: ["03:00"]'));
      const c = int(1);
      const mon9 = utc(2026, 1, 5, 9); // London = UTC in January
      b.badge(c, 'in', mon9);
      const r = utc(2026, 1, 6, 3);
      assert.equal(b.badge(c, 'in', r - 1).grant, false);
      assert.deepEqual(b.resets, []);
      assert.equal(b.badge(c, 'in', r).grant, true, 'the reset at r comes before the badge at r');
      assert.deepEqual(b.resets, [['lot', '2026-01-06T03:00:00.000Z', 1]]);
      assert.equal(b.core.state(c).lastMoveAt, r);
      b.core.tick(utc(2026, 1, 9, 12));
      assert.deepEqual(b.resets.map((x) => x[1]), ['2026-01-06T03:00:00.000Z', '2026-01-07T03:00:00.000Z', '2026-01-08T03:00:00.000Z', '2026-01-09T03:00:00.000Z']);
      assert.deepEqual(b.resets.map((x) => x[2]), [1, 1, 0, 0], 'each reset at its own instant, only known locations');
    });

    test('resetAt in a spring-forward gap happens at the first instant after the gap', () => {
      const b = eng(LOT('resetAt: ["01:30"]'));
      b.action({ op: 'setLocation', cred: int(2), area: b.a('bay') }, utc(2026, 3, 28, 12));
      b.core.tick(utc(2026, 3, 29, 12));
      // 2026-03-29 London: 01:00 GMT jumps to 02:00 BST (01:00 UTC); 01:30 does not exist
      assert.deepEqual(b.resets, [['lot', '2026-03-29T01:00:00.000Z', 1]]);
      assert.equal(b.core.state(int(2)).lastMoveAt, utc(2026, 3, 29, 1));
    });

    test('resetAt in a fall-back overlap happens at the first occurrence', () => {
      const b = eng(LOT('resetAt: ["01:30"]'));
      b.action({ op: 'setLocation', cred: int(3), area: b.a('lot') }, utc(2026, 10, 24, 12));
      b.core.tick(utc(2026, 10, 25, 0, 29));
      assert.deepEqual(b.resets, []);
      b.core.tick(utc(2026, 10, 25, 12));
      // 2026-10-25 London: 01:30 BST (00:30 UTC) and 01:30 GMT (01:30 UTC); the first one
      assert.deepEqual(b.resets, [['lot', '2026-10-25T00:30:00.000Z', 1]]);
    });

    test('an upload older than a periodic reset changes nothing', () => {
      const b = eng(LOT('resetAt: ["03:00"]'));
      const c = int(4);
      b.badge(c, 'in', utc(2026, 1, 5, 9));
      b.core.tick(utc(2026, 1, 6, 9));
      assert.equal(b.offline(c, 'out', utc(2026, 1, 6, 2, 59), true, utc(2026, 1, 6, 9)).applied, false);
      assert.equal(b.offline(c, 'out', utc(2026, 1, 6, 3, 1), true, utc(2026, 1, 6, 9)).applied, true);
      assert.equal(b.loc(c), 'outside');
    });

    test('the first call sets the clock without running earlier resets; a smaller now is the clock', () => {
      const b = eng(LOT('resetAt: ["03:00"]'));
      assert.equal(b.core.clock, 0);
      const c = int(5);
      const t = utc(2026, 1, 5, 10);
      b.badge(c, 'in', t);
      assert.equal(b.core.clock, t);
      assert.deepEqual(b.resets, [], 'no resets for the time before the first call');
      b.action({ op: 'setLocation', cred: int(6), area: b.a('lot') }, t - HOUR);
      assert.equal(b.core.state(int(6)).lastMoveAt, t, 'now below the clock is the clock');
      assert.equal(b.core.clock, t);
    });

    test('schedule windows switch violations on and off at their local instants, across DST', () => {
      const b = eng(LOT('schedule: [{ days: [mon], from: "08:00", to: "18:00" }]'));
      const c = int(7);
      // Monday 2026-03-30 is in BST: 08:00 local = 07:00 UTC, 18:00 local = 17:00 UTC
      b.badge(c, 'in', utc(2026, 3, 30, 6));
      assert.equal(b.badge(c, 'in', utc(2026, 3, 30, 7) - 1).reason, 'ok', 'before the window: tracked, not checked');
      assert.equal(b.badge(c, 'in', utc(2026, 3, 30, 7)).reason, 'reentry', 'at 08:00 local the window holds');
      assert.equal(b.badge(c, 'in', utc(2026, 3, 30, 17) - 1).reason, 'reentry');
      assert.equal(b.badge(c, 'in', utc(2026, 3, 30, 17)).reason, 'ok', 'at 18:00 local the window has ended');
      // a long jump lands inside next Monday's window: flags are refreshed at every change on the way
      b.core.tick(utc(2026, 4, 6, 12));
      assert.equal(b.badge(c, 'in', utc(2026, 4, 6, 12)).reason, 'reentry');
      assert.equal(b.badge(c, 'in', utc(2026, 4, 7, 12)).reason, 'ok', 'Tuesday: no window');
    });

    test('snapshot carries the driver clock: a restored engine runs only later resets', () => {
      const yaml = LOT('resetAt: ["03:00"]');
      const b = eng(yaml);
      b.badge(int(8), 'in', utc(2026, 1, 5, 9));
      const snap = b.core.snapshot();
      const b2 = eng(yaml);
      b2.core.restore(snap);
      assert.equal(b2.core.clock, utc(2026, 1, 5, 9));
      assert.equal(b2.badge(int(8), 'in', utc(2026, 1, 5, 10)).grant, false);
      b2.core.tick(utc(2026, 1, 6, 4));
      assert.deepEqual(b2.resets, [['lot', '2026-01-06T03:00:00.000Z', 1]]);
      assert.throws(() => b2.core.restore(snap.subarray(0, 10)), { code: 'bad_message' });
    });

    test('reconfigure: locations in removed areas dropped and counted, standing exemptions applied', () => {
      const v1 = LOT('') + 'credentials:\n  - { cred: 100, exempt: true }\n';
      const b = eng(v1);
      assert.equal(b.core.state(int(100)).exempt, true, 'standing exemption at creation');
      const t = utc(2026, 1, 5, 9);
      b.action({ op: 'setLocation', cred: int(1), area: b.a('bay') }, t);
      b.action({ op: 'setLocation', cred: int(2), area: b.a('bay') }, t);
      b.action({ op: 'setLocation', cred: int(3), area: b.a('lot') }, t);
      b.badge(int(4), 'out', t);
      const v2 = site(`areas:
  - { id: lot, entry: hard }
  - { id: annex, entry: hard }
readers:
  - { id: in, from: outside, to: lot, controller: c }
  - { id: out, from: lot, to: outside, controller: c }
credentials:
  - { cred: 200, exempt: true }
controllers:
  - { id: c, token: t-long-test-token }
`);
      const report = b.core.reconfigure(v2);
      assert.equal(report.locationsDropped, 2);
      assert.deepEqual(report.areasRemoved, ['bay']);
      assert.deepEqual(report.areasAdded, ['annex']);
      assert.equal(b.core.site, v2);
      assert.equal(b.core.state(int(1)).location, -1);
      assert.equal(b.core.state(int(3)).location, v2.areaIndex.get('lot'));
      assert.equal(b.core.occupancy(v2.areaIndex.get('lot')!), 1);
      assert.equal(b.core.occupancy(0), 2);
      assert.equal(b.core.state(int(200)).exempt, true, 'standing exemption of the new configuration');
      assert.equal((b.core.apply([{ op: 'badge', cred: int(3), reader: v2.readerIndex.get('in')! }], t + MIN)[0] as { reason: string }).reason, 'reentry');
      assert.equal((b.core.apply([{ op: 'badge', cred: int(1), reader: v2.readerIndex.get('in')! }], t + MIN)[0] as { reason: string }).reason, 'ok');
    });
  });
}
