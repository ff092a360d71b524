/**
 * store.page(): cursor paging through the event log (event-cursor.ts) on a
 * real LMDB directory (D/index far behind, and caught up) and in memory.
 * A busy journal (general batches and compact groups, thousands of records)
 * is paged with a small limit while more records are appended between the
 * pages: every matching record comes back exactly once, in order, in both
 * orders; cursors of other filters or another order, and malformed, altered
 * or foreign cursors are refused with bad_message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApbError } from '../../src/errors.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { EventPageQuery, EventRecord, Store } from '../../src/store/types.js';
import { T0, general, group } from './journal-util.js';

/** the next ids per controller, so appends can go on between pages */
class Feeder {
  private id = 1;
  private turn = 0;
  constructor(readonly s: Store) {}
  /** one turn of appends: a general batch and/or a compact group (promises not awaited: still in flight) */
  more(n: number): Promise<unknown> {
    const ps: Promise<unknown>[] = [];
    const t = this.turn++;
    if (t % 3 !== 2) { const g = general(t % 2 ? 'a' : 'b', this.id, n); ps.push(this.s.append(g.events, g.idem)); this.id += n; }
    if (t % 3 !== 0) { ps.push(this.s.appendCompact(group('c', this.id, n))); this.id += n; }
    return Promise.all(ps);
  }
}

const matching = (s: Store, q: EventPageQuery): EventRecord[] => [...s.since(0)].filter((e) =>
  (q.cred === undefined || e.cred === q.cred) && (q.reader === undefined || e.reader === q.reader)
  && (q.since === undefined || e.at >= q.since) && (q.until === undefined || e.at <= q.until));

const FILTERS: EventPageQuery[] = [{}, { cred: '2003' }, { reader: 'r-out' }, { since: T0 + 700, until: T0 + 2500 }, { cred: '2011', since: T0 + 1500 }];

/** pages through in `order` with `limit`, appending between pages; returns the seqs in the order received */
async function pageAll(s: Store, f: Feeder, q: EventPageQuery, order: 'asc' | 'desc', limit: number): Promise<{ seqs: number[]; pages: number }> {
  const seqs: number[] = [];
  let cursor: string | undefined, pages = 0;
  for (;;) {
    const p = s.page({ ...q, order, limit, ...(cursor ? { cursor } : {}) });
    pages++;
    assert.ok(p.events.length <= limit);
    seqs.push(...p.events.map((e) => e.seq!));
    if (pages % 2 === 0) void f.more(1 + (pages % 9)); // concurrent appends, committing while we page
    if (order === 'desc') { if (p.next === null) break; }
    else {
      assert.ok(p.next, 'asc always gives a next cursor');
      if (p.events.length === 0) {
        // caught up: once the appends have stopped and committed, one more poll must stay empty
        await s.whenCommitted();
        const again = s.page({ ...q, order, limit, cursor: p.next });
        seqs.push(...again.events.map((e) => e.seq!));
        if (again.events.length === 0) break;
        cursor = again.next!;
        continue;
      }
    }
    cursor = p.next!;
    assert.ok(pages < 10_000, 'paging ends');
  }
  return { seqs, pages };
}

async function suite(make: () => Promise<{ s: Store; behind: boolean; cleanup(): Promise<void> }>): Promise<void> {
  const { s, behind, cleanup } = await make();
  try {
    const f = new Feeder(s);
    for (let i = 0; i < 120; i++) void f.more(5 + (i * 7) % 31);
    await s.whenCommitted();
    if (!behind) await (s as { settle?: () => Promise<void> }).settle?.();
    const total = [...s.since(0)].length;
    assert.ok(total > 2500, `a busy log (${total} records)`);
    if (behind) assert.ok(s.stats().indexedSeq < s.lastSeq / 2, `D/index is behind (${s.stats().indexedSeq} of ${s.lastSeq})`);
    for (const q of FILTERS) {
      // desc: everything committed when paging started, newest first, each once; later appends never show up
      const before = matching(s, q).map((e) => e.seq!).reverse();
      assert.ok(before.length >= 30, `filter ${JSON.stringify(q)} matches enough (${before.length})`);
      const desc = await pageAll(s, f, q, 'desc', 7);
      assert.deepEqual(desc.seqs, before, `desc ${JSON.stringify(q)}`);
      assert.ok(desc.pages >= before.length / 7);
      // asc: everything, oldest first, each once, including what was appended while paging
      const asc = await pageAll(s, f, q, 'asc', 11);
      await s.whenCommitted();
      assert.deepEqual(asc.seqs, matching(s, q).map((e) => e.seq!), `asc ${JSON.stringify(q)}`);
    }
  } finally { await cleanup(); }
}

const lmdb = (behind: boolean) => async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-cursor-'));
  const s = new LmdbStore(dir, { retention: { intervalMs: 0 }, indexer: behind ? { delayMs: 400, chunkEvents: 200 } : {} });
  return { s, behind, cleanup: async () => { await s.close(); rmSync(dir, { recursive: true, force: true }); } };
};

const badMessage = (re: RegExp) => (e: unknown) => e instanceof ApbError && e.code === 'bad_message' && re.test(e.message);

describe('event log cursors', () => {
  it('LMDB, D/index far behind: every record once, in order, both orders, appends between pages', () => suite(lmdb(true)));
  it('LMDB, D/index caught up: the same', () => suite(lmdb(false)));
  it('memory store: the same', () => suite(async () => {
    const s = new MemoryStore({ retention: { intervalMs: 0 } });
    return { s, behind: false, cleanup: () => s.close() };
  }));

  it('desc: next is null only when nothing older matches; asc: an empty page still has a next', async () => {
    const s = new MemoryStore({ retention: { intervalMs: 0 } });
    const empty = s.page({ order: 'asc' });
    assert.deepEqual(empty.events, []);
    assert.ok(empty.next);
    assert.deepEqual(s.page({}), { events: [], next: null });
    const g = general('a', 1, 6);
    await s.append(g.events, g.idem);
    const p1 = s.page({ limit: 3 });
    assert.deepEqual(p1.events.map((e) => e.seq), [6, 5, 4]);
    const p2 = s.page({ limit: 3, cursor: p1.next! });
    assert.deepEqual(p2.events.map((e) => e.seq), [3, 2, 1]);
    assert.equal(p2.next, null, 'exactly limit records left: the page says there is nothing more');
    // the asc cursor of a caught-up page finds exactly what is appended after it
    const caught = s.page({ order: 'asc', cursor: empty.next! });
    assert.deepEqual(caught.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(s.page({ order: 'asc', cursor: caught.next! }).events, []);
    const h = general('a', 7, 2);
    await s.append(h.events, h.idem);
    assert.deepEqual(s.page({ order: 'asc', cursor: caught.next! }).events.map((e) => e.seq), [7, 8]);
  });

  it('refuses cursors of other filters or order, malformed, altered and foreign cursors (bad_message)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apb-cursor-'));
    const other = mkdtempSync(join(tmpdir(), 'apb-cursor-'));
    let s = new LmdbStore(dir, { retention: { intervalMs: 0 } });
    const o = new LmdbStore(other, { retention: { intervalMs: 0 } });
    try {
      const g = general('a', 1, 400); // cred 2003: ids 3, 43, ... 383
      await s.append(g.events, g.idem);
      await o.append(g.events, g.idem);
      const q = { cred: '2003', since: T0, limit: 1 };
      const c = s.page(q).next!;
      assert.ok(c.length <= 64, c);
      assert.equal(s.page({ ...q, cursor: c }).events.length, 1);
      for (const changed of [{ cred: '2004' }, { cred: undefined }, { reader: 'r-in' }, { since: T0 + 1 }, { until: T0 + 99 }, { order: 'asc' as const }]) {
        assert.throws(() => s.page({ ...q, ...changed, cursor: c }), badMessage(/^cursor: made for another order or other filters/), JSON.stringify(changed));
      }
      assert.equal(s.page({ ...q, limit: 5, cursor: c }).events.length, 5, 'limit may change between pages');
      const flip = (t: string, i: number): string => t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
      for (const bad of ['', 'abc', '!!!!', c + 'A', flip(c, 3), flip(c, 20), flip(c, c.length - 1), c.slice(0, -2), 'x'.repeat(65), 'x'.repeat(5000)]) {
        assert.throws(() => s.page({ ...q, cursor: bad }), badMessage(/^cursor: /), JSON.stringify(bad.slice(0, 80)));
      }
      assert.throws(() => o.page({ ...q, cursor: c }), badMessage(/another data directory/), 'a cursor of another data directory');
      for (const limit of [0, 10_001, 1.5, NaN]) assert.throws(() => s.page({ limit }), badMessage(/^limit: /));
      assert.throws(() => s.page({ order: 'up' as never }), badMessage(/^order: /));
      // the same journal reopened (a server restart): its cursors still work
      await s.close();
      s = new LmdbStore(dir, { retention: { intervalMs: 0 } });
      assert.equal(s.page({ ...q, cursor: c }).events.length, 1);
    } finally {
      await s.close(); await o.close();
      rmSync(dir, { recursive: true, force: true }); rmSync(other, { recursive: true, force: true });
    }
  });
});
