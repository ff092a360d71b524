/**
 * WASM core memory layout (assembly/table.ts 64-byte buckets,
 * assembly/calendar.ts expiry calendar):
 *  - a snapshot of the previous layout (ABI 2: 24-byte records + index +
 *    timeout list, with SPEC 13's supervisor bits and lockdown flags; the
 *    core built from main before the buckets: test/fixtures/core-layout2.wasm)
 *    is migrated on restore, by restore() and restoreFromFile(): every
 *    credential's state, every count (supervisors' too), the lockdowns, the
 *    muster lists and the pending overrides come through, and the migrated
 *    core then decides exactly like the old one (ABI 1 snapshots, the same
 *    records without SPEC 13's segments: test/engine/spec13.test.ts);
 *  - a damaged layout-2 snapshot is refused with bad_message, core unchanged;
 *  - the table grows in the middle of batches (slot numbers change under the
 *    slots the batch looked up first) while presence timeouts and forgetAfter
 *    expire, and the core still agrees with the reference model;
 *  - the expiry calendar under thousands of distinct instants (its map grows,
 *    entries expire every millisecond and are deleted from the middle of
 *    probe runs): occupancy equals the reference model's at every step.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmCore, createWasmCore } from '../../src/engine/wasm-core.js';
import { createEngine } from '../../src/engine/engine.js';
import { createReferenceCore } from '../../src/engine/reference-core.js';
import { diffSites } from '../../src/config/diff.js';
import type { Cred } from '../../src/engine/cred.js';
import type { CoreOp, EngineCore } from '../../src/engine/types.js';
import type { CompiledSite } from '../../src/config/types.js';
import { ApbError } from '../../src/errors.js';
import { SEC, T0, bin, int, rng, siteOf, str } from './wasm-util.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const LAYOUT2 = readFileSync(join(ROOT, 'test', 'fixtures', 'core-layout2.wasm'));

const SITE = `areas:
  - { id: campus, entry: hard, exit: soft, maxOccupancy: 3000 }
  - { id: building, parent: campus, entry: hard, strict: true, presenceTimeout: 40, supervision: soft }
  - { id: lab, parent: building, entry: soft, commitOn: passage, passageTimeout: 10 }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c, reuseLockout: 5 }
  - { id: gate-out, from: campus, to: outside, controller: c }
  - { id: b-in, from: campus, to: building, controller: c, reuseLockout: 5, reuseMode: soft }
  - { id: b-out, from: building, to: campus, controller: c }
  - { id: lab-in, from: building, to: lab, controller: c }
  - { id: lab-out, from: lab, to: building, controller: c }`;

/** the same tree with lab-in's passage time changed: pending moves at lab-in get override entries */
const NEXT = SITE.replace('passageTimeout: 10', 'passageTimeout: 25');

const CREDS: Cred[] = [];
for (let i = 0; i < 3000; i++) CREDS.push(i % 5 === 0 ? str(`t-${i}`) : i % 5 === 1 ? bin([i & 255, i >> 8, 9]) : int(2n ** 64n - 1n - BigInt(i) * 7919n));

function stream(site: CompiledSite, seed: number, n: number, start: number): { ops: CoreOp[]; now: number }[] {
  const r = rng(seed);
  const out: { ops: CoreOp[]; now: number }[] = [];
  let now = start;
  const R = site.readerIds.length, A = site.areaIds.length;
  for (let b = 0; b < n; b++) {
    now += (r() % 3) * SEC + (r() % 700);
    const ops: CoreOp[] = [];
    for (let i = 0, k = 1 + (r() % 40); i < k; i++) {
      const c = CREDS[r() % CREDS.length]!;
      const x = r() % 20;
      ops.push(x < 12 ? { op: 'badge', cred: c, reader: r() % R }
        : x < 15 ? { op: 'passage', cred: c, reader: r() % R }
          : x === 15 ? { op: 'offline', cred: c, reader: r() % R, ts: now - (r() % 120) * SEC, granted: r() % 4 !== 0 }
            : x === 16 ? { op: 'forgive', cred: c }
              : x === 17 ? { op: 'exempt', cred: c, on: r() % 2 === 0 }
                : x === 18 ? { op: 'setLocation', cred: c, area: r() % A }
                  : x === 19 && r() % 2 === 0 ? { op: 'supervisor', cred: c, on: r() % 3 !== 0 } : { op: 'reset', cred: c });
    }
    out.push({ ops, now });
  }
  return out;
}

function sameState(a: EngineCore, b: EngineCore, site: CompiledSite, where: string): void {
  assert.equal(a.size(), b.size(), `${where}: size`);
  for (const c of CREDS) assert.deepEqual(a.state(c), b.state(c), `${where}: state`);
  for (let x = 0; x < site.areaIds.length; x++) {
    assert.equal(a.occupancy(x), b.occupancy(x), `${where}: occupancy of ${site.areaIds[x]}`);
    assert.equal(a.supervisors(x), b.supervisors(x), `${where}: supervisors in ${site.areaIds[x]}`);
    assert.equal(a.locked(x), b.locked(x), `${where}: lockdown of ${site.areaIds[x]}`);
    assert.deepEqual(a.credentialsIn(x, 0, 10_000), b.credentialsIn(x, 0, 10_000), `${where}: muster list of ${site.areaIds[x]}`);
  }
}

/** an old-layout core on NEXT, with pending moves whose target/deadline came from before a reconfigure */
function oldCore(forgetAfter: number): { old: WasmCore; site: CompiledSite; last: number } {
  const s1 = siteOf(SITE, forgetAfter), s2 = siteOf(NEXT, forgetAfter);
  const old = createWasmCore(s1, { wasm: LAYOUT2 });
  let last = T0;
  for (const { ops, now } of stream(s1, 3 + forgetAfter, 300, T0)) { old.apply(ops, now); last = now; }
  const pend = [str('pending-a'), int(77), bin([1, 2, 3])];
  for (const c of pend) old.apply([{ op: 'setLocation', cred: c, area: 2 }, { op: 'badge', cred: c, reader: 4 }], last);
  const { areaMap, readerMap } = diffSites(s1, s2);
  old.reconfigure(s2, areaMap, readerMap);
  old.setScheduleActive(1, false);
  old.apply([{ op: 'lockdown', area: 3, on: true }], last);
  for (const c of pend) assert.notEqual(old.state(c).pending, null, 'a pending move crosses the reconfigure');
  return { old, site: s2, last };
}

describe('layout-2 (ABI 2) snapshots', () => {
  for (const forgetAfter of [0, 90]) {
    test(`are migrated on restore and restoreFromFile: same states, counts, muster lists and decisions (forgetAfter ${forgetAfter})`, () => {
      const { old, site, last } = oldCore(forgetAfter);
      const snap = old.snapshot();
      assert.equal(new DataView(snap.buffer, snap.byteOffset).getUint32(4, true), 2, 'the old core wrote a version-2 snapshot');
      assert.ok(old.supervisors(2) > 0 && old.locked(3), 'supervisors present and a lockdown to carry over');
      const dir = mkdtempSync(join(tmpdir(), 'apb-layout-'));
      try {
        const file = join(dir, 'old.snap');
        writeFileSync(file, snap);
        const viaBytes = createWasmCore(site);
        viaBytes.restore(snap);
        const viaFile = createWasmCore(site);
        const fd = openSync(file, 'r');
        try { viaFile.restoreFromFile(fd, 0, snap.length); } finally { closeSync(fd); }
        sameState(old, viaBytes, site, 'migrated by restore()');
        sameState(old, viaFile, site, 'migrated by restoreFromFile()');
        // a pending move with an override entry: its old deadline still holds
        assert.deepEqual(viaBytes.state(str('pending-a')).pending, old.state(str('pending-a')).pending);
        // the migrated core snapshots in the new layout, which restores to the same bytes
        const again = createWasmCore(site);
        again.restore(viaBytes.snapshot());
        assert.deepEqual(again.snapshot(), viaBytes.snapshot());
        for (const { ops, now } of stream(site, 9 + forgetAfter, 300, last + SEC)) {
          const want = old.apply(ops, now);
          assert.deepEqual(viaBytes.apply(ops, now), want);
          assert.deepEqual(viaFile.apply(ops, now), want);
        }
        sameState(old, viaBytes, site, 'after the stream');
        sameState(old, viaFile, site, 'after the stream (file)');
      } finally { rmSync(dir, { recursive: true, force: true }); }
    });
  }

  test('a damaged layout-2 snapshot is refused with bad_message and changes nothing', () => {
    const { old, site } = oldCore(0);
    const snap = old.snapshot();
    const core = createWasmCore(site);
    core.apply([{ op: 'badge', cred: int(5), reader: 0 }], T0);
    const isBad = (e: unknown): boolean => e instanceof ApbError && e.code === 'bad_message';
    const records = new Uint8Array(snap); // header field 3 (records) at 16 + 3 × 8
    new DataView(records.buffer).setBigInt64(16 + 3 * 8, 1n << 40n, true);
    assert.throws(() => core.restore(records), isBad, 'absurd record count');
    const other = createWasmCore(siteOf(SITE.replace('presenceTimeout: 40', 'presenceTimeout: 40 }\n  - { id: annex, parent: campus')));
    assert.throws(() => other.restore(snap), isBad, 'made for another site');
    assert.throws(() => core.restore(snap.subarray(0, snap.length - 3)), isBad, 'truncated');
    const relabelled = new Uint8Array(snap); // a version-2 body under a version-3 head
    new DataView(relabelled.buffer).setUint32(4, 3, true);
    assert.throws(() => core.restore(relabelled), (e: unknown) => isBad(e) && /version 3 in its head, layout 2/.test((e as Error).message), 'head and body disagree');
    assert.equal(core.state(int(5)).location, 1);
    assert.equal(core.occupancy(1), 1);
  });
});

describe('table growth', () => {
  test('the table grows in the middle of batches while timeouts and forgetAfter expire: same as the reference model', () => {
    const s = siteOf(SITE, 30);
    const w = createWasmCore(s), ref = createReferenceCore(s); // w starts at 512 buckets
    const r = rng(21);
    let now = T0;
    const creds: Cred[] = [];
    for (let b = 0; b < 40; b++) {
      now += (r() % 20) * SEC;
      const ops: CoreOp[] = [];
      for (let i = 0; i < 1000; i++) {
        // mostly new credentials (growth), some known ones (hints into the old table)
        const c = creds.length > 0 && r() % 4 === 0 ? creds[r() % creds.length]! : int(BigInt(creds.push(int(1_000_000 + creds.length)) + 999_999));
        ops.push(r() % 5 === 0 ? { op: 'setLocation', cred: c, area: r() % 4 } : { op: 'badge', cred: c, reader: r() % 6 });
      }
      assert.deepEqual(w.apply(ops, now), ref.apply(ops, now), `batch ${b}`);
      for (let x = 0; x < 4; x++) assert.equal(w.occupancy(x), ref.occupancy(x), `batch ${b}: occupancy of area ${x}`);
    }
    assert.equal(w.size(), ref.size());
    assert.ok(w.size() > 20_000, 'enough credentials for several growths');
    for (const c of creds.filter((_, k) => k % 7 === 0)) assert.deepEqual(w.state(c), ref.state(c));
    // record order survived the growths: the muster lists (creation order, record numbers) are the same
    for (let x = 0; x < 4; x++) assert.deepEqual(w.credentialsIn(x, 0, 100_000), ref.credentialsIn(x, 0, 100_000), `muster list of area ${x}`);
    // the clock alone: presences time out and credentials are forgotten, counts follow
    for (const dt of [10, 30, 45, 100]) {
      w.advance(now + dt * SEC); ref.advance(now + dt * SEC);
      for (let x = 0; x < 4; x++) assert.equal(w.occupancy(x), ref.occupancy(x), `+${dt} s: occupancy of area ${x}`);
    }
    for (const c of creds.filter((_, k) => k % 11 === 0)) assert.deepEqual(w.state(c), ref.state(c));
  });
});

describe('segmented table', () => {
  test('grows under load across many 1 MiB segments: decisions, counts and paged muster lists as the reference model; no outgrown copies left in memory', () => {
    const s = siteOf(SITE, 0);
    const w = createWasmCore(s), ref = createReferenceCore(s);
    const r = rng(77);
    let now = T0;
    let made = 0;
    const known: Cred[] = [];
    const growths: number[] = [];
    for (let b = 0; made < 150_000; b++) {
      now += 1 + (r() % 3) * SEC;
      const ops: CoreOp[] = [];
      for (let i = 0; i < 1024; i++) {
        // mostly new credentials (each batch may grow the table mid-way), a quarter already known
        let c: Cred;
        if (known.length > 0 && r() % 4 === 0) c = known[r() % known.length]!;
        else { made++; c = made % 3 === 0 ? str(`s-${made}`) : int(BigInt(made) * 2654435761n); if (made % 5 === 0) known.push(c); }
        const x = r() % 10;
        ops.push(x < 6 ? { op: 'setLocation', cred: c, area: 1 + (r() % 3) } : x < 9 ? { op: 'badge', cred: c, reader: r() % 6 } : { op: 'passage', cred: c, reader: r() % 6 });
      }
      const before = w.indexCapacity();
      assert.deepEqual(w.apply(ops, now), ref.apply(ops, now), `batch ${b}`);
      if (w.indexCapacity() !== before) growths.push(w.indexCapacity());
      if (b % 8 === 0) for (let x = 0; x < 4; x++) assert.equal(w.occupancy(x), ref.occupancy(x), `batch ${b}: occupancy of area ${x}`);
    }
    // memory (before any muster listing adds its own region): the table plus little; copying into fresh memory at each growth would leave every outgrown table behind
    const tableBytes = (w.indexCapacity() / 2) * 64;
    assert.ok(w.memoryBytes() < tableBytes * 1.2 + 4 * 2 ** 20, `${w.memoryBytes()} B of linear memory for a ${tableBytes} B table`);
    assert.equal(w.size(), ref.size());
    assert.ok(growths.filter((c) => c > 2 * 16384).length >= 3, `several growths of a segmented table (${growths.join(', ')})`);
    for (let x = 0; x < 4; x++) assert.equal(w.occupancy(x), ref.occupancy(x), `occupancy of area ${x}`);
    assert.ok(w.occupancy(1) > 70_000, 'campus lists more than one cached listing holds (65536)');
    // muster lists: whole, and paged (pages cross the cached listing's cut)
    for (let x = 0; x < 4; x++) {
      assert.deepEqual(w.credentialsIn(x, 0, 200_000), ref.credentialsIn(x, 0, 200_000), `muster list of area ${x}`);
      let from: number | null = 0, pages = 0;
      while (from !== null) {
        const a = w.credentialsIn(x, from, 25_000), e = ref.credentialsIn(x, from, 25_000);
        assert.deepEqual(a, e, `area ${x}: page from ${from}`);
        from = a.next;
        pages++;
      }
      if (x === 1) assert.ok(pages >= 3, 'campus took several pages');
    }
    // a page resumed after a change: the listing is rebuilt, not served stale
    const somebody = known[3]!;
    const page1 = w.credentialsIn(2, 0, 1000);
    w.apply([{ op: 'setLocation', cred: somebody, area: 2 }], now); ref.apply([{ op: 'setLocation', cred: somebody, area: 2 }], now);
    assert.deepEqual(w.credentialsIn(2, page1.next ?? 0, 1000), ref.credentialsIn(2, page1.next ?? 0, 1000));
    assert.deepEqual(w.credentialsIn(2, 0, 200_000), ref.credentialsIn(2, 0, 200_000));
    for (const c of known.filter((_, k) => k % 13 === 0)) assert.deepEqual(w.state(c), ref.state(c));
    // and a snapshot of the segmented table restores to the same bytes and decisions
    const b2 = createWasmCore(s);
    b2.restore(w.snapshot());
    assert.deepEqual(b2.snapshot(), w.snapshot());
    assert.deepEqual(b2.credentialsIn(1, 0, 200_000), ref.credentialsIn(1, 0, 200_000));
    const more: CoreOp[] = known.slice(0, 500).map((c, i) => ({ op: 'badge', cred: c, reader: i % 6 }));
    assert.deepEqual(b2.apply(more, now + SEC), ref.apply(more, now + SEC));
  });

  test('muster pages of a well-filled area walk the records in order, and an area filled by late records falls back to the table scan: same pages as the reference model', () => {
    const s = siteOf(SITE, 0);
    const w = createWasmCore(s), ref = createReferenceCore(s);
    const ops: CoreOp[] = [];
    // records 0-99,999 on the campus but the first 300 in the lab, 100,000-119,999 in the lab (inside the campus, inside the building)
    for (let i = 0; i < 120_000; i++) ops.push({ op: 'setLocation', cred: i % 4 === 0 ? str(`w${i}`) : int(i + 7), area: i < 300 || i >= 100_000 ? 3 : 1 });
    for (let i = 0; i < ops.length; i += 1024) assert.deepEqual(w.apply(ops.slice(i, i + 1024), T0), ref.apply(ops.slice(i, i + 1024), T0));
    for (const [x, from] of [[1, 0], [1, 50_000], [1, 119_990], [3, 0], [3, 110_000], [2, 0], [3, 119_999], [3, 120_000]] as const) {
      // 500 rows: the campus (120,000 counted) and the lab (20,300) are walked; the lab's walk finds its
      // first 300, runs out of budget (120,000 / 8 + 4096 records) before record 100,000, and the table
      // scan lists on from there
      let at: number | null = from;
      for (let page = 0; page < 3 && at !== null; page++) {
        w.advance(T0 + 1 + page); ref.advance(T0 + 1 + page); // a state change between pages, as under live traffic
        const a = w.credentialsIn(x, at, 500), e = ref.credentialsIn(x, at, 500);
        assert.deepEqual(a, e, `area ${x} from ${at}`);
        at = a.next;
      }
    }
  });

  test('a capacity sizes the table up front: no growth on the way to it', () => {
    const s = siteOf(SITE, 0);
    const w = createWasmCore(s, { capacity: 40_000 });
    const cap = w.indexCapacity();
    assert.ok(cap * 7 / 8 >= 40_000, `capacity ${cap}`);
    const ops: CoreOp[] = [];
    for (let i = 0; i < 40_000; i++) ops.push({ op: 'setLocation', cred: int(i + 1), area: 1 });
    for (let i = 0; i < ops.length; i += 1024) w.apply(ops.slice(i, i + 1024), T0);
    assert.equal(w.size(), 40_000);
    assert.equal(w.indexCapacity(), cap, 'no growth');
    assert.equal(createWasmCore(s).indexCapacity(), 1024, 'without a capacity the table starts at its smallest');
  });

  test('the engine sizes its table from the site file (expectedCredentials); the server creates its engine this way', () => {
    const sized = createEngine(siteOf(`expectedCredentials: 300000\n${SITE}`));
    const plain = createEngine(siteOf(SITE));
    assert.ok(sized.core instanceof WasmCore && plain.core instanceof WasmCore);
    assert.ok(sized.core.indexCapacity() * 7 / 8 >= 300_000, `capacity ${sized.core.indexCapacity()}`);
    assert.equal(plain.core.indexCapacity(), 1024);
  });
});

describe('expiry calendar', () => {
  test('thousands of distinct instants, expiring every millisecond: occupancy as the reference model at every step', () => {
    const s = siteOf(`areas:
  - { id: campus, presenceTimeout: 3 }
  - { id: building, parent: campus, presenceTimeout: 1 }
  - { id: lab, parent: building }
  - { id: annex, parent: campus, presenceTimeout: 1 }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c }
  - { id: b-in, from: campus, to: building, controller: c }
  - { id: lab-in, from: building, to: lab, controller: c }
  - { id: annex-in, from: campus, to: annex, controller: c }
  - { id: out, from: campus, to: outside, controller: c }`, 2);
    const w = createWasmCore(s), ref = createReferenceCore(s);
    const r = rng(8);
    const creds: Cred[] = [];
    for (let i = 0; i < 400; i++) creds.push(i % 2 ? int(i) : str(`c${i}`));
    let now = T0;
    for (let step = 0; step < 6000; step++) {
      now += 1 + (r() % 3); // a new instant almost every op: one calendar entry each
      const c = creds[r() % creds.length]!;
      const x = r() % 10;
      const op: CoreOp = x < 6 ? { op: 'badge', cred: c, reader: r() % 5 }
        : x < 8 ? { op: 'setLocation', cred: c, area: r() % 5 }
          : x === 8 ? { op: 'offline', cred: c, reader: r() % 5, ts: now - (r() % 4000), granted: true } : { op: 'reset', cred: c };
      assert.deepEqual(w.apply([op], now), ref.apply([op], now), `step ${step}`);
      if (step % 7 === 0) for (let a = 0; a < 5; a++) assert.equal(w.occupancy(a), ref.occupancy(a), `step ${step}: occupancy of area ${a}`);
    }
    for (const dt of [500, 1000, 1001, 2999, 3000, 5000]) {
      w.advance(now + dt); ref.advance(now + dt);
      for (let a = 0; a < 5; a++) assert.equal(w.occupancy(a), ref.occupancy(a), `+${dt} ms: occupancy of area ${a}`);
    }
    for (const c of creds) assert.deepEqual(w.state(c), ref.state(c));
    // the same calendar survives a snapshot; its map grew past its first 1024 entries (snapshot header field 6)
    const snap = w.snapshot();
    assert.ok(new DataView(snap.buffer, snap.byteOffset).getBigInt64(16 + 6 * 8, true) > 1024n, 'the calendar map grew');
    const b = createWasmCore(s);
    b.restore(snap);
    for (let a = 0; a < 5; a++) assert.equal(b.occupancy(a), w.occupancy(a));
  });
});
