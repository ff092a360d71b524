/**
 * WASM core: snapshot -> restore on a fresh core gives identical behaviour
 * (and identical bytes), bad snapshots are refused without a state change,
 * reconfigure remaps locations, readers, pending moves and schedule flags
 * exactly as the reference model does, and a module of another ABI version
 * is refused with abi_mismatch.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmCore, HOST_ABI_VERSION } from '../../src/engine/wasm-core.js';
import { createReferenceCore } from '../../src/engine/reference-core.js';
import { diffSites } from '../../src/config/diff.js';
import type { Cred } from '../../src/engine/cred.js';
import type { CoreOp, EngineCore } from '../../src/engine/types.js';
import type { CompiledSite } from '../../src/config/types.js';
import { ApbError } from '../../src/errors.js';
import { SEC, T0, bin, int, rng, siteOf, str, wasmWithAbi } from './wasm-util.js';

const SITE = `areas:
  - { id: campus, entry: hard, exit: soft, maxOccupancy: 30 }
  - { id: building, parent: campus, entry: hard, strict: true, presenceTimeout: 40 }
  - { id: lab, parent: building, entry: soft, commitOn: passage, passageTimeout: 10 }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c, reuseLockout: 5 }
  - { id: gate-out, from: campus, to: outside, controller: c }
  - { id: b-in, from: campus, to: building, controller: c, reuseLockout: 5, reuseMode: soft }
  - { id: b-out, from: building, to: campus, controller: c }
  - { id: lab-in, from: building, to: lab, controller: c }
  - { id: lab-out, from: lab, to: building, controller: c }`;

const CREDS: Cred[] = [];
for (let i = 0; i < 40; i++) CREDS.push(i % 3 === 0 ? int(2n ** 64n - 1n - BigInt(i)) : i % 3 === 1 ? str(`t-${i}`) : bin([i, 0, i]));

/** a random op stream against `site` */
function stream(site: CompiledSite, seed: number, n: number, start: number): { op: CoreOp; now: number }[] {
  const r = rng(seed);
  const out: { op: CoreOp; now: number }[] = [];
  let now = start;
  const R = site.readerIds.length, A = site.areaIds.length;
  for (let i = 0; i < n; i++) {
    now += (r() % 4) * SEC + (r() % 500);
    const c = CREDS[r() % CREDS.length]!;
    const k = r() % 20;
    const op: CoreOp = k < 12 ? { op: 'badge', cred: c, reader: r() % R }
      : k < 15 ? { op: 'passage', cred: c, reader: r() % R }
        : k === 15 ? { op: 'offline', cred: c, reader: r() % R, ts: now - (r() % 60) * SEC, granted: r() % 4 !== 0 }
          : k === 16 ? { op: 'forgive', cred: c }
            : k === 17 ? { op: 'exempt', cred: c, on: r() % 2 === 0 }
              : k === 18 ? { op: 'setLocation', cred: c, area: r() % A } : { op: 'reset', cred: c };
    out.push({ op, now });
  }
  return out;
}

function sameState(a: EngineCore, b: EngineCore, site: CompiledSite, where: string): void {
  assert.equal(a.size(), b.size(), `${where}: size`);
  for (const c of CREDS) assert.deepEqual(a.state(c), b.state(c), `${where}: state`);
  for (let x = 0; x < site.areaIds.length; x++) assert.equal(a.occupancy(x), b.occupancy(x), `${where}: occupancy of ${site.areaIds[x]}`);
}

describe('snapshot and restore', () => {
  for (const forgetAfter of [0, 90]) {
    test(`a restored core behaves identically and snapshots to the same bytes (forgetAfter ${forgetAfter})`, () => {
      const s = siteOf(SITE, forgetAfter);
      const a = createWasmCore(s);
      const ops = stream(s, 17 + forgetAfter, 1200, T0);
      ops.slice(0, 600).forEach(({ op, now }) => a.apply([op], now));
      a.setScheduleActive(2, false);
      const snap = a.snapshot();
      const b = createWasmCore(s);
      b.apply([{ op: 'badge', cred: int(999), reader: 0 }], T0); // state that restore must replace
      b.restore(snap);
      assert.deepEqual(b.snapshot(), snap, 'byte-identical snapshot after restore');
      assert.equal(b.state(int(999)).stored, false);
      sameState(a, b, s, 'after restore');
      for (const { op, now } of ops.slice(600)) assert.deepEqual(b.apply([op], now), a.apply([op], now));
      sameState(a, b, s, 'after the rest of the stream');
    });
  }

  test('a bad snapshot is refused with bad_message and changes nothing', () => {
    const s = siteOf(SITE);
    const a = createWasmCore(s);
    a.apply([{ op: 'badge', cred: int(1), reader: 0 }], T0);
    const good = a.snapshot();
    const isBad = (e: unknown): boolean => e instanceof ApbError && e.code === 'bad_message';
    assert.throws(() => a.restore(new Uint8Array([1, 2, 3])), isBad);
    assert.throws(() => a.restore(good.subarray(0, good.length - 1)), isBad);
    const longer = new Uint8Array(good.length + 1); longer.set(good);
    assert.throws(() => a.restore(longer), isBad);
    const other = createWasmCore(siteOf(`areas:\n  - { id: x }\nreaders:\n  - { id: r, from: outside, to: x, controller: c }`));
    assert.throws(() => other.restore(good), isBad, 'made for another site');
    assert.throws(() => createReferenceCore(s).restore(good), isBad, 'the reference core refuses it too');
    assert.equal(a.state(int(1)).location, 1);
    assert.equal(a.occupancy(1), 1);
  });
});

describe('reconfigure', () => {
  const NEXT = `areas:
  - { id: campus, entry: hard, exit: soft, maxOccupancy: 30, presenceTimeout: 100 }
  - { id: lab, parent: campus, entry: soft, commitOn: passage, passageTimeout: 25 }
  - { id: annex, parent: campus }
readers:
  - { id: lab-in, from: campus, to: lab, controller: c }
  - { id: gate-in, from: outside, to: campus, controller: c, reuseLockout: 5 }
  - { id: gate-out, from: campus, to: outside, controller: c }
  - { id: annex-in, from: campus, to: annex, controller: c }`;

  for (const forgetAfter of [0, 60]) {
    test(`maps locations, readers, pending moves and schedule flags like the reference model (next forgetAfter ${forgetAfter})`, () => {
      const s1 = siteOf(SITE), s2 = siteOf(NEXT, forgetAfter);
      const { areaMap, readerMap } = diffSites(s1, s2);
      assert.equal(areaMap[2], -1, 'building is gone');
      assert.equal(readerMap[4], 0, 'lab-in moved to index 0');
      const w = createWasmCore(s1), r = createReferenceCore(s1);
      const ops = stream(s1, 5, 400, T0);
      let last = T0;
      for (const { op, now } of ops) { assert.deepEqual(w.apply([op], now), r.apply([op], now)); last = now; }
      // pending moves at lab-in right before the swap (passage timeout 10 s -> 25 s: their deadlines must stay)
      const inBuilding = str('in-building'), inLab = int(4242);
      for (const core of [w, r]) {
        core.apply([{ op: 'setLocation', cred: inBuilding, area: 2 }, { op: 'badge', cred: inBuilding, reader: 4 }], last);
        core.setScheduleActive(1, false);
      }
      assert.notEqual(w.state(inBuilding).pending, null);
      w.reconfigure(s2, areaMap, readerMap);
      r.reconfigure(s2, areaMap, readerMap);
      sameState(w, r, s2, 'after reconfigure');
      for (const c of [inBuilding, inLab]) assert.deepEqual(w.state(c), r.state(c));
      const p = w.state(inBuilding).pending;
      assert.deepEqual(p, { reader: 0, to: 2, deadline: last + 10 * SEC }, 'pending kept, deadline unchanged, target mapped');
      // the passage applies the kept pending move before its old deadline, not after
      assert.deepEqual(w.apply([{ op: 'passage', cred: inBuilding, reader: 0 }], last + 9 * SEC), r.apply([{ op: 'passage', cred: inBuilding, reader: 0 }], last + 9 * SEC));
      assert.equal(w.state(inBuilding).location, 2);
      for (const { op, now } of stream(s2, 6, 400, last + 10 * SEC)) assert.deepEqual(w.apply([op], now), r.apply([op], now));
      sameState(w, r, s2, 'after the stream on the new site');
      // a snapshot of the reconfigured core restores on a fresh core of the new site
      const b = createWasmCore(s2);
      b.restore(w.snapshot());
      sameState(w, b, s2, 'restored after reconfigure');
    });
  }
});

describe('ABI', () => {
  test('a module of another ABI version, without the exports, or not WebAssembly is refused with abi_mismatch', () => {
    const s = siteOf(SITE);
    const abi = (e: unknown): boolean => e instanceof ApbError && e.code === 'abi_mismatch';
    assert.throws(() => createWasmCore(s, { wasm: wasmWithAbi(HOST_ABI_VERSION + 998) }), (e: unknown) => abi(e) && new RegExp(`ABI version ${HOST_ABI_VERSION + 998}`).test((e as Error).message));
    assert.throws(() => createWasmCore(s, { wasm: wasmWithAbi(HOST_ABI_VERSION) }), (e: unknown) => abi(e) && /no memory|lacks export/.test((e as Error).message));
    assert.throws(() => createWasmCore(s, { wasm: new Uint8Array([0, 1, 2, 3]) }), abi);
    assert.equal(createWasmCore(s).kind, 'wasm', 'the real build loads');
  });
});
