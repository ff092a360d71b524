/**
 * D/index's runs by credential, reader and message id (src/store/name-runs.ts), on real LMDB directories:
 *  - random appends, merge steps (interrupted at any point), retention and reopenings against a plain
 *    model: every credential's batch keys, newest first and oldest first, stay exactly the model's;
 *  - merges keep the number of runs bounded and leave no blocks behind (a merge cut off by a
 *    reopening is dropped and done again);
 *  - two credentials sharing a fingerprint: the index names both's batches, a store query returns only
 *    the asked credential's events;
 *  - a D/index of the previous format (a B-tree 'cred') is rebuilt, not read.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { open } from 'lmdb';
import { ChunkEntries, DerivedIndex, INDEX_FORMAT, type BatchSpan } from '../../src/store/derived-index.js';
import { FANOUT, NameRuns, PairList } from '../../src/store/name-runs.js';
import { fingerprint } from '../../src/store/fingerprint.js';
import { openStore } from '../../src/store/index.js';
import type { LmdbStore } from '../../src/store/lmdb-store.js';
import { general } from './journal-util.js';

const dirs: string[] = [];
function tmp(): string { const d = mkdtempSync(join(tmpdir(), 'apb-credruns-')); dirs.push(d); return d; }
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** lmdb-js ends a handle's read snapshot on a 0 ms timer after its first read: later timers see new commits */
const nextTurn = (): Promise<void> => new Promise((r) => setTimeout(r, 2));
const NAMES = ['a', 'b', 'c', 'card-7', '42', '1000001', 'x'.repeat(300), 'é', 'z'];

type Op =
  | { t: 'add'; batches: number[][] } // per batch: indexes into NAMES
  | { t: 'step'; n: number; size: number }
  | { t: 'retain'; batches: number }
  | { t: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('add' as const), batches: fc.array(fc.array(fc.nat(NAMES.length - 1), { maxLength: 5 }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('step' as const), n: fc.integer({ min: 1, max: 6 }), size: fc.integer({ min: 1, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('retain' as const), batches: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reopen' as const) }) },
);

describe('D/index by-credential runs', () => {
  it('random appends, merge steps, retention and reopenings: keys equal the model, newest and oldest first', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
      const dir = join(tmp(), 'index');
      let ix = DerivedIndex.open(dir, 'j')!.ix;
      let w = DerivedIndex.attach(dir, true); // the writer (the index worker's handle)
      const model = new Map<string, number[]>(); // name → batch keys ascending
      const idModel = new Map<string, number[]>(); // 'controller id' → batch keys ascending
      const live: BatchSpan[] = [];
      let seq = 0, floor = 0;
      try {
        for (const op of ops) {
          if (op.t === 'add') {
            const chunk = new ChunkEntries();
            for (const names of op.batches) {
              const key = seq + 1, n = Math.max(names.length, 1);
              const creds = [...new Set(names.map((i) => NAMES[i]!))];
              // message ids: a controller per name, ids that repeat (a later batch holds the same id again)
              const ids = creds.map((c): [string, number] => [`ctl/${c}`, key % 5]);
              chunk.addNames(key, null, creds, creds.map((c) => `r/${c}`), ids);
              live.push({ key, a0: null });
              for (const c of creds) {
                model.set(c, [...(model.get(c) ?? []), key]);
                idModel.set(`ctl/${c} ${key % 5}`, [...(idModel.get(`ctl/${c} ${key % 5}`) ?? []), key]);
              }
              seq += n;
            }
            await w.add(chunk, seq);
          } else if (op.t === 'step') {
            for (let i = 0; i < op.n; i++) w.maintain(op.size);
          } else if (op.t === 'retain') {
            const gone = live.splice(0, op.batches);
            if (gone.length) { floor = gone[gone.length - 1]!.key; await w.remove(gone); }
          } else {
            // a reopening: a merge cut off mid-way is forgotten with its handle
            await w.close(); await ix.close();
            ix = DerivedIndex.open(dir, 'j')!.ix;
            w = DerivedIndex.attach(dir, true);
          }
          await nextTurn(); // the reading handle (the main thread's, in a server) sees the writer's commits
          for (const name of NAMES) {
            const want = (model.get(name) ?? []).filter((k) => k > floor);
            assert.deepEqual([...ix.keysOf('cred', name, seq)], [...want].reverse(), `${name} newest first after ${op.t}`);
            assert.deepEqual([...ix.keysOf('reader', `r/${name}`, seq)], [...want].reverse(), `reader r/${name} newest first after ${op.t}`);
            assert.deepEqual([...ix.keysUp('reader', `r/${name}`, 1, seq)], want, `reader r/${name} oldest first after ${op.t}`);
            assert.deepEqual([...ix.keysUp('cred', name, 1, seq)], want, `${name} oldest first after ${op.t}`);
            // bounded: a top and a bottom inside the range
            const mid = Math.floor(seq / 2);
            assert.deepEqual([...ix.keysOf('cred', name, mid)], want.filter((k) => k <= mid).reverse());
            assert.deepEqual([...ix.keysUp('cred', name, mid, seq)], want.filter((k) => k >= mid));
            for (let id = 0; id < 5; id++) {
              const wantId = (idModel.get(`ctl/${name} ${id}`) ?? []).filter((k) => k > floor).reverse();
              assert.deepEqual([...ix.idemBatches(`ctl/${name}`, id)], wantId, `id ctl/${name} ${id} after ${op.t}`);
            }
          }
        }
        // every merge done: few runs, and no block left of a replaced run or an abandoned merge
        while (w.maintain()) { /* to the end */ }
        await nextTurn();
        for (const kind of ['cred', 'reader', 'idem'] as const) {
          const shape = ix.runShape(kind);
          const blocksOfLive = Math.ceil(shape.entries / 340) + shape.runs; // at most one partial block per run
          assert.ok(shape.blocks <= blocksOfLive, `${kind}: blocks ${shape.blocks} for ${shape.entries} entries in ${shape.runs} runs`);
          assert.ok(shape.runs < FANOUT * 3, `${kind}: runs ${shape.runs}`);
        }
      } finally {
        await w.close().catch(() => undefined);
        await ix.close().catch(() => undefined);
      }
    }), { numRuns: 40 });
  });

  it('thousands of small runs merge into a bounded number, and the keys stay exact', async () => {
    const dir = join(tmp(), 'index');
    const ix = DerivedIndex.open(dir, 'j')!.ix;
    const w = DerivedIndex.attach(dir, true);
    try {
      const model = new Map<string, number[]>();
      let seq = 0, maxRuns = 0;
      for (let r = 0; r < 2000; r++) {
        const chunk = new ChunkEntries();
        for (let b = 0; b < 3; b++) {
          const key = ++seq;
          const creds = [`c${(r * 7 + b * 13) % 97}`, `c${(r * 3 + b) % 89}`];
          chunk.addNames(key, null, [...new Set(creds)], [], []);
          for (const c of new Set(creds)) model.set(c, [...(model.get(c) ?? []), key]);
        }
        await w.add(chunk, seq);
        w.maintain(); w.maintain(); w.maintain();
        await nextTurn();
        maxRuns = Math.max(maxRuns, ix.runShape('cred').runs);
      }
      assert.ok(maxRuns <= FANOUT * 3, `at most ${maxRuns} runs at a time`);
      for (const [c, keys] of model) assert.deepEqual([...ix.keysOf('cred', c, seq)], [...keys].reverse(), c);
    } finally {
      await w.close(); await ix.close();
    }
  });

  it('a merge step whose transaction fails starts the merge over: nothing is lost, nothing left behind', () => {
    const env = open({ path: join(tmp(), 'runs'), noSubdir: false, maxDbs: 4, noSync: true } as never);
    try {
      const db = env.openDB('credrun', { keyEncoding: 'ordered-binary', encoding: 'binary' }) as never;
      const meta = env.openDB('meta', { keyEncoding: 'ordered-binary', encoding: 'msgpack' }) as never;
      const runs = new NameRuns(db, meta, 'cred');
      const model = new Map<string, number[]>();
      let key = 0;
      for (let r = 0; r < FANOUT; r++) {
        const pairs = new PairList();
        for (let i = 0; i < 100; i++) { key++; const c = `c${(key * 13) % 37}`; pairs.push(fingerprint(c), key); model.set(c, [...(model.get(c) ?? []), key]); }
        env.transactionSync(() => runs.append(pairs, key - 99, key));
      }
      let calls = 0;
      // the seventh step writes the merged run's first block (340 entries at 50 a step): it fails
      const failing = (fn: () => void): void => { if (++calls === 7) { env.transactionSync(() => { fn(); throw new Error('disk full'); }); } else env.transactionSync(fn); };
      assert.throws(() => { for (let i = 0; i < 10; i++) runs.maintain(failing, 50); }, /disk full/);
      while (runs.maintain((fn) => env.transactionSync(fn), 50)) { /* to the end */ }
      assert.equal(runs.runs().length, 1, 'the eight runs merged into one');
      for (const [c, keys] of model) assert.deepEqual([...runs.keysDown(fingerprint(c), key)], [...keys].reverse(), c);
      assert.equal(runs.shape().blocks, Math.ceil(runs.shape().entries / 340), 'no block of the abandoned merge is left');
    } finally { void env.close(); }
  });

  it('two credentials with one fingerprint: the index names both, a query returns only the one asked for', async () => {
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair; i++) {
      const name = `card-${i}`, h = fingerprint(name);
      const other = seen.get(h);
      if (other !== undefined) pair = [other, name]; else seen.set(h, name);
    }
    const [a, b] = pair;
    assert.equal(fingerprint(a), fingerprint(b));
    const dir = tmp();
    const s = await openStore(dir, { retention: { intervalMs: 0 } });
    try {
      const one = general('ctl', 1, 1); one.events[0]!.cred = a;
      const two = general('ctl', 2, 1); two.events[0]!.cred = b;
      await s.append(one.events, one.idem);
      await s.append(two.events, two.idem);
      await (s as LmdbStore).settle();
      assert.equal(s.stats().indexedSeq, s.lastSeq, 'indexed');
      assert.deepEqual(s.query({ cred: a }).map((e) => e.cred), [a]);
      assert.deepEqual(s.query({ cred: b }).map((e) => e.cred), [b]);
    } finally {
      await s.close();
    }
  });

  it('the time index (one entry per 1024 seqs at most): since/until pages, both orders, equal a full scan', async () => {
    const dir = tmp();
    const s = await openStore(dir, { retention: { intervalMs: 0 } });
    try {
      let id = 1;
      for (let b = 0; b < 700; b++) { const n = 1 + (b % 9); const g = general('ctl', id, n); id += n; await s.append(g.events, g.idem); }
      await (s as LmdbStore).settle();
      assert.equal(s.stats().indexedSeq, s.lastSeq, 'indexed');
      const all = [...s.since(0)];
      const at = all.map((e) => e.at);
      for (const [lo, hi] of [[0.1, 0.2], [0.45, 0.9], [0.7, 0.71], [0, 0.05], [0.95, 1]]) {
        const since = at[Math.floor(lo! * (at.length - 1))]!, until = at[Math.floor(hi! * (at.length - 1))]!;
        const want = all.filter((e) => e.at >= since && e.at <= until).map((e) => e.seq);
        const pageAll = (order: 'asc' | 'desc'): number[] => {
          const got: number[] = [];
          let next: string | undefined;
          do {
            const p = s.page({ since, until, order, limit: 500, ...(next ? { cursor: next } : {}) });
            got.push(...p.events.map((e) => e.seq!));
            next = p.events.length ? p.next ?? undefined : undefined; // asc always has a next (to poll): stop at an empty page
          } while (next);
          return got;
        };
        assert.deepEqual(pageAll('asc'), want, `asc ${since}..${until}`);
        assert.deepEqual(pageAll('desc'), [...want].reverse(), `desc ${since}..${until}`);
      }
    } finally {
      await s.close();
    }
  });

  it('a D/index of the previous format (B-tree cred, no format mark) is rebuilt, its sub-databases gone', async () => {
    const dir = join(tmp(), 'index');
    const old = open({ path: dir, noSubdir: false, maxDbs: 8 } as never);
    const cred = old.openDB('cred', { keyEncoding: 'ordered-binary', encoding: 'binary' });
    const meta = old.openDB('meta', { keyEncoding: 'ordered-binary', encoding: 'msgpack' });
    await cred.put(['c1', 1], Buffer.from([1]));
    await meta.put('journal', 'j');
    await meta.put('indexed', 1);
    await old.close();
    const r = DerivedIndex.open(dir, 'j', false, false, 1)!;
    try {
      assert.equal(r.rebuilt, true);
      assert.equal(r.ix.indexedSeq, 0);
      assert.deepEqual([...r.ix.keysOf('cred', 'c1', 10)], []);
    } finally { await r.ix.close(); }
    const env = open({ path: dir, noSubdir: false, maxDbs: 8, readOnly: true } as never);
    try {
      assert.ok(!([...env.getKeys()] as string[]).includes('cred'), 'the old sub-database is gone');
      assert.equal(env.openDB('meta', { keyEncoding: 'ordered-binary', encoding: 'msgpack' }).get('format'), INDEX_FORMAT);
    } finally { await env.close(); }
  });
});
