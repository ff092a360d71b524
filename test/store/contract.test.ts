/**
 * One Store contract, run over the LMDB store (real LMDB in a temp dir) and the
 * memory store, in the manner of lmdb-js's own `basicTests(options)`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { ApbError } from '../../src/errors.js';
import type { EventRecord, Store, StoreOptions } from '../../src/store/types.js';
import { CompactWriter, seenNone, compactRecords, toEventRecord, type CompactGroup } from '../../src/store/compact-journal.js';
import { compactReply } from '../../src/engine/wire-reply.js';

/** a compact group of `n` badge records of `controller`, ids from `firstId`, at T0 + at0 + k s */
function compact(controller: string, firstId: number, n: number, at0: number): CompactGroup {
  const w = new CompactWriter(controller);
  for (let k = 0; k < n; k++) {
    const granted = (firstId + k) % 3 !== 0;
    w.add(T0 + at0 + k * 1000, firstId + k, 1000 + ((firstId + k) % 5), 0, w.readerIndex(`r${k % 2}`), granted, granted ? 0 : 7, granted ? w.areaIndex('stadium') : -1, 0, [], [], seenNone());
  }
  return w.finish();
}

const T0 = 1_767_261_600_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function badge(i: number, extra: Partial<EventRecord> = {}): EventRecord {
  return {
    at: T0 + i * 1000, kind: 'badge', controller: i % 2 ? 'gate-north' : 'gate-south',
    reader: `r${i % 3}`, cred: String(1000 + (i % 5)), id: i, grant: i % 4 !== 0, reason: i % 4 ? 'ok' : 'reentry',
    violations: i % 4 ? [] : [{ code: 'reentry', mode: 'hard', area: 'stadium' }],
    op: { t: 'badge', cred: 1000 + (i % 5), reader: `r${i % 3}`, ts: T0 + i * 1000 }, ...extra,
  };
}

interface Kind { name: string; open(opts?: StoreOptions): Promise<Store>; reopen?: () => Promise<Store> }

const dirs: string[] = [];
function tmp(): string { const d = mkdtempSync(join(tmpdir(), 'apb-store-')); dirs.push(d); return d; }
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const kinds: Kind[] = [
  { name: 'memory', open: (opts) => openStore(':memory:', opts) },
  { name: 'lmdb', open: (opts) => openStore(tmp(), opts) },
];

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function settled(s: Store): Promise<void> {
  const l = s as unknown as { settle?: () => Promise<void> };
  if (l.settle) await l.settle();
}

for (const kind of kinds) {
  describe(`store contract: ${kind.name}`, () => {
    let s: Store;
    before(async () => { s = await kind.open({ retention: { intervalMs: 0 } }); });
    after(async () => { await s.close(); });

    it('assigns increasing seqs synchronously and lastSeq follows', async () => {
      assert.equal(s.lastSeq, 0);
      const evs = [badge(1), badge(2), badge(3)];
      const p = s.append(evs, []);
      assert.deepEqual(evs.map((e) => e.seq), [1, 2, 3]);
      assert.equal(s.lastSeq, 3);
      const more = [badge(4)];
      const p2 = s.append(more, []);
      assert.equal(more[0]!.seq, 4);
      await Promise.all([p, p2]);
      assert.equal(s.lastSeq, 4);
    });

    it('since() returns committed events oldest first, from any point', async () => {
      await s.append([badge(5), badge(6), badge(7), badge(8)], []);
      const all = [...s.since(0)];
      assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.deepEqual([...s.since(5)].map((e) => e.seq), [6, 7, 8]);
      assert.deepEqual([...s.since(2)].map((e) => e.seq), [3, 4, 5, 6, 7, 8]); // from inside a batch
      assert.deepEqual([...s.since(8)], []);
      assert.equal(all[4]!.cred, badge(5).cred);
      assert.deepEqual(all[4]!.op, badge(5).op);
      assert.deepEqual(all[3]!.violations, [{ code: 'reentry', mode: 'hard', area: 'stadium' }]);
    });

    it('idempotency replies: in flight, committed, normalised ids, u64 ids', async () => {
      const big = 18_446_744_073_709_551_615n;
      const p = s.append([badge(9)], [
        { controller: 'gate-north', id: 9, reply: bytes('reply-9') },
        { controller: 'gate-north', id: big.toString(), reply: bytes('reply-max') },
      ]);
      assert.deepEqual(s.getIdem('gate-north', 9), bytes('reply-9')); // before commit
      await p;
      await settled(s);
      assert.deepEqual(Buffer.from(s.getIdem('gate-north', 9)!), Buffer.from(bytes('reply-9')));
      assert.deepEqual(Buffer.from(s.getIdem('gate-north', 9n)!), Buffer.from(bytes('reply-9')));
      assert.deepEqual(Buffer.from(s.getIdem('gate-north', '9')!), Buffer.from(bytes('reply-9')));
      assert.deepEqual(Buffer.from(s.getIdem('gate-north', big)!), Buffer.from(bytes('reply-max')));
      assert.equal(s.getIdem('gate-south', 9), undefined); // ids are per controller
      assert.equal(s.getIdem('gate-north', 10), undefined);
      assert.equal(s.getIdem('gate-north', (big - 1n).toString()), undefined);
    });

    it('idempotency lookups find replies among many batches with interleaved ids', async () => {
      const ps: Promise<void>[] = [];
      for (let b = 0; b < 40; b++) {
        const idem = [];
        for (let k = 0; k < 5; k++) idem.push({ controller: 'turnstiles', id: 1000 + k * 40 + b, reply: bytes(`t${1000 + k * 40 + b}`) });
        ps.push(s.append([badge(100 + b, { controller: 'turnstiles' })], idem));
      }
      await Promise.all(ps);
      await settled(s);
      for (const id of [1000, 1039, 1040, 1123, 1199]) assert.equal(Buffer.from(s.getIdem('turnstiles', id)!).toString(), `t${id}`);
      assert.equal(s.getIdem('turnstiles', 1200), undefined);
      assert.equal(s.getIdem('turnstiles', 999), undefined);
    });

    it('query: newest first, by cred, reader, controller, time, limit, paging', async () => {
      await settled(s);
      const all = [...s.since(0)];
      const newest = s.query({ limit: 5 });
      assert.deepEqual(newest.map((e) => e.seq), all.slice(-5).reverse().map((e) => e.seq));
      const byCred = s.query({ cred: '1001', limit: 1000 });
      assert.deepEqual(byCred.map((e) => e.seq), all.filter((e) => e.cred === '1001').reverse().map((e) => e.seq));
      assert.ok(byCred.length > 3);
      const byReader = s.query({ reader: 'r2', limit: 1000 });
      assert.deepEqual(byReader.map((e) => e.seq), all.filter((e) => e.reader === 'r2').reverse().map((e) => e.seq));
      const both = s.query({ reader: 'r1', cred: '1001', limit: 1000 });
      assert.deepEqual(both.map((e) => e.seq), all.filter((e) => e.reader === 'r1' && e.cred === '1001').reverse().map((e) => e.seq));
      const since = T0 + 50_000;
      assert.deepEqual(s.query({ since, limit: 1000 }).map((e) => e.seq), all.filter((e) => e.at >= since).reverse().map((e) => e.seq));
      assert.deepEqual(s.query({ cred: '1002', since, limit: 1000 }).map((e) => e.seq),
        all.filter((e) => e.at >= since && e.cred === '1002').reverse().map((e) => e.seq));
      const page2 = s.query({ cred: '1001', beforeSeq: byCred[1]!.seq!, limit: 2 });
      assert.deepEqual(page2.map((e) => e.seq), byCred.slice(2, 4).map((e) => e.seq));
      assert.deepEqual(s.query({ controller: 'turnstiles', limit: 3 }).map((e) => e.seq), all.filter((e) => e.controller === 'turnstiles').slice(-3).reverse().map((e) => e.seq));
      assert.deepEqual(s.query({ cred: 'nobody' }), []);
    });

    it('query sees committed events before they are indexed', async () => {
      await s.append([badge(300, { cred: 'fresh-cred', reader: 'fresh-reader' })], []);
      assert.equal(s.query({ cred: 'fresh-cred' }).length, 1);
      assert.equal(s.query({ reader: 'fresh-reader' }).length, 1);
      await settled(s);
      assert.equal(s.query({ cred: 'fresh-cred' }).length, 1);
    });

    it('range(sinceAt, untilAt) exports a time window oldest first', async () => {
      const all = [...s.since(0)];
      const a = T0 + 20_000, b = T0 + 120_000;
      assert.deepEqual([...s.range(a, b)].map((e) => e.seq), all.filter((e) => e.at >= a && e.at <= b).map((e) => e.seq));
      assert.deepEqual([...s.range()].map((e) => e.seq), all.map((e) => e.seq));
    });

    it('u64 and binary credentials in ops survive storage exactly', async () => {
      const op = { t: 'badge', cred: 18_446_744_073_709_551_615n, reader: 'r1', ts: T0 };
      const op2 = { t: 'badge', cred: Uint8Array.from([4, 0xa1, 0xb2]), reader: 'r1', ts: T0 };
      await s.append([badge(400, { op }), badge(401, { op: op2 })], []);
      const got = [...s.since(s.lastSeq - 2)];
      assert.equal((got[0]!.op as { cred: bigint }).cred, 18_446_744_073_709_551_615n);
      assert.deepEqual(Buffer.from((got[1]!.op as { cred: Uint8Array }).cred), Buffer.from([4, 0xa1, 0xb2]));
    });

    it('config records put a configuration in force; saveConfig too', async () => {
      await s.saveConfig('site: one\n');
      assert.equal(s.configText(), 'site: one\n');
      await s.append([{ at: T0 + 500_000, kind: 'config', op: { t: 'config', text: 'site: two\n' } }], []);
      assert.equal(s.configText(), 'site: two\n');
      // query() (GET /v1/events, viewers) never shows a configuration's text: it holds every token
      const shown = s.query({ limit: 1 })[0]!;
      assert.equal(shown.kind, 'config');
      assert.deepEqual(shown.op, { t: 'config', redacted: true, bytes: 10 });
      assert.deepEqual([...s.since(s.lastSeq - 1)][0]!.op, { t: 'config', text: 'site: two\n' });
    });

    it('snapshots: newest wins, config text kept, only two kept', async () => {
      assert.equal(s.latestSnapshot(), undefined);
      await s.saveSnapshot(3, Uint8Array.from([1, 2, 3]), 'cfg-a', T0);
      await s.saveSnapshot(5, Uint8Array.from([5, 5]), 'cfg-b', T0 + 1);
      await s.saveSnapshot(7, Uint8Array.from([7]), 'cfg-c', T0 + 2);
      const snap = s.latestSnapshot()!;
      assert.equal(snap.seq, 7);
      assert.equal(snap.configText, 'cfg-c');
      assert.deepEqual(Buffer.from(snap.bytes), Buffer.from([7]));
      assert.deepEqual(s.stats().snapshots, [5, 7]);
    });

    if (kind.name === 'memory') {
      it('the memory store keeps a snapshot\'s bytes as handed over (no second copy of the image)', async () => {
        const image = Uint8Array.from([9, 9, 9]);
        await s.saveSnapshot(9, image, 'cfg-d', T0 + 3);
        assert.equal(s.latestSnapshot()!.bytes, image);
      });
    }

    it('an empty append is a no-op; a malformed record is refused without a seq', async () => {
      const before = s.lastSeq;
      await s.append([], []);
      assert.equal(s.lastSeq, before);
      await assert.rejects(s.append([{ kind: 'badge' } as unknown as EventRecord], []), (e: unknown) => e instanceof ApbError && e.code === 'internal');
      assert.equal(s.lastSeq, before);
    });

    it('a closed store refuses writes with storage_unavailable', async () => {
      const t = await kind.open();
      await t.close();
      assert.equal(t.healthy, false);
      await assert.rejects(t.append([badge(1)], []), (e: unknown) => e instanceof ApbError && e.code === 'storage_unavailable');
    });
  });

  describe(`store contract (compact groups, maxId): ${kind.name}`, () => {
    it('appendCompact takes seqs synchronously, in order with append() of the same turn', async () => {
      const s = await kind.open({ retention: { intervalMs: 0 } });
      try {
        assert.equal(s.maxId('gate-north'), -1);
        const a = [badge(1), badge(2)];
        const g = compact('gate-north', 10, 3, 3000);
        const b = [badge(6)];
        const ps = [s.append(a, [{ controller: 'gate-north', id: 1, reply: bytes('one') }]), s.appendCompact(g), s.append(b, [])];
        assert.deepEqual(a.map((e) => e.seq), [1, 2]);
        assert.equal(s.lastSeq, 6);
        assert.equal(b[0]!.seq, 6);
        assert.equal(s.maxId('gate-north'), 12, 'appended but not yet committed ids count');
        // a resend of a compact record before its commit gets its reply (the hub waits for the commit)
        const recs = [...compactRecords(g)];
        assert.deepEqual(Buffer.from(s.getIdem('gate-north', 11)!), Buffer.from(compactReply(recs[1]!)));
        await Promise.all(ps);
        const all = [...s.since(0)];
        assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(all.slice(2, 5), recs.map((r, k) => toEventRecord(g, r, 3 + k)));
        assert.deepEqual([...s.since(3)].map((e) => e.seq), [4, 5, 6]);
        for (const r of recs) assert.deepEqual(Buffer.from(s.getIdem('gate-north', r.id)!), Buffer.from(compactReply(r)));
        assert.equal(Buffer.from(s.getIdem('gate-north', 1)!).toString(), 'one');
        assert.equal(s.getIdem('gate-south', 11), undefined);
        assert.equal(s.getIdem('gate-north', 13), undefined);
        await settled(s);
        assert.deepEqual(s.query({ controller: 'gate-north', limit: 10 }).map((e) => e.seq), [5, 4, 3, 1].filter((q) => all[q - 1]!.controller === 'gate-north'));
        const c = recs[0]!.cred;
        assert.deepEqual(s.query({ cred: String(c), limit: 10 }).map((e) => e.seq), all.filter((e) => e.cred === String(c)).map((e) => e.seq).reverse());
        assert.deepEqual(s.query({ reader: 'r1', limit: 10 }).map((e) => e.seq), all.filter((e) => e.reader === 'r1').map((e) => e.seq).reverse());
        assert.deepEqual([...s.range(T0 + 4000, T0 + 5000)].map((e) => e.seq), [4, 5]);
        assert.equal(s.stats().lastSeq, 6);
        assert.equal(s.stats().events, 6);
      } finally { await s.close(); }
    });

    it('maxId: per controller, general and compact ids, Infinity after an id above 2^53-1', async () => {
      const s = await kind.open({ retention: { intervalMs: 0 } });
      try {
        await s.appendCompact(compact('c', 5, 2, 0));
        await s.append([badge(1, { controller: 'c' })], [{ controller: 'c', id: 3, reply: bytes('3') }]);
        assert.equal(s.maxId('c'), 6);
        await s.append([badge(2, { controller: 'c' })], [{ controller: 'c', id: 100, reply: bytes('100') }]);
        assert.equal(s.maxId('c'), 100);
        assert.equal(s.maxId('d'), -1);
        await s.append([badge(3, { controller: 'd' })], [{ controller: 'd', id: '18446744073709551615', reply: bytes('big') }]);
        assert.equal(s.maxId('d'), Infinity);
        assert.equal(s.maxId('c'), 100);
      } finally { await s.close(); }
    });

    it('a malformed group is refused without a seq; an empty one is a no-op', async () => {
      const s = await kind.open({ retention: { intervalMs: 0 } });
      try {
        await assert.rejects(s.appendCompact({ c: 'x' } as unknown as CompactGroup), (e: unknown) => e instanceof ApbError && e.code === 'internal');
        assert.equal(s.lastSeq, 0);
        await s.appendCompact(new CompactWriter('x').finish());
        assert.equal(s.lastSeq, 0);
      } finally { await s.close(); }
    });

    it('retention deletes compact groups whole, with their idempotency', async () => {
      let now = T0;
      const s = await kind.open({ now: () => now, retention: { intervalMs: 0, maxAgeMs: 60_000 } });
      try {
        for (let i = 0; i < 10; i++) { await s.appendCompact(compact('k', 1 + i * 4, 4, i * 10_000)); await turn(); }
        await settled(s);
        now = T0 + 10_000_000;
        await s.saveSnapshot(20, Uint8Array.from([1]), 'cfg');
        await s.saveSnapshot(22, Uint8Array.from([2]), 'cfg');
        assert.equal(await s.compact(), 20, 'the groups wholly at or before the older snapshot');
        assert.equal([...s.since(0)][0]!.seq, 21);
        assert.equal(s.getIdem('k', 20), undefined);
        assert.ok(s.getIdem('k', 21));
        assert.equal(s.maxId('k'), 40);
      } finally { await s.close(); }
    });
  });

  describe(`store retention: ${kind.name}`, () => {
    it('deletes old events only up to the older kept snapshot, with their idempotency replies', async () => {
      let now = T0;
      const s = await kind.open({ now: () => now, retention: { intervalMs: 0, maxAgeMs: 60_000, chunk: 7 } });
      try {
        const ps: Promise<void>[] = [];
        // one append per event-loop turn (as frames arrive): one log batch each
        for (let i = 0; i < 100; i++) { ps.push(s.append([badge(i)], [{ controller: 'c', id: i, reply: bytes(`r${i}`) }])); await turn(); }
        await Promise.all(ps);
        await settled(s);
        now = T0 + 1_000_000; // everything is older than maxAgeMs now
        assert.equal(await s.compact(), 0, 'nothing may go before a snapshot exists');
        await s.saveSnapshot(40, Uint8Array.from([1]), 'cfg');
        await s.saveSnapshot(60, Uint8Array.from([2]), 'cfg');
        const n = await s.compact();
        assert.equal(n, 40, 'events up to the older kept snapshot');
        const left = [...s.since(0)];
        assert.equal(left[0]!.seq, 41);
        assert.equal(left.length, 60);
        assert.equal(s.getIdem('c', 39), undefined);
        assert.equal(Buffer.from(s.getIdem('c', 40)!).toString(), 'r40');
        assert.equal(s.query({ cred: badge(3).cred!, limit: 1000 }).every((e) => e.seq! > 40), true);
        assert.equal(s.stats().firstSeq, 41);
        now = T0 + 130_000; // events at or after T0+70 s (seq 71 on) are younger than 60 s: keep them
        await s.saveSnapshot(90, Uint8Array.from([3]), 'cfg');
        await s.saveSnapshot(100, Uint8Array.from([4]), 'cfg');
        assert.equal(await s.compact(), 30);
        assert.equal([...s.since(0)][0]!.seq, 71, 'only events older than maxAgeMs went');
        assert.equal(s.lastSeq, 100);
      } finally { await s.close(); }
    });

    it('size-based retention trims the oldest events', async () => {
      const s = await kind.open({ retention: { intervalMs: 0, maxBytes: 1, chunk: 5 } });
      try {
        const ps: Promise<void>[] = [];
        for (let i = 0; i < 30; i++) { ps.push(s.append([badge(i, { at: Date.now() })], [])); await turn(); }
        await Promise.all(ps);
        await settled(s);
        await s.saveSnapshot(20, Uint8Array.from([1]), 'cfg');
        const n = await s.compact();
        assert.equal(n, 20);
        assert.equal([...s.since(0)].length, 10);
      } finally { await s.close(); }
    });
  });
}

describe('lmdb store: persistence', () => {
  it('reopening a directory keeps events, idempotency, config, snapshots and lastSeq', async () => {
    const dir = tmp();
    const a = await openStore(dir, { retention: { intervalMs: 0 } });
    await a.append([badge(1), badge(2)], [{ controller: 'gate-north', id: 1, reply: bytes('one') }]);
    await a.append([{ at: T0, kind: 'config', op: { t: 'config', text: 'cfg-x' } }], []);
    await a.saveSnapshot(3, Uint8Array.from([9, 9]), 'cfg-x', T0);
    await a.close();
    const b = await openStore(dir, { retention: { intervalMs: 0 } });
    try {
      assert.equal(b.lastSeq, 3);
      assert.deepEqual([...b.since(0)].map((e) => e.kind), ['badge', 'badge', 'config']);
      assert.equal(Buffer.from(b.getIdem('gate-north', 1)!).toString(), 'one');
      assert.equal(b.configText(), 'cfg-x');
      assert.equal(b.latestSnapshot()!.seq, 3);
      assert.equal(b.query({ cred: badge(2).cred! }).length, 1);
      const evs = [badge(3)];
      await b.append(evs, []);
      assert.equal(evs[0]!.seq, 4);
    } finally { await b.close(); }
  });

  it('a damaged newest snapshot file falls back to the older one', async () => {
    const dir = tmp();
    const a = await openStore(dir, { retention: { intervalMs: 0 } });
    await a.saveSnapshot(1, Uint8Array.from([1, 1]), 'c1');
    await a.saveSnapshot(2, Uint8Array.from([2, 2, 2]), 'c2');
    await a.close();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'snapshots', '0000000000000002.snap'), Uint8Array.from([2])); // truncated
    const b = await openStore(dir, { retention: { intervalMs: 0 } });
    try { assert.equal(b.latestSnapshot()!.seq, 1); } finally { await b.close(); }
  });

  it('read-only open of a missing directory is a precise error', async () => {
    await assert.rejects(openStore(join(tmp(), 'nope'), { readOnly: true }), (e: unknown) => e instanceof ApbError && e.code === 'not_found');
  });
});
