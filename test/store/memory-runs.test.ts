/**
 * The memory store's compact groups live in runs of up to RUN_GROUPS groups
 * (group-run.ts), not an object each. Fed the same journal as a real LMDB
 * store (several runs' worth of groups, general batches and an idem-only
 * append between them, so runs start mid-stream and hold seq gaps), it must
 * answer every query, page, range and idempotency lookup the same, before
 * and after retention trims a run partway, and after more appends.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { RUN_GROUPS } from '../../src/store/group-run.js';
import type { EventRecord, Store } from '../../src/store/types.js';
import { READERS, T0, general, group } from './journal-util.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

const CTLS = ['c0', 'c1', 'c2'];

/**
 * appends `groups` compact groups (1-3 records, controllers in turn) with a general batch every 700 and
 * one idem-only append; ids come from one counter (each controller's still rise), so `at` (T0 + id)
 * never decreases with seq, as the engine clock guarantees; sampled ids go to `ids`
 */
async function feed(stores: Store[], next: { id: number }, groups: number, ids: [string, number][], ends: number[]): Promise<void> {
  let ps: Promise<unknown>[] = [];
  for (let i = 0; i < groups; i++) {
    const c = CTLS[i % CTLS.length]!, first = next.id, n = 1 + (i % 3);
    for (const s of stores) ps.push(s.appendCompact(group(c, first, n)));
    ends.push(stores[0]!.lastSeq); // seqs are taken synchronously: the group's last
    for (let k = 0; k < n; k++) if ((first + k) % 97 === 0) ids.push([c, first + k]);
    next.id += n;
    if (i % 700 === 350) {
      const id = next.id;
      for (const s of stores) { const g = general('g', id, 2); ps.push(s.append(g.events, g.idem)); }
      ends.push(stores[0]!.lastSeq - 1, stores[0]!.lastSeq); // a general event is an entry of its own
      ids.push(['g', id]);
      next.id += 2;
    }
    if (i === 5000) for (const s of stores) ps.push(s.append([], [{ controller: 'g', id: 1_000_000, reply: Uint8Array.from([1, 2, 3]) }]));
    if (ps.length >= 200) { await Promise.all(ps); ps = []; await turn(); }
  }
  await Promise.all(ps);
  for (const s of stores) await s.whenCommitted();
}

/** every record through the cursor pager, both orders, a small page */
function paged(s: Store, order: 'asc' | 'desc', q: { cred?: string; since?: number; until?: number } = {}): number[] {
  const seqs: number[] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 100_000; guard++) {
    const p = s.page({ ...q, order, limit: 97, ...(cursor ? { cursor } : {}) });
    seqs.push(...p.events.map((e: EventRecord) => e.seq!));
    if (p.next === null || p.events.length === 0) break;
    cursor = p.next;
  }
  return seqs;
}

/**
 * What a client could ask of `s`, limited to records after seq `min` (retention trims a memory store per
 * group and an LMDB store per journal batch, so after a trim only the records both keep compare):
 * records, queries by credential and reader, a time range, pages in both orders, idempotency replies.
 */
function view(s: Store, ids: [string, number][], min: number): unknown[] {
  const kept = (xs: number[]): number[] => xs.filter((x) => x > min);
  const all = [...s.since(min)];
  const seqOf = new Map(all.map((e) => [`${e.controller}/${String(e.id)}`, e.seq!]));
  const out: unknown[] = [all];
  for (let k = 0; k < 40; k++) out.push(kept(s.query({ cred: String(2000 + k), limit: 10_000 }).map((e) => e.seq!)));
  for (const r of READERS) out.push(kept(s.query({ reader: r, limit: 10_000 }).map((e) => e.seq!)));
  out.push(kept([...s.range(T0 + 4000, T0 + 9000)].map((e) => e.seq!)));
  for (const order of ['asc', 'desc'] as const) {
    for (const q of [{}, { cred: '2007' }, { since: T0 + 4000, until: T0 + 9000 }]) out.push(kept(paged(s, order, q)));
  }
  out.push(ids.filter(([c, id]) => min === 0 || seqOf.has(`${c}/${id}`)).map(([c, id]) => Buffer.from(s.getIdem(c, id) ?? []).toString('hex')));
  return out;
}

function same(mem: Store, disk: Store, ids: [string, number][], what: string, min = 0): void {
  assert.equal(mem.lastSeq, disk.lastSeq, `${what}: lastSeq`);
  const vm = view(mem, ids, min), vd = view(disk, ids, min);
  // part by part, so a difference names its part instead of printing megabytes
  vm.forEach((x, i) => {
    const a = JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const b = JSON.stringify(vd[i], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    if (a === b) return;
    let k = 0;
    while (k < a.length && a[k] === b[k]) k++;
    assert.fail(`${what}: part ${i} differs at char ${k}: memory …${a.slice(Math.max(0, k - 80), k + 120)} / lmdb …${b.slice(Math.max(0, k - 80), k + 120)}`);
  });
}

describe('memory store: compact groups in runs', () => {
  it('answers as an LMDB store fed the same journal, across runs, retention inside a run and later appends', async () => {
    let now = T0;
    const dir = mkdtempSync(join(tmpdir(), 'apb-runs-'));
    dirs.push(dir);
    const opts = { now: () => now, retention: { intervalMs: 0, maxAgeMs: 60_000 } };
    const mem = await openStore(':memory:', opts), disk = await openStore(dir, opts);
    try {
      const next = { id: 1 }, ids: [string, number][] = [['g', 1_000_000], ['c0', 1], ['c2', 5]], ends: number[] = [];
      const groups = 2 * RUN_GROUPS + 600; // three runs, the last one partly filled
      await feed([mem, disk], next, groups, ids, ends);
      assert.ok(mem.lastSeq > 2 * groups, `${mem.lastSeq} seqs`);
      assert.equal(mem.stats().events, disk.stats().events);
      assert.equal(mem.stats().firstSeq, disk.stats().firstSeq);
      same(mem, disk, ids, 'fed');
      const before = [...mem.since(0)];

      // retention up to a seq inside the second run: the groups (and general events) wholly at or before
      // the older snapshot go, and nothing else
      now = T0 + 10_000_000;
      const cut = Math.floor(mem.lastSeq * 0.55);
      for (const s of [mem, disk]) { await s.saveSnapshot(cut, Uint8Array.from([1]), 'cfg'); await s.saveSnapshot(cut + 50, Uint8Array.from([2]), 'cfg'); }
      const lastGone = Math.max(...ends.filter((e) => e <= cut));
      const gone = await mem.compact();
      assert.equal(gone, before.filter((e) => e.seq! <= lastGone).length);
      assert.ok(gone > RUN_GROUPS, `${gone} records trimmed`);
      assert.deepEqual([...mem.since(0)].map((e) => e.seq), before.filter((e) => e.seq! > lastGone).map((e) => e.seq));
      assert.equal(mem.stats().firstSeq, before.find((e) => e.seq! > lastGone)!.seq);
      assert.equal(mem.stats().events, before.length - gone);
      for (const [c, id] of ids) {
        const e = before.find((x) => x.controller === c && x.id === id);
        if (e && e.seq! <= lastGone) assert.equal(mem.getIdem(c, id), undefined, `${c}/${id} trimmed`);
      }
      const diskGone = await disk.compact();
      assert.ok(diskGone > 0 && diskGone <= gone, `lmdb trimmed ${diskGone}`);
      same(mem, disk, ids, 'trimmed', lastGone);

      // the trimmed run and the last one take more groups (and a new run starts)
      now = T0;
      await feed([mem, disk], next, RUN_GROUPS, ids, ends);
      same(mem, disk, ids, 'fed again', lastGone);
    } finally { await mem.close(); await disk.close(); }
  });
});
