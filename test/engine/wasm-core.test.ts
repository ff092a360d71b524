/**
 * The WASM core through the EngineCore API: exact keys, index growth, every
 * violation code and mode in SPEC 12 order, the violation region's early
 * batch stop, occupancy with nested areas and timeouts against SPEC 8's
 * definition as the clock advances, passage, operator actions and offline
 * uploads. (SPEC examples on both cores: spec-examples.test.ts; WASM vs the
 * reference model on random streams: property.test.ts.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmCore } from '../../src/engine/wasm-core.js';
import { createReferenceCore } from '../../src/engine/reference-core.js';
import type { Cred } from '../../src/engine/cred.js';
import type { CoreOp, CoreResult, EngineCore } from '../../src/engine/types.js';
import { ApbError } from '../../src/errors.js';
import { HOUR, SEC, T0, bin, int, occupancyByDefinition, rng, siteOf, str } from './wasm-util.js';

type Badge = Extract<CoreResult, { op: 'badge' }>;
const badge = (core: EngineCore, cred: Cred, reader: number, t: number): Badge => core.apply([{ op: 'badge', cred, reader }], t)[0] as Badge;
const changed = (core: EngineCore, op: CoreOp, t: number): number => (core.apply([op], t)[0] as { changed: number }).changed;
const vs = (r: { violations: { code: string; mode: string; area: number }[] }): string[] => r.violations.map((v) => `${v.code}/${v.mode}/${v.area}`);

const TWO_AREAS = `areas:
  - { id: hall, entry: hard }
readers:
  - { id: in, from: outside, to: hall, controller: c }
  - { id: out, from: hall, to: outside, controller: c }`;

describe('credential keys', () => {
  test('integers up to 2^64-1, strings and binaries are distinct exact keys', () => {
    const core = createWasmCore(siteOf(TWO_AREAS));
    const max = int(2n ** 64n - 1n), maxLess = int(2n ** 64n - 2n), hiBit = int(2n ** 63n), zero = int(0);
    const s123 = str('123'), i123 = int(123), b123 = bin([0x31, 0x32, 0x33]), b7b = bin([0x7b]), s7b = str('{');
    const long64 = str('x'.repeat(63) + 'a'), long64b = str('x'.repeat(63) + 'b'), bin32 = bin(new Array(32).fill(0xff));
    const all = [max, maxLess, hiBit, zero, s123, i123, b123, b7b, s7b, long64, long64b, bin32];
    // every other credential enters; the rest stay unknown
    all.forEach((c, i) => { if (i % 2 === 0) assert.equal(badge(core, c, 0, T0).grant, true); });
    assert.equal(core.size(), all.length / 2);
    all.forEach((c, i) => {
      const s = core.state(c);
      assert.equal(s.stored, i % 2 === 0, `stored ${i}`);
      assert.equal(s.location, i % 2 === 0 ? 1 : -1, `location ${i}`);
    });
    // the entered ones are denied re-entry, the others granted: no key shares state
    all.forEach((c, i) => assert.equal(badge(core, c, 0, T0 + SEC).grant, i % 2 === 1, `second badge ${i}`));
    assert.equal(core.size(), all.length);
  });

  test('a string of more than 64 bytes or an empty binary is bad_message, nothing stored', () => {
    const core = createWasmCore(siteOf(TWO_AREAS));
    assert.throws(() => badge(core, str('y'.repeat(65)), 0, T0), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
    assert.throws(() => badge(core, bin([]), 0, T0), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
    assert.throws(() => badge(core, int(2n ** 64n), 0, T0), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
    assert.throws(() => core.apply([], -1), (e: unknown) => e instanceof ApbError && e.code === 'bad_message');
    assert.equal(core.size(), 0);
  });

  test('the index grows through many resizes (200k integers, 20k strings, 5k binaries) and finds every key', () => {
    const core = createWasmCore(siteOf(TWO_AREAS)); // starts at 1024 slots
    const N = 200_000;
    const creds: Cred[] = [];
    for (let i = 0; i < N; i++) creds.push(int(BigInt(i) * 0x9E3779B97F4A7C15n % (2n ** 64n)));
    for (let i = 0; i < 20_000; i++) creds.push(str(`ticket-${i}`));
    for (let i = 0; i < 5_000; i++) creds.push(bin([i & 0xff, i >> 8, 7]));
    // credential k enters when k % 3 != 0; the others are forgiven (stored, location unknown)
    for (let i = 0; i < creds.length; i += 1000) {
      const ops: CoreOp[] = creds.slice(i, i + 1000).map((cred, j) => ((i + j) % 3 ? { op: 'badge', cred, reader: 0 } : { op: 'forgive', cred }));
      for (const r of core.apply(ops, T0)) assert.ok(r.op === 'forgive' ? r.changed === 1 : r.op === 'badge' && r.grant);
    }
    assert.equal(core.size(), creds.length);
    const want = creds.filter((_, k) => k % 3 !== 0).length;
    assert.equal(core.occupancy(1), want);
    const r = rng(5);
    for (let n = 0; n < 5000; n++) {
      const k = r() % creds.length;
      const s = core.state(creds[k]!);
      assert.equal(s.location, k % 3 ? 1 : -1, `cred #${k}`);
      assert.equal(s.freePass, k % 3 === 0, `cred #${k} free pass`);
    }
    assert.equal(core.state(int(12345678901234567n)).stored, false);
    assert.equal(core.state(str('ticket-20000')).stored, false);
  });
});

describe('violations', () => {
  const NESTED = `areas:
  - { id: campus, entry: soft, exit: hard, maxOccupancy: 1 }
  - { id: building, parent: campus, entry: hard, exit: soft, strict: true, maxOccupancy: 1 }
  - { id: lab, parent: building, entry: soft, strict: true }
  - { id: annex, parent: campus, entry: hard, exit: hard }
readers:
  - { id: out-lab, from: outside, to: lab, controller: c, reuseLockout: 10, reuseMode: soft }
  - { id: lab-out, from: lab, to: outside, controller: c, reuseLockout: 10, reuseMode: hard }
  - { id: annex-lab, from: annex, to: lab, controller: c }
  - { id: out-annex, from: outside, to: annex, controller: c }`;

  test('every code and mode, in SPEC 12 order, deny reason = first hard (and the reference model agrees)', () => {
    const s = siteOf(NESTED);
    const core = createWasmCore(s), ref = createReferenceCore(s);
    const go = (cred: Cred, reader: number, t: number): Badge => {
      const r = badge(core, cred, reader, t);
      assert.deepEqual(r, badge(ref, cred, reader, t));
      return r;
    };
    const [campus, building, lab] = [1, 2, 3];
    const a = int(1), b = int(2);
    // a walks outside -> lab: enters campus, building, lab
    let r = go(a, 0, T0);
    assert.deepEqual([r.grant, r.reason, r.area], [true, 'ok', lab]);
    // again within the reuse lockout: reuse (soft), reentry for all three (outermost first), sequence (strict building, lab)
    r = go(a, 0, T0 + SEC);
    assert.deepEqual(vs(r), [
      'reuse/soft/-1',
      `reentry/soft/${campus}`, `reentry/hard/${building}`, `reentry/soft/${lab}`,
      `sequence/hard/${building}`, `sequence/soft/${lab}`,
    ]);
    assert.deepEqual([r.grant, r.reason, r.area, r.pending], [false, 'reentry', -1, false]);
    // b enters the annex: campus is full (max 1, holds a) -> soft occupancy, granted
    r = go(b, 3, T0 + 2 * SEC);
    assert.deepEqual(vs(r), [`occupancy/soft/${campus}`]);
    assert.deepEqual([r.grant, r.reason], [true, 'soft_violation']);
    // b (in the annex) at out-lab: re-enters campus, skips the sequence of building and lab, building is full
    r = go(b, 0, T0 + 3 * SEC);
    assert.deepEqual(vs(r), [`reentry/soft/${campus}`, `sequence/hard/${building}`, `sequence/soft/${lab}`, `occupancy/hard/${building}`]);
    assert.deepEqual([r.grant, r.reason], [false, 'sequence']);
    // b at lab-out exits lab, building, campus (innermost first): it never entered building (soft exit)
    r = go(b, 1, T0 + 4 * SEC);
    assert.deepEqual(vs(r), [`exit_not_entered/soft/${building}`]);
    assert.deepEqual([r.grant, r.reason, r.area], [true, 'soft_violation', 0]);
    // a leaves through lab-out twice: the second time reuse is hard and campus (hard exit) was not entered
    assert.equal(go(a, 1, T0 + 20 * SEC).grant, true);
    r = go(a, 1, T0 + 21 * SEC);
    assert.deepEqual(vs(r), ['reuse/hard/-1', `exit_not_entered/soft/${building}`, `exit_not_entered/hard/${campus}`]);
    assert.deepEqual([r.grant, r.reason], [false, 'reuse']);
    // a free pass turns the hard deny into a grant once
    assert.equal(changed(core, { op: 'forgive', cred: a }, T0 + 22 * SEC), 1);
    assert.equal(changed(ref, { op: 'forgive', cred: a }, T0 + 22 * SEC), 1);
    r = go(a, 1, T0 + 22 * SEC);
    assert.deepEqual([r.grant, r.reason], [true, 'forgiven']);
    assert.equal(core.state(a).freePass, false);
  });

  test('unknown readers are denied and store nothing', () => {
    const core = createWasmCore(siteOf(TWO_AREAS));
    for (const reader of [-1, 2, 99999]) {
      const r = badge(core, int(5), reader, T0);
      const seen = { location: -1, lastMoveAt: 0, lastReader: -1, lastReaderAt: 0, freePass: false, exempt: false, supervisor: false, pending: null };
      assert.deepEqual(r, { op: 'badge', grant: false, reason: 'unknown_reader', violations: [], area: -1, pending: false, seen });
      assert.deepEqual(core.apply([{ op: 'passage', cred: int(5), reader }], T0), [{ op: 'passage', applied: false }]);
      assert.deepEqual(core.apply([{ op: 'offline', cred: int(5), reader, ts: T0, granted: true }], T0), [{ op: 'offline', applied: false, violations: [], seen }]);
    }
    assert.equal(core.size(), 0);
  });

  test('a batch whose violations overflow the violation region is finished in several calls', () => {
    // 40 nested soft strict areas: one re-entry raises reentry + sequence in each of them (80 words);
    // 1500 badges need ~100,000 words, more than the region (65536) holds for one call
    const depth = 40;
    let yaml = 'areas:\n';
    for (let i = 1; i <= depth; i++) yaml += `  - { id: a${i}, parent: ${i === 1 ? 'outside' : `a${i - 1}`}, entry: soft, strict: true, maxOccupancy: 1 }\n`;
    yaml += `readers:\n  - { id: deep, from: outside, to: a${depth}, controller: c }\n  - { id: up, from: a${depth}, to: outside, controller: c }`;
    const s = siteOf(yaml);
    const wasm = createWasmCore(s), ref = createReferenceCore(s);
    const ops: CoreOp[] = [];
    for (let i = 0; i < 1500; i++) ops.push({ op: 'badge', cred: int(i % 3), reader: i % 5 === 4 ? 1 : 0 });
    const rw = wasm.apply(ops, T0), rr = ref.apply(ops, T0);
    assert.deepEqual(rw, rr);
    const words = rw.reduce((n, r) => n + (r.op === 'badge' ? r.violations.length : 0), 0);
    assert.ok(rw.some((r) => r.op === 'badge' && r.violations.length === 2 * depth), 'reentry and sequence in every area');
    assert.ok(words > 65536, `${words} violations in one apply(): more than one call's region`);
  });
});

describe('occupancy', () => {
  const TIMED = `areas:
  - { id: campus }
  - { id: building, parent: campus, presenceTimeout: 60 }
  - { id: lab, parent: building, presenceTimeout: 30 }
  - { id: shed, parent: campus }
readers:
  - { id: to-lab, from: outside, to: lab, controller: c }
  - { id: to-building, from: outside, to: building, controller: c }
  - { id: to-shed, from: outside, to: shed, controller: c }
  - { id: leave, from: campus, to: outside, controller: c }`;

  test('nested areas and presence timeouts stay exact as the clock advances (SPEC 8 definition)', () => {
    const s = siteOf(TIMED, 200);
    const core = createWasmCore(s);
    const creds: Cred[] = [];
    for (let i = 0; i < 60; i++) creds.push(i % 2 ? int(i) : str(`c${i}`));
    const r = rng(9);
    let now = T0;
    for (let step = 0; step < 400; step++) {
      now += (r() % 7) * SEC + (r() % 1000);
      const c = creds[r() % creds.length]!;
      const k = r() % 10;
      const op: CoreOp = k < 7 ? { op: 'badge', cred: c, reader: r() % 4 }
        : k === 7 ? { op: 'offline', cred: c, reader: r() % 4, ts: now - (r() % 90) * SEC, granted: true }
          : k === 8 ? { op: 'setLocation', cred: c, area: r() % 5 } : { op: 'reset', cred: c };
      core.apply([op], now);
      if (step % 3 === 0) { now += r() % 20_000; core.advance(now); }
      for (let a = 0; a < 5; a++) assert.equal(core.occupancy(a), occupancyByDefinition(core, s, creds, a, now), `step ${step} area ${s.areaIds[a]}`);
    }
  });

  test('timeouts take effect at exactly D; forgetAfter resets at its own instant', () => {
    const s = siteOf(TIMED, 120);
    const core = createWasmCore(s);
    const c = int(77);
    badge(core, c, 0, T0); // into the lab
    assert.deepEqual([0, 1, 2, 3].map((a) => core.occupancy(a)), [1, 1, 1, 1]);
    core.advance(T0 + 30 * SEC - 1);
    assert.equal(core.occupancy(3), 1);
    core.advance(T0 + 30 * SEC);
    assert.deepEqual([0, 1, 2, 3].map((a) => core.occupancy(a)), [1, 1, 1, 0], 'lab timed out, building not yet');
    core.advance(T0 + 60 * SEC);
    assert.deepEqual([0, 1, 2, 3].map((a) => core.occupancy(a)), [1, 1, 0, 0]);
    assert.equal(core.state(c).location, 3, 'a presence timeout does not change the state');
    core.advance(T0 + 120 * SEC);
    assert.deepEqual([0, 1, 2, 3].map((a) => core.occupancy(a)), [0, 0, 0, 0]);
    const st = core.state(c);
    assert.deepEqual([st.location, st.lastMoveAt, st.lastReader, st.lastReaderAt], [-1, T0 + 120 * SEC, -1, 0]);
    // a re-entry after the timeout is counted again
    badge(core, c, 1, T0 + 121 * SEC);
    assert.deepEqual([0, 1, 2, 3].map((a) => core.occupancy(a)), [1, 1, 1, 0]);
  });

  test('resetArea reaches nested areas, timed-out presences included; outside resets everyone', () => {
    const s = siteOf(TIMED);
    const core = createWasmCore(s);
    badge(core, int(1), 0, T0); badge(core, int(2), 1, T0); badge(core, int(3), 2, T0); badge(core, int(4), 3, T0);
    core.advance(T0 + HOUR);
    assert.equal(changed(core, { op: 'resetArea', area: 2 }, T0 + HOUR), 2, 'building: the lab and building ones');
    assert.equal(core.state(int(1)).lastMoveAt, T0 + HOUR);
    assert.equal(changed(core, { op: 'resetArea', area: 2 }, T0 + HOUR), 0, 'unknown ones are untouched');
    assert.equal(changed(core, { op: 'resetArea', area: 0 }, T0 + HOUR), 2, 'outside: the shed one and the one known outside');
    assert.deepEqual([0, 1, 2, 3, 4].map((a) => core.occupancy(a)), [0, 0, 0, 0, 0]);
    assert.equal(core.state(int(4)).location, -1);
  });
});

describe('bulk path', () => {
  test('badgeInts decides exactly like apply() on the reference model', () => {
    const s = siteOf(`areas:
  - { id: campus, entry: hard, exit: soft, maxOccupancy: 50 }
  - { id: building, parent: campus, entry: hard, strict: true, presenceTimeout: 20 }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c, reuseLockout: 5 }
  - { id: gate-out, from: campus, to: outside, controller: c }
  - { id: b-in, from: campus, to: building, controller: c }
  - { id: b-out, from: building, to: campus, controller: c }`);
    const w = createWasmCore(s), ref = createReferenceCore(s);
    const r = rng(3);
    const n = 3000;
    const lo = new Uint32Array(n), hi = new Uint32Array(n), readers = new Int32Array(n), grants = new Uint8Array(n);
    let now = T0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < n; i++) { lo[i] = r() % 200; hi[i] = i % 7 === 0 ? 0xffffffff : 0; readers[i] = (r() % 5) - (i % 50 === 0 ? 1 : 0); }
      now += 3 * SEC;
      const granted = w.badgeInts(lo, hi, readers, now, grants);
      const ops: CoreOp[] = Array.from(lo, (v, i) => ({ op: 'badge', cred: int((BigInt(hi[i]!) << 32n) | BigInt(v)), reader: readers[i]! }));
      const want = ref.apply(ops, now).map((x) => (x.op === 'badge' && x.grant ? 1 : 0));
      assert.deepEqual(Array.from(grants), want, `round ${round}`);
      assert.equal(granted, want.reduce((a: number, b) => a + b, 0));
    }
    for (let a = 0; a < 3; a++) assert.equal(w.occupancy(a), ref.occupancy(a));
  });

  test('lookupInts counts the stored credentials among its keys and changes nothing', () => {
    const w = createWasmCore(siteOf(TWO_AREAS), { capacity: 16 });
    // 3,000 stored (the table grows past its 16: slots move), every third one with the high word set
    const n = 3000;
    const lo = new Uint32Array(n), hi = new Uint32Array(n), readers = new Int32Array(n), grants = new Uint8Array(n);
    for (let i = 0; i < n; i++) { lo[i] = i * 2; hi[i] = i % 3 === 0 ? 7 : 0; }
    assert.equal(w.badgeInts(lo, hi, readers, T0, grants), n);
    // the same keys, their odd neighbours and the same low words under another high word: 2,500 of 5,000 stored
    const qlo = new Uint32Array(5000), qhi = new Uint32Array(5000);
    let want = 0;
    for (let i = 0; i < 5000; i++) {
      const k = i >> 1;
      qlo[i] = i % 2 === 0 ? k * 2 : k * 2 + 1;
      qhi[i] = k % 3 === 0 ? 7 : 0;
      if (i % 2 === 0) want++;
      if (i % 10 === 4) { qhi[i] = 1; if (i % 2 === 0) want--; }
    }
    const before = w.state(int(2));
    assert.equal(w.lookupInts(qlo, qhi), want);
    assert.equal(w.size(), n);
    assert.equal(w.occupancy(1), n);
    assert.deepEqual(w.state(int(2)), before);
    assert.equal(w.lookupInts(new Uint32Array(0), new Uint32Array(0)), 0);
  });

  test('snapshot into a spare buffer: the same bytes (headroom zeroed), in that buffer; a too-small one gets a new buffer with room to spare', () => {
    const core = createWasmCore(siteOf(TWO_AREAS));
    const k = 3000;
    const lo = new Uint32Array(k), hi = new Uint32Array(k), rd = new Int32Array(k), g = new Uint8Array(k);
    for (let i = 0; i < k; i++) { lo[i] = i * 7; rd[i] = i % 2; }
    core.badgeInts(lo, hi, rd, T0, g);
    const fresh = core.snapshot(32);
    const spare = new Uint8Array(fresh.length + 100).fill(0xab);
    const into = core.snapshot(32, spare);
    assert.equal(into.buffer, spare.buffer);
    assert.equal(into.length, fresh.length);
    assert.deepEqual(Buffer.from(into), Buffer.from(fresh));
    assert.equal(fresh.buffer.byteLength, fresh.length, 'without a buffer offered: exactly the image');
    const small = new Uint8Array(fresh.length - 1);
    const other = core.snapshot(32, small);
    assert.notEqual(other.buffer, small.buffer);
    assert.deepEqual(Buffer.from(other), Buffer.from(fresh));
    assert.ok(other.buffer.byteLength >= fresh.length + (fresh.length >>> 4), 'too small: a new buffer with 1/16 to spare');
    const back = createWasmCore(siteOf(TWO_AREAS));
    back.restore(into.subarray(32));
    assert.deepEqual(Buffer.from(back.snapshot(32)), Buffer.from(fresh));
  });

  test('calendarBytes grows with the distinct instants of moves under a presenceTimeout, not with credentials', () => {
    const timed = siteOf(`areas:
  - { id: hall, presenceTimeout: 3600 }
readers:
  - { id: in, from: outside, to: hall, controller: c }`);
    const w = createWasmCore(timed), plain = createWasmCore(siteOf(TWO_AREAS));
    const empty = w.calendarBytes();
    assert.ok(empty > 0 && Number.isFinite(empty));
    const k = 4000;
    const lo = new Uint32Array(k), hi = new Uint32Array(k), rd = new Int32Array(k), g = new Uint8Array(k);
    for (let i = 0; i < k; i++) lo[i] = i;
    // 4,000 credentials in one instant: one calendar entry
    w.badgeInts(lo, hi, rd, T0, g);
    plain.badgeInts(lo, hi, rd, T0, g);
    assert.equal(w.calendarBytes(), empty);
    // 4,000 more, each in an instant of its own: 4,000 entries (16 B in the map, 16 B in the heap)
    const one = new Uint32Array(1), h1 = new Uint32Array(1), r1 = new Int32Array(1), g1 = new Uint8Array(1);
    for (let i = 0; i < k; i++) { one[0] = k + i; w.badgeInts(one, h1, r1, T0 + 1 + i, g1); }
    assert.ok(w.calendarBytes() >= k * 32, `${w.calendarBytes()} bytes for ${k} entries`);
    assert.equal(plain.calendarBytes(), empty, 'no timeout: the calendar stays empty');
  });
});
