/**
 * SPEC 13 (lockdown, supervision, explanation), each rule and edge case a
 * named test, on every core (reference and WASM).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Bench, CORES, MIN, SEC, T0, int, site, vios } from './harness.js';
import type { CompiledSite } from '../../src/config/types.js';
import { createEngine } from '../../src/engine/engine.js';
import { decodeMessage } from '../../src/engine/messages.js';
import { ApbError } from '../../src/errors.js';
import { createWasmCore } from '../../src/engine/wasm-core.js';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** the ABI 2 core of 24-byte records (layout 2), whose snapshots the 64-byte-bucket core migrates (test/engine/wasm-layout.test.ts) */
const LAYOUT2 = readFileSync(join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'test', 'fixtures', 'core-layout2.wasm'));

/** outside > building > lab; R1 outside→building, R2 building→outside, R3 building→lab, R4 lab→building, P1 outside→building on passage */
function lockSite(building = 'entry: hard', lab = 'entry: soft', extra = ''): CompiledSite {
  return site(`areas:
  - { id: building, ${building} }
  - { id: lab, parent: building, ${lab} }
  - { id: dock, commitOn: passage, passageTimeout: 30 }
readers:
  - { id: R1, from: outside, to: building, controller: c, reuseLockout: 60 }
  - { id: R2, from: building, to: outside, controller: c }
  - { id: R3, from: building, to: lab, controller: c }
  - { id: R4, from: lab, to: building, controller: c }
  - { id: P1, from: outside, to: dock, controller: c }
${extra}`);
}

/** outside > ward (supervised, presenceTimeout 600 s) > room; W-in, W-out, Room-in, Room-out */
function wardSite(policy = 'supervision: hard', extra = ''): CompiledSite {
  return site(`forgetAfter: 3600
areas:
  - { id: ward, ${policy}, presenceTimeout: 600 }
  - { id: room, parent: ward }
readers:
  - { id: W-in, from: outside, to: ward, controller: c }
  - { id: W-out, from: ward, to: outside, controller: c }
  - { id: Room-in, from: ward, to: room, controller: c }
${extra}`);
}

for (const factory of CORES) {
  const make = (s: CompiledSite): Bench => new Bench(s, factory.make(s));

  describe(`SPEC 13.1 lockdown on the ${factory.kind} core`, () => {
    test('a locked parent denies a move into its child: reason lockdown, one hard violation naming the outermost locked area', () => {
      const b = make(lockSite());
      const c = int(1);
      assert.equal(b.badge(c, 'R1', T0).grant, true);
      assert.equal(b.action({ op: 'lockdown', area: b.a('building'), on: true }, T0 + SEC), 1);
      assert.equal(b.action({ op: 'lockdown', area: b.a('lab'), on: true }, T0 + SEC), 1);
      const r = b.badge(c, 'R3', T0 + MIN);
      assert.deepEqual([r.grant, r.reason, vios(b.site, r)], [false, 'lockdown', ['lockdown/hard/building']]);
      assert.equal(b.loc(c), 'building', 'nothing changed');
      // entering the building from outside: also denied, whatever the policy (lab is soft, building hard)
      const d = int(2);
      assert.deepEqual(vios(b.site, b.badge(d, 'R1', T0 + MIN)), ['lockdown/hard/building']);
      assert.equal(b.core.state(d).stored, false, 'a lockdown deny stores nothing');
    });

    test('moves out are decided as usual; locking twice changes nothing; unlocking restores the rules', () => {
      const b = make(lockSite());
      const c = int(1);
      b.badge(c, 'R1', T0);
      b.badge(c, 'R3', T0 + SEC);
      assert.equal(b.action({ op: 'lockdown', area: b.a('building'), on: true }, T0 + 2 * SEC), 1);
      assert.equal(b.action({ op: 'lockdown', area: b.a('building'), on: true }, T0 + 2 * SEC), 0);
      assert.equal(b.core.locked(b.a('building')), true);
      assert.equal(b.badge(c, 'R4', T0 + 3 * SEC).grant, true, 'lab → building enters nothing');
      assert.equal(b.badge(c, 'R2', T0 + 4 * SEC).grant, true, 'leaving is allowed');
      assert.equal(b.action({ op: 'lockdown', area: b.a('building'), on: false }, T0 + 5 * SEC), 1);
      assert.equal(b.action({ op: 'lockdown', area: b.a('building'), on: false }, T0 + 5 * SEC), 0);
      assert.equal(b.badge(c, 'R1', T0 + 6 * SEC).grant, true);
    });

    test('exempt credentials pass; the free pass and reuse memory are kept by a lockdown deny', () => {
      const b = make(lockSite());
      const x = int(3), f = int(4);
      b.action({ op: 'exempt', cred: x, on: true }, T0);
      b.action({ op: 'forgive', cred: f }, T0);
      b.action({ op: 'lockdown', area: b.a('building'), on: true }, T0);
      const r = b.badge(x, 'R1', T0 + SEC);
      assert.deepEqual([r.grant, r.reason], [true, 'exempt']);
      assert.equal(b.badge(f, 'R1', T0 + SEC).reason, 'lockdown');
      assert.equal(b.core.state(f).freePass, true, 'the free pass is not spent on a lockdown');
    });

    test('a pending move made before the lockdown is applied by its passage', () => {
      const b = make(lockSite());
      const c = int(5);
      assert.equal(b.badge(c, 'P1', T0).pending, true);
      b.action({ op: 'lockdown', area: b.a('dock'), on: true }, T0 + SEC);
      assert.equal(b.passage(c, 'P1', T0 + 2 * SEC), true);
      assert.equal(b.loc(c), 'dock');
    });

    test('an offline upload is applied and reports the lockdown as its only late violation', () => {
      const b = make(lockSite());
      const c = int(6);
      b.action({ op: 'lockdown', area: b.a('building'), on: true }, T0 + MIN);
      const r = b.offline(c, 'R3', T0 + 30 * SEC, true, T0 + 2 * MIN);
      assert.equal(r.applied, true);
      assert.deepEqual(vios(b.site, r), ['lockdown/hard/building']);
      assert.equal(b.loc(c), 'lab');
    });

    test('resets keep the lockdown; a reload keeps it unless the area is removed', () => {
      const s1 = lockSite();
      const e = createEngine(s1, { core: factory.kind });
      e.apply([{ op: 'lockdown', area: 1, on: true }, { op: 'lockdown', area: 3, on: true }], T0);
      e.apply([{ op: 'resetArea', area: 0 }], T0 + SEC);
      assert.equal(e.locked(1), true);
      // building removed (lab re-parented to outside), dock kept
      const s2 = site(`areas:
  - { id: lab }
  - { id: dock }
readers:
  - { id: R1, from: outside, to: lab, controller: c }`);
      e.reconfigure(s2);
      assert.deepEqual([e.locked(s2.areaIndex.get('lab')!), e.locked(s2.areaIndex.get('dock')!)], [false, true]);
      // and a snapshot keeps it
      const again = createEngine(s2, { core: factory.kind });
      again.restore(e.snapshot());
      assert.equal(again.locked(s2.areaIndex.get('dock')!), true);
    });
  });

  describe(`SPEC 13.2 supervision on the ${factory.kind} core`, () => {
    test('no_supervisor until a supervisor is present; supervisors are counted like occupancy', () => {
      const b = make(wardSite());
      const s = int(10), n = int(11);
      let r = b.badge(n, 'W-in', T0);
      assert.deepEqual([r.grant, vios(b.site, r)], [false, ['no_supervisor/hard/ward']]);
      b.action({ op: 'supervisor', cred: s, on: true }, T0);
      assert.equal(b.badge(s, 'W-in', T0 + SEC).grant, true, 'a supervisor needs no supervisor');
      assert.equal(b.core.supervisors(b.a('ward')), 1);
      r = b.badge(n, 'W-in', T0 + 2 * SEC);
      assert.deepEqual([r.grant, vios(b.site, r)], [true, []]);
      assert.deepEqual([b.occ('ward'), b.core.supervisors(b.a('ward'))], [2, 1]);
    });

    test('the last supervisor may not leave while others stay: last_supervisor with the others counted', () => {
      const b = make(wardSite());
      const s = int(10), n = int(11), m = int(12);
      b.action({ op: 'supervisor', cred: s, on: true }, T0);
      b.badge(s, 'W-in', T0);
      b.badge(n, 'W-in', T0 + SEC);
      b.badge(m, 'Room-in', T0 + SEC); // unknown location: enters room (ward is not entered by this reader)
      const r = b.badge(s, 'W-out', T0 + 2 * SEC);
      assert.deepEqual([r.grant, vios(b.site, r)], [false, ['last_supervisor/hard/ward']]);
      assert.equal(r.violations[0]!.count, 2, 'two non-supervisors present');
    });

    test('a supervisor whose presence timed out is not present; the last one leaving while others timed out', () => {
      const b = make(wardSite());
      const s1 = int(20), s2 = int(21), n = int(22);
      b.action({ op: 'supervisor', cred: s1, on: true }, T0);
      b.action({ op: 'supervisor', cred: s2, on: true }, T0);
      b.badge(s1, 'W-in', T0);
      b.badge(n, 'W-in', T0 + 5 * MIN);
      b.badge(s2, 'W-in', T0 + 6 * MIN);
      // at T0+10 min s1's presence times out (600 s): only s2 counts
      assert.equal(b.core.supervisors(b.a('ward')), 2);
      b.core.apply([], T0 + 10 * MIN);
      assert.equal(b.core.supervisors(b.a('ward')), 1);
      // s2 leaves while n is present and s1 timed out: last_supervisor
      let r = b.badge(s2, 'W-out', T0 + 11 * MIN);
      assert.deepEqual(vios(b.site, r), ['last_supervisor/hard/ward']);
      // once n timed out too (T0+15 min), s2 may leave: nobody else is present
      r = b.badge(s2, 'W-out', T0 + 15 * MIN);
      assert.deepEqual([r.grant, vios(b.site, r)], [true, []]);
      // s1 leaving with a timed-out presence is not "present": no violation
      assert.equal(b.badge(s1, 'W-out', T0 + 16 * MIN).grant, true);
      // and a newcomer finds no supervisor
      assert.deepEqual(vios(b.site, b.badge(int(23), 'W-in', T0 + 17 * MIN)), ['no_supervisor/hard/ward']);
    });

    test('reset, resetArea and forgetAfter reach supervisors; the flag survives them', () => {
      const b = make(wardSite('supervision: soft'));
      const s = int(30), t = int(31);
      b.action({ op: 'supervisor', cred: s, on: true }, T0);
      b.action({ op: 'supervisor', cred: t, on: true }, T0);
      b.badge(s, 'Room-in', T0); b.badge(t, 'Room-in', T0);
      assert.equal(b.core.supervisors(b.a('room')), 2);
      b.action({ op: 'reset', cred: s }, T0 + SEC);
      assert.equal(b.core.supervisors(b.a('room')), 1);
      b.action({ op: 'resetArea', area: b.a('ward') }, T0 + 2 * SEC);
      assert.equal(b.core.supervisors(b.a('room')), 0);
      assert.equal(b.core.state(s).supervisor, true);
      b.badge(s, 'Room-in', T0 + 3 * SEC);
      assert.equal(b.core.supervisors(b.a('room')), 1);
      b.core.apply([], T0 + 3 * SEC + 3600 * SEC); // forgetAfter
      assert.deepEqual([b.core.supervisors(b.a('room')), b.core.supervisors(0)], [0, 0]);
    });

    test('setting or clearing the flag of a present credential moves the supervisor count at once', () => {
      const b = make(wardSite('supervision: soft'));
      const c = int(40);
      const r = b.badge(c, 'W-in', T0);
      assert.deepEqual([r.grant, vios(b.site, r)], [true, ['no_supervisor/soft/ward']]);
      assert.equal(b.action({ op: 'supervisor', cred: c, on: true }, T0 + SEC), 1);
      assert.equal(b.action({ op: 'supervisor', cred: c, on: true }, T0 + SEC), 0);
      assert.deepEqual([b.core.supervisors(b.a('ward')), b.core.supervisors(0)], [1, 1]);
      b.action({ op: 'supervisor', cred: c, on: false }, T0 + 2 * SEC);
      assert.equal(b.core.supervisors(b.a('ward')), 0);
    });

    test('violation order: reuse, exit_not_entered, last_supervisor, reentry, sequence, occupancy, no_supervisor', () => {
      const s = site(`areas:
  - { id: a, exit: soft, supervision: soft }
  - { id: b, entry: soft, strict: true, maxOccupancy: 1, supervision: soft }
readers:
  - { id: AB, from: a, to: b, controller: c, reuseLockout: 60, reuseMode: soft }
  - { id: Ain, from: outside, to: a, controller: c }
  - { id: Bin, from: outside, to: b, controller: c }`);
      const b = make(s);
      const sup = int(50), other = int(51), x = int(52);
      b.action({ op: 'supervisor', cred: sup, on: true }, T0);
      b.badge(other, 'Ain', T0);
      b.badge(x, 'Bin', T0);
      b.badge(sup, 'Ain', T0);
      b.badge(sup, 'AB', T0 + SEC); // into b: b now holds x and sup
      b.action({ op: 'setLocation', cred: sup, area: b.a('a') }, T0 + 2 * SEC);
      // sup is in a (the only supervisor there, other present); b holds x; sup badges AB again within the lockout
      const r = b.badge(sup, 'AB', T0 + 3 * SEC);
      assert.deepEqual(vios(b.site, r), ['reuse/soft/-', 'last_supervisor/soft/a', 'occupancy/soft/b']);
      assert.deepEqual(vios(b.site, b.badge(other, 'AB', T0 + 4 * SEC)), ['occupancy/soft/b'], 'sup is in b now');
      b.action({ op: 'setLocation', cred: sup, area: 0 }, T0 + 5 * SEC);
      const y = int(53);
      b.badge(y, 'Ain', T0 + 5 * SEC);
      assert.deepEqual(vios(b.site, b.badge(y, 'AB', T0 + 6 * SEC)), ['occupancy/soft/b', 'no_supervisor/soft/b']);
    });
  });

  describe(`SPEC 13.3 seen on the ${factory.kind} core`, () => {
    test('seen is the state before the move, after expiry; occupancy carries its count', () => {
      const b = make(lockSite('entry: hard, maxOccupancy: 1'));
      const c = int(60), d = int(61);
      b.action({ op: 'forgive', cred: c }, T0);
      b.badge(c, 'R1', T0);
      let r = b.badge(c, 'R1', T0 + SEC);
      assert.deepEqual(r.seen, { location: b.a('building'), lastMoveAt: T0, lastReader: b.r('R1'), lastReaderAt: T0, freePass: true, exempt: false, supervisor: false, pending: null });
      r = b.badge(d, 'R1', T0 + 2 * SEC);
      assert.deepEqual(r.violations, [{ code: 'occupancy', mode: 'hard', area: b.a('building'), count: 1 }]);
      const p = b.badge(d, 'P1', T0 + 3 * SEC);
      assert.equal(p.pending, true);
      r = b.badge(d, 'P1', T0 + 4 * SEC);
      assert.deepEqual(r.seen.pending, { reader: b.r('P1'), to: b.a('dock'), deadline: T0 + 33 * SEC });
    });
  });
}

test('lockdown of outside is bad_message; an unknown area is unknown_area', () => {
  const s = lockSite();
  assert.throws(() => decodeMessage({ t: 'lockdown', area: 'outside', on: true, ts: T0 }, s, { mode: 'replay' }), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
  assert.throws(() => decodeMessage({ t: 'lockdown', area: 'nowhere', on: true, ts: T0 }, s, { mode: 'replay' }), (e: unknown) => e instanceof ApbError && e.code === 'unknown_area');
  assert.throws(() => decodeMessage({ t: 'lockdown', area: 'lab', on: 'yes', ts: T0 }, s, { mode: 'replay' }), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
  assert.throws(() => decodeMessage({ t: 'supervisor', cred: 7, ts: T0 }, s, { mode: 'replay' }), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
});

test('a WASM snapshot written by ABI 1 (layout 1) restores: nothing locked, no supervisors', () => {
  const s = wardSite('supervision: off');
  const w = createWasmCore(s, { wasm: LAYOUT2 }); // 24-byte records: ABI 1's layout plus two segments
  w.apply([{ op: 'badge', cred: int(1), reader: 0 }, { op: 'setLocation', cred: int(2), area: 2 }], T0);
  const v2 = w.snapshot();
  assert.equal(new DataView(v2.buffer, v2.byteOffset).getUint32(4, true), 2, 'the old core wrote an ABI 2 snapshot');
  // rewrite as ABI 1: version 1, 14 header fields, without the supervisor-count and lockdown segments (2 and 3)
  const dv = new DataView(v2.buffer, v2.byteOffset);
  const fields = dv.getUint32(8, true), n = dv.getUint32(12, true);
  assert.equal(fields, 15);
  const lens = Array.from({ length: n }, (_, i) => dv.getUint32(16 + fields * 8 + 4 * i, true));
  let at = 16 + fields * 8 + 4 * n;
  const segs = lens.map((len) => { const b = v2.subarray(at, at + len); at += len; return b; });
  const keep = segs.filter((_, i) => i !== 2 && i !== 3);
  const head = new Uint8Array(16 + 14 * 8 + 4 * keep.length);
  const hv = new DataView(head.buffer);
  hv.setUint32(0, dv.getUint32(0, true), true); hv.setUint32(4, 1, true); hv.setUint32(8, 14, true); hv.setUint32(12, keep.length, true);
  head.set(v2.subarray(16, 16 + 14 * 8), 16);
  keep.forEach((b, i) => hv.setUint32(16 + 14 * 8 + 4 * i, b.length, true));
  const v1 = Buffer.concat([head, ...keep]);
  const r = createWasmCore(s);
  r.restore(v1);
  assert.deepEqual([r.occupancy(1), r.occupancy(2), r.supervisors(1), r.locked(1)], [2, 1, 0, false]);
  assert.deepEqual(r.state(int(1)), w.state(int(1)));
  // a snapshot of another ABI is refused with a clear message
  hv.setUint32(4, 7, true);
  assert.throws(() => r.restore(Buffer.concat([head, ...keep])), /ABI version 7/);
});
