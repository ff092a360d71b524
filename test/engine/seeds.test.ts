/**
 * The behaviours the vendor manuals in shared/seeds/ describe, each a named
 * scenario run through the engine driver on every core. Each scenario quotes
 * the sentence of its manual it checks (and, when the manuals are beside the
 * repository, checks that the sentence is really there).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../src/engine/engine.js';
import type { Engine } from '../../src/engine/types.js';
import { Bench, CORES, DAY, HOUR, MIN, SEC, T0, int, site } from './harness.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const seedDir = [join(repoRoot, '../shared/seeds'), '/work/shared/seeds'].find((d) => existsSync(d));
const seedText = new Map<string, string>();
if (seedDir) for (const f of readdirSync(seedDir)) seedText.set(f.slice(0, 3), readFileSync(join(seedDir, f), 'utf8').replace(/[\s\ue744]+/g, ' '));

/** the manual `seed` (file number "000".."004") says `quote` */
function cites(seed: string, quote: string): void {
  const text = seedText.get(seed);
  if (text === undefined) return; // manuals not beside this checkout: the scenario still runs
  assert.ok(text.includes(quote), `seed ${seed} should say: ${quote}`);
}

const OFFICE = `areas:
  - { id: office, entry: hard }
  - { id: lab, parent: office, entry: hard }
readers:
  - { id: door-in, from: outside, to: office, controller: c }
  - { id: door-out, from: office, to: outside, controller: c }
  - { id: lab-in, from: office, to: lab, controller: c }
  - { id: lab-out, from: lab, to: office, controller: c }
`;

for (const factory of CORES) {
  const eng = (yaml: string): Bench<Engine> => {
    const s = site(yaml);
    return new Bench<Engine>(s, createEngine(s, { core: factory.kind }));
  };

  describe(`seeds on the ${factory.kind} core`, () => {
    test('000 buyer\'s guide: a credential handed back cannot be used to enter again', () => {
      cites('000', 'stop one person entering and then handing the credential back for someone else to use');
      const b = eng(OFFICE);
      const card = int(1000042);
      assert.equal(b.badge(card, 'door-in', T0).grant, true);
      const passback = b.badge(card, 'door-in', T0 + 5 * SEC); // a friend outside with the same card
      assert.equal(passback.grant, false); assert.equal(passback.reason, 'reentry');
      assert.equal(b.occ('office'), 1);
    });

    test('001 Continuum strict: tailgating in then badging an internal door is denied', () => {
      cites('001', 'tailgates into the premises and then badges at an internal door she will be denied access');
      const b = eng(OFFICE.replace('{ id: lab, parent: office, entry: hard }', '{ id: lab, parent: office, entry: hard, strict: true }'));
      const p = int(1);
      b.badge(p, 'door-in', T0); b.badge(p, 'door-out', T0 + HOUR); // known OUTSIDE
      const r = b.badge(p, 'lab-in', T0 + 2 * HOUR);
      assert.equal(r.grant, false); assert.equal(r.reason, 'sequence');
    });

    test('001 Continuum relaxed: allowed from any different area, re-entry still denied', () => {
      cites('001', 'will allow access if the Personnel is in any different Area');
      const b = eng(OFFICE);
      const p = int(2);
      b.badge(p, 'door-in', T0); b.badge(p, 'door-out', T0 + HOUR);
      assert.equal(b.badge(p, 'lab-in', T0 + 2 * HOUR).grant, true);
      assert.equal(b.badge(p, 'lab-in', T0 + 3 * HOUR).reason, 'reentry');
    });

    test('001 Continuum "Allow Entry on an Anti-Passback Violation": soft, logged for later analysis', () => {
      cites('001', 'to note the violation for latter analysis but still allow the Personnel through');
      const b = eng(OFFICE.replace('{ id: office, entry: hard }', '{ id: office, entry: soft }'));
      const p = int(3);
      b.badge(p, 'door-in', T0);
      const r = b.badge(p, 'door-in', T0 + MIN);
      assert.equal(r.grant, true); assert.equal(r.reason, 'soft_violation'); assert.equal(r.violations[0]!.code, 'reentry');
    });

    test('001 Continuum timed anti-passback: access again once the time has lapsed', () => {
      cites('001', 'allows access on anti-passback after the "Timed Anti-Passback" time has lapsed');
      const b = eng(OFFICE.replace('{ id: office, entry: hard }', '{ id: office, entry: hard, presenceTimeout: 1800 }'));
      const p = int(4);
      b.badge(p, 'door-in', T0); // then leaves through a free-egress door
      assert.equal(b.badge(p, 'door-in', T0 + 29 * MIN).grant, false);
      assert.equal(b.badge(p, 'door-in', T0 + 30 * MIN).grant, true);
    });

    test('002 Genetec soft vs hard antipassback', () => {
      cites('002', 'Soft antipassback only logs the passback events in the database');
      cites('002', 'Hard antipassback logs an entry in the database and prevents the door from being unlocked');
      const soft = eng(OFFICE.replace('{ id: office, entry: hard }', '{ id: office, entry: soft }'));
      const hard = eng(OFFICE);
      for (const b of [soft, hard]) b.badge(int(5), 'door-in', T0);
      assert.equal(soft.badge(int(5), 'door-in', T0 + MIN).grant, true);
      assert.equal(hard.badge(int(5), 'door-in', T0 + MIN).grant, false);
    });

    test('002 Genetec strict: exiting an area never entered is a passback event', () => {
      cites('002', 'when cardholders try to exit an area that they never entered');
      const b = eng(OFFICE.replace('{ id: office, entry: hard }', '{ id: office, entry: hard, exit: hard }'));
      const p = int(6);
      b.badge(p, 'door-in', T0); b.badge(p, 'door-out', T0 + HOUR); // known outside
      const r = b.badge(p, 'door-out', T0 + 2 * HOUR);
      assert.equal(r.grant, false); assert.equal(r.reason, 'exit_not_entered');
    });

    test('002 Genetec global presence forgotten after seven days (forgetAfter 604800)', () => {
      cites('002', 'the presence of a cardholder in an area is forgotten after seven days');
      const b = eng('forgetAfter: 604800\n' + OFFICE);
      const p = int(7);
      b.badge(p, 'door-in', T0);
      assert.equal(b.badge(p, 'door-in', T0 + 7 * DAY - 1).grant, false);
      assert.equal(b.loc(p), 'office');
      b.core.tick(T0 + 7 * DAY);
      assert.equal(b.loc(p), null); assert.equal(b.occ('office'), 0);
      assert.equal(b.badge(p, 'door-in', T0 + 7 * DAY + 1).grant, true);
    });

    test('002 Genetec "Forgive antipassback violation" privilege', () => {
      cites('002', 'grant the Forgive antipassback violation privilege');
      const b = eng(OFFICE);
      const p = int(8);
      b.badge(p, 'door-in', T0);
      b.action({ op: 'forgive', cred: p }, T0 + MIN);
      assert.equal(b.badge(p, 'door-in', T0 + 2 * MIN).reason, 'forgiven');
    });

    test('003 Symphony local anti-passback: cannot present again to the same reader', () => {
      cites('003', 'cannot present it again to the same reader');
      const b = eng(`areas:
  - { id: garage }
readers:
  - { id: gate, from: outside, to: garage, controller: c, reuseLockout: 300 }
`);
      const p = int(9);
      assert.equal(b.badge(p, 'gate', T0).grant, true);
      assert.equal(b.badge(p, 'gate', T0 + MIN).reason, 'reuse');
      assert.equal(b.badge(p, 'gate', T0 + 5 * MIN).grant, true);
    });

    test('003 Symphony: "Reset Anti-Passback" and "Allow one free Anti-Passback"', () => {
      cites('003', 'Click on the “Reset Ant-Passback” button');
      cites('003', 'Allow one free Anti-Passback');
      const b = eng(OFFICE);
      const p = int(10), q = int(11);
      b.badge(p, 'door-in', T0); b.badge(q, 'door-in', T0);
      b.action({ op: 'reset', cred: p }, T0 + MIN);
      assert.equal(b.badge(p, 'door-in', T0 + 2 * MIN).reason, 'ok');
      b.action({ op: 'forgive', cred: q }, T0 + MIN);
      assert.equal(b.badge(q, 'door-in', T0 + 2 * MIN).reason, 'forgiven');
      assert.equal(b.badge(q, 'door-in', T0 + 3 * MIN).grant, false, 'one free pass only');
    });

    test('003 Symphony occupancy control', () => {
      cites('003', 'This option is also used in combination with Occupancy Control');
      const b = eng(OFFICE.replace('{ id: office, entry: hard }', '{ id: office, entry: hard, maxOccupancy: 2 }'));
      b.badge(int(1), 'door-in', T0); b.badge(int(2), 'door-in', T0 + SEC);
      const full = b.badge(int(3), 'door-in', T0 + 2 * SEC);
      assert.equal(full.grant, false); assert.equal(full.reason, 'occupancy');
      b.badge(int(1), 'door-out', T0 + 3 * SEC);
      assert.equal(b.badge(int(3), 'door-in', T0 + 4 * SEC).grant, true);
    });

    test('004 Openpath inbound/outbound modes None/Alert/Enforce', () => {
      cites('004', 'Alert – access is granted and an event is generated');
      cites('004', 'Enforce – access is denied and an event is generated');
      const b = eng(`areas:
  - { id: lot, entry: hard, exit: soft }
readers:
  - { id: in, from: outside, to: lot, controller: c }
  - { id: out, from: lot, to: outside, controller: c }
`);
      const p = int(12);
      b.badge(p, 'in', T0); b.badge(p, 'out', T0 + HOUR);
      const alert = b.badge(p, 'out', T0 + 2 * HOUR);
      assert.equal(alert.grant, true); assert.equal(alert.violations[0]?.code, 'exit_not_entered'); assert.equal(alert.violations[0]?.mode, 'soft');
      b.badge(p, 'in', T0 + 3 * HOUR);
      assert.equal(b.badge(p, 'in', T0 + 4 * HOUR).grant, false);
    });

    test('004 Openpath periodic reset: next movement allowed in either direction', () => {
      cites('004', 'the user’s next movement will be allowed in either direction');
      const b = eng(`areas:
  - { id: lot, entry: hard, exit: hard, resetAt: ["03:00"] }
readers:
  - { id: in, from: outside, to: lot, controller: c }
  - { id: out, from: lot, to: outside, controller: c }
`);
      const p = int(13);
      b.badge(p, 'in', T0); // Monday 09:00, never leaves through a reader
      assert.equal(b.badge(p, 'in', T0 + 17 * HOUR + 59 * MIN).grant, false, 'Tuesday 02:59: still inside');
      assert.equal(b.badge(p, 'in', T0 + 18 * HOUR).grant, true, 'Tuesday 03:00: the reset came first');
      b.badge(p, 'out', T0 + 19 * HOUR);
      assert.equal(b.badge(p, 'out', T0 + 20 * HOUR).reason, 'exit_not_entered');
    });

    test('004 Openpath "Use Contact Sensor": state changes only when the door opens', () => {
      cites('004', 'Enable Use Contact Sensor to only change a user’s Anti-Passback state until after the Contact Sensor reports open');
      const b = eng(`areas:
  - { id: lot, entry: hard, commitOn: passage, passageTimeout: 10 }
readers:
  - { id: in, from: outside, to: lot, controller: c }
`);
      const walked = int(14), didNot = int(15);
      b.badge(walked, 'in', T0); b.passage(walked, 'in', T0 + 3 * SEC);
      b.badge(didNot, 'in', T0);
      assert.equal(b.badge(walked, 'in', T0 + MIN).grant, false);
      assert.equal(b.badge(didNot, 'in', T0 + MIN).grant, true, 'granted but never used: not placed inside');
    });
  });
}
