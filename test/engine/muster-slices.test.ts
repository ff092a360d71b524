/**
 * The muster list read in slices (assembly/scan.ts scanSlice through
 * WasmCore.credentialsInSlices), against the reference model fed the same
 * ops. Between slices batches run on both cores: random moves, new
 * credentials (the table grows while a scan is under way), clock jumps past
 * presence timeouts and forgetAfter, lookups (which settle forgotten
 * credentials), a reconfigure and a snapshot restore. Whatever happens:
 *   - nobody is listed twice, rows come in record order;
 *   - every credential the area counted at every point of the listing
 *     (before the first slice and after every batch) is listed;
 *   - every row is counted by the area when the slice that wrote it ran,
 *     with that moment's location, last move and last reader;
 * and when nothing happens between slices the sliced listing equals the
 * one-shot listing and the reference model's.
 *
 * Reproduce a failure with APB_PROP_SEED=<seed>; APB_PROP_RUNS raises the run count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createWasmCore, type WasmCore } from '../../src/engine/wasm-core.js';
import { createReferenceCore } from '../../src/engine/reference-core.js';
import type { CompiledSite } from '../../src/config/types.js';
import type { CoreOp, EngineCore, InsideRow } from '../../src/engine/types.js';
import type { Cred } from '../../src/engine/cred.js';
import { SEC, T0, int, rng, siteOf, str } from './wasm-util.js';

const SITE = `
areas:
  - { id: campus }
  - { id: building, parent: campus, presenceTimeout: 60 }
  - { id: lab, parent: building }
  - { id: annex, parent: campus }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c }
  - { id: b-in, from: campus, to: building, controller: c }
`;

const runs = Number(process.env.APB_PROP_RUNS ?? 40);
const seedEnv = process.env.APB_PROP_SEED;
const fcOpts = { numRuns: runs, ...(seedEnv ? { seed: Number(seedEnv) } : {}) };

/** both cores, the same ops */
class Pair {
  readonly w: WasmCore;
  readonly ref: EngineCore;
  now = T0;
  n = 0; // credentials created
  /** change(): no more new credentials past this many (the table grows meanwhile), restores and reconfigures left */
  cap = 0;
  restarts = 0;
  constructor(public site: CompiledSite) {
    this.w = createWasmCore(site);
    this.ref = createReferenceCore(site);
  }
  apply(ops: CoreOp[]): void {
    assert.deepEqual(this.w.apply(ops, this.now), this.ref.apply(ops, this.now));
  }
  cred(i: number): Cred { return i % 7 === 3 ? str(`p-${i}`) : int(1000 + i); }
  /** `k` new credentials somewhere */
  add(k: number, r: () => number): void {
    const ops: CoreOp[] = [];
    for (let i = 0; i < k; i++) ops.push({ op: 'setLocation', cred: this.cred(this.n++), area: r() % 5 });
    this.apply(ops);
  }
  /** `k` existing credentials moved at random */
  move(k: number, r: () => number): void {
    if (this.n === 0) return;
    const ops: CoreOp[] = [];
    for (let i = 0; i < k; i++) ops.push({ op: 'setLocation', cred: this.cred(r() % this.n), area: r() % 5 });
    this.apply(ops);
  }
  /** both cores onto `next` (the same area and reader ids, maybe renumbered; the renumbering restarts a scan under way) */
  reconfigure(next: CompiledSite): void {
    const areas = Int32Array.from(this.site.areaIds, (id) => next.areaIndex.get(id)!), readers = Int32Array.from(this.site.readerIds, (_, x) => x);
    this.w.reconfigure(next, areas, readers);
    this.ref.reconfigure(next, areas, readers);
    this.site = next;
  }
  /** the reference's rows of `area` now, by credential text */
  inside(area: number): Map<string, InsideRow> {
    return new Map(this.ref.credentialsIn(area, 0, 1 << 30).rows.map((x) => [x.cred, x]));
  }
}

/** one random change between slices (both cores); false when it changed nothing */
function change(p: Pair, r: () => number, rate: number): boolean {
  if (r() % 100 >= rate) return false;
  const k = r() % 20;
  if (k < 9) p.move(1 + (r() % 8), r);
  else if (k < 13) { if (p.n < p.cap) p.add(1 + (r() % 64), r); } // grows the table now and then
  else if (k < 15) { p.now += (r() % 4) * 40 * SEC; p.w.advance(p.now); p.ref.advance(p.now); } // presenceTimeout 60 s, forgetAfter 300 s
  else if (k < 17) { for (let i = 0; i < 4 && p.n > 0; i++) { const c = p.cred(r() % p.n); assert.deepEqual(p.w.state(c), p.ref.state(c)); } } // settles forgotten credentials
  else if (k < 19 && p.restarts-- <= 0) return false; // a restore or reconfigure restarts the scan: a few per listing
  else if (k < 18) p.reconfigure(p.site);
  else if (k < 19) p.w.restore(p.w.snapshot()); // the same state in a table restored anew
  else { p.now += 1; p.apply([{ op: 'badge', cred: p.cred(r() % Math.max(1, p.n)), reader: r() % 2 }]); }
  return true;
}

/**
 * The whole list of `area`, `max` rows a page, `budget` units a slice, with change() between slices
 * and pages. Checks each row against the reference's state when the slice that wrote it ran; returns
 * the rows and who stayed inside throughout.
 */
function slicedList(p: Pair, area: number, max: number, budget: number, r: () => number, rate: number): { rows: InsideRow[]; stayed: Set<string>; slices: number } {
  const rows: InsideRow[] = [];
  let now = p.inside(area);
  const stayed = new Set(now.keys());
  let slices = 0;
  for (let from: number | null = 0; from !== null;) {
    const g = p.w.credentialsInSlices(area, from, max, () => budget);
    const when: Map<string, InsideRow>[] = []; // the reference's rows when row k was written
    let step = g.next();
    for (slices++; !step.done; slices++) {
      while (when.length < step.value) when.push(now);
      if (change(p, r, rate)) {
        now = p.inside(area);
        for (const c of stayed) if (!now.has(c)) stayed.delete(c);
      }
      step = g.next();
    }
    const page = step.value;
    while (when.length < page.rows.length) when.push(now);
    page.rows.forEach((row, k) => {
      const want = when[k]!.get(row.cred);
      assert.ok(want, `row ${row.cred} (record ${row.rec}) is not inside ${p.site.areaIds[area]} when written`);
      assert.deepEqual(row, want, `row ${row.cred}: as the reference has it when written`);
    });
    assert.ok(page.rows.length <= max);
    rows.push(...page.rows);
    from = page.next;
    if (change(p, r, rate)) {
      now = p.inside(area);
      for (const c of stayed) if (!now.has(c)) stayed.delete(c);
    }
  }
  return { rows, stayed, slices };
}

function assertListing(rows: InsideRow[], stayed: Set<string>, what: string): void {
  const creds = rows.map((x) => x.cred);
  assert.equal(new Set(creds).size, creds.length, `${what}: nobody twice`);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]!.rec < rows[i]!.rec, `${what}: record order`);
  const listed = new Set(creds);
  for (const c of stayed) assert.ok(listed.has(c), `${what}: ${c} stayed inside throughout and is listed`);
}

const scenario = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  start: fc.integer({ min: 0, max: 3000 }),
  area: fc.integer({ min: 1, max: 4 }),
  max: fc.constantFrom(3, 40, 1000, 5000),
  budget: fc.constantFrom(1, 7, 64, 600), // units a slice (a bucket read is 1)
  rate: fc.constantFrom(10, 50, 100),
});

test('sliced muster list with batches between slices: nobody twice, every stayer listed, every row inside when written', () => {
  const site = siteOf(SITE, 300);
  let totalSlices = 0;
  fc.assert(fc.property(scenario, (s) => {
    const r = rng(s.seed);
    const p = new Pair(site);
    p.add(s.start, r);
    p.cap = s.start + 1500;
    p.restarts = 2;
    const { rows, stayed, slices } = slicedList(p, s.area, s.max, s.budget, r, s.rate);
    totalSlices += slices;
    assertListing(rows, stayed, `area ${site.areaIds[s.area]}`);
  }), fcOpts);
  assert.ok(totalSlices > runs * 3, `the listings were sliced (${totalSlices} slices in ${runs} runs)`);
});

test('sliced muster list with nothing between slices: the one-shot listing, the reference model\'s', () => {
  const site = siteOf(SITE, 300);
  fc.assert(fc.property(scenario, (s) => {
    const r = rng(s.seed);
    const p = new Pair(site);
    p.add(s.start, r);
    p.move(s.start >> 2, r);
    p.now += (r() % 3) * 50 * SEC;
    p.w.advance(p.now); p.ref.advance(p.now);
    for (let from: number | null = 0; from !== null;) {
      const g = p.w.credentialsInSlices(s.area, from, s.max, () => s.budget);
      let step = g.next();
      while (!step.done) step = g.next();
      const want = p.ref.credentialsIn(s.area, from, s.max);
      assert.deepEqual(step.value, want, `page from ${from}`);
      assert.deepEqual(p.w.credentialsIn(s.area, from, s.max), want, `one-shot page from ${from}`);
      from = want.next;
    }
  }), fcOpts);
});

test('a growth, a restore or a reconfigure while a scan is under way restarts it: the stayers are still all listed', () => {
  const site = siteOf(SITE, 0);
  const p = new Pair(site);
  const r = rng(7);
  p.add(3000, r);
  const annex = site.areaIndex.get('annex')!;
  for (const what of ['grow', 'restore', 'reconfigure'] as const) {
    p.now += 1; p.w.advance(p.now); p.ref.advance(p.now); // the last listing is stale: this one scans
    const before = p.inside(annex);
    const g = p.w.credentialsInSlices(annex, 0, 100_000, () => 200);
    assert.equal(g.next().done, false, 'the scan takes more than one slice');
    assert.equal(g.next().done, false);
    const cap = p.w.indexCapacity();
    if (what === 'grow') { while (p.w.indexCapacity() === cap) p.add(500, () => (r() % 4) + 0); } // nobody new in the annex (area 4)
    else if (what === 'restore') p.w.restore(p.w.snapshot());
    else p.reconfigure(site);
    let step = g.next();
    while (!step.done) step = g.next();
    assert.deepEqual(step.value.rows.map((x) => x.cred).sort(), [...before.keys()].sort(), `${what}: the annex as it was (nobody entered or left)`);
    assert.deepEqual(step.value, p.ref.credentialsIn(annex, 0, 100_000), `${what}: as the reference lists it`);
  }
  // a reconfigure that renumbers the areas: the index the scan was asked for is now the lab's
  const next = siteOf(SITE.replace(/(  - \{ id: lab.*\n)(  - \{ id: annex.*\n)/, '$2$1'), 0);
  assert.equal(next.areaIndex.get('lab'), annex);
  p.now += 1; p.w.advance(p.now); p.ref.advance(p.now);
  const g = p.w.credentialsInSlices(annex, 0, 100_000, () => 200);
  assert.equal(g.next().done, false);
  p.reconfigure(next);
  let step = g.next();
  while (!step.done) step = g.next();
  assert.deepEqual(step.value, p.ref.credentialsIn(annex, 0, 100_000), 'renumbered: the lab, as the reference lists it');
});

test('credentialsInAsync: the same page as credentialsIn, in more than one slice, the event loop free in between', async () => {
  const site = siteOf(SITE, 0);
  const p = new Pair(site);
  p.add(60_000, rng(3));
  const annex = site.areaIndex.get('annex')!, lab = site.areaIndex.get('lab')!;
  // about 12,000 of 60,000 in each area: pages of 5,000 are scanned, not walked
  const want = p.w.credentialsIn(annex, 0, 5000);
  p.w.advance(++p.now); p.ref.advance(p.now); // nothing cached: another scan
  let turns = 0;
  let spin = true;
  const count = (): void => { if (spin) { turns++; setImmediate(count); } };
  setImmediate(count);
  const got = await p.w.credentialsInAsync(annex, 0, 5000, { sliceMs: 0.05 });
  spin = false;
  assert.deepEqual(got, want);
  assert.ok(turns >= 2, `the event loop turned ${turns} times during the page`);
  p.w.advance(++p.now); p.ref.advance(p.now);
  await assert.rejects(p.w.credentialsInAsync(annex, 0, 5000, { sliceMs: 0.05, aborted: () => true }), { code: 'not_ready' });
  // two at once on one core take turns (each would restart the other's scan): both answers right
  p.w.advance(++p.now); p.ref.advance(p.now);
  const [a, b] = [p.w.credentialsInAsync(annex, 0, 5000, { sliceMs: 0.05 }), p.w.credentialsInAsync(lab, 0, 5000, { sliceMs: 0.05 })];
  assert.deepEqual(await a, p.ref.credentialsIn(annex, 0, 5000));
  assert.deepEqual(await b, p.ref.credentialsIn(lab, 0, 5000));
});
