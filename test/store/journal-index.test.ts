/**
 * The journal and its derived storage (issue 12), on real LMDB directories:
 *  - the journal environment holds the log (and meta/snaps), D/index the indexes; deleting D/index
 *    or replacing it by another journal's loses nothing: it is rebuilt and every answer is the same;
 *  - compact groups round-trip through since()/range()/query()/getIdem, replies byte-identical to the
 *    general path's encoding of the same decision;
 *  - idempotency beyond the in-memory window (D/index, then the unindexed journal tail);
 *  - a SIGKILL while the indexer is far behind loses nothing acknowledged, indexes complete after;
 *  - a data directory of the previous layout (indexes inside the journal) opens, migrates, answers the same.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { openStore } from '../../src/store/index.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { compactRecords, toEventRecord } from '../../src/store/compact-journal.js';
import { compactReply } from '../../src/engine/wire-reply.js';
import { encode } from '../../src/server/codec.js';
import { padId } from '../../src/store/common.js';
import { WINDOW } from '../../src/store/id-window.js';
import type { Store, StoreOptions } from '../../src/store/types.js';
import { ROOT, STADIUM } from './util.js';
import { startServer } from '../../src/server/server.js';
import { T0, general, group, picture } from './journal-util.js';

const dirs: string[] = [];
function tmp(): string { const d = mkdtempSync(join(tmpdir(), 'apb-journal-')); dirs.push(d); return d; }
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const OPTS: StoreOptions = { retention: { intervalMs: 0 } };
/** the named sub-databases of the journal environment (the root database lists them) */
function subDatabases(dir: string): string[] {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, readOnly: true } as never);
  try { return ([...env.getKeys()] as string[]).sort(); } finally { void env.close(); }
}
const settle = (s: Store): Promise<void> => (s as LmdbStore).settle();

/** a mixed journal: general appends and compact groups of three controllers, some in one turn */
async function fill(s: Store, rounds: number): Promise<[string, number][]> {
  const ids: [string, number][] = [];
  let id = 1;
  for (let r = 0; r < rounds; r++) {
    const ps: Promise<void>[] = [];
    for (const c of ['c0', 'c1', 'c2']) {
      const n = 1 + ((r * 7 + c.charCodeAt(1)) % 12);
      if ((r + c.charCodeAt(1)) % 3 === 0) { const { events, idem } = general(c, id, n); ps.push(s.append(events, idem)); }
      else ps.push(s.appendCompact(group(c, id, n)));
      for (let k = 0; k < n; k++) ids.push([c, id + k]);
      id += n;
    }
    await Promise.all(ps);
  }
  return ids;
}

describe('journal and D/index', () => {
  it('the journal environment holds the log only; D/index is 0700 with 0600 files', async () => {
    const dir = tmp();
    const s = await openStore(dir, OPTS);
    await fill(s, 20);
    await settle(s);
    assert.equal(s.stats().indexedSeq, s.lastSeq);
    await s.close();
    assert.equal(statSync(join(dir, 'index')).mode & 0o777, 0o700);
    for (const f of ['data.mdb', 'lock.mdb']) assert.equal(statSync(join(dir, 'index', f)).mode & 0o777, 0o600);
    assert.deepEqual(subDatabases(dir), ['log', 'meta', 'snaps']);
  });

  it('deleting D/index loses nothing: rebuilt, the same answers before and after it catches up', async () => {
    const dir = tmp();
    const a = await openStore(dir, OPTS);
    const ids = await fill(a, 60);
    await settle(a);
    const want = picture(a, ids);
    await a.close();
    rmSync(join(dir, 'index'), { recursive: true, force: true });
    const b = await openStore(dir, { ...OPTS, indexer: { delayMs: 20, chunkEvents: 16 } }); // slow: answers come from the journal tail first
    try {
      assert.ok((b.indexLag ?? 0) > 0 && b.indexLag! <= b.lastSeq, `the indexer's lag is reported while it rebuilds (${b.indexLag} of ${b.lastSeq})`);
      assert.equal(picture(b, ids), want, 'answers while the index is rebuilt');
      await settle(b);
      assert.equal(b.stats().indexedSeq, b.lastSeq);
      assert.equal(b.indexLag, 0, 'no lag once rebuilt');
      assert.equal(picture(b, ids), want, 'answers once rebuilt');
    } finally { await b.close(); }
    const c = await openStore(dir, OPTS);
    try { assert.equal(picture(c, ids), want); } finally { await c.close(); }
  });

  it('a D/index that claims more than the journal holds (a power loss) is rebuilt', async () => {
    const dir = tmp();
    const a = await openStore(dir, OPTS);
    await fill(a, 20);
    await settle(a);
    const last = a.lastSeq;
    await a.close();
    // D/index is written without fsync: make it claim batches the journal never kept
    const env = open({ path: join(dir, 'index'), noSubdir: false, maxDbs: 8 } as never);
    const meta = env.openDB('meta', { keyEncoding: 'ordered-binary', encoding: 'msgpack' } as never);
    meta.putSync('indexed', last + 10_000);
    await env.close();
    const b = await openStore(dir, OPTS);
    let ids: [string, number][];
    try {
      ids = await fill(b, 20); // seqs the stale mark claimed: they must be indexed all the same
      await settle(b);
      assert.equal(b.stats().indexedSeq, b.lastSeq);
    } finally { await b.close(); }
    // the answers equal those of an index rebuilt from nothing
    const c = await openStore(dir, OPTS);
    const got = picture(c, ids);
    await c.close();
    rmSync(join(dir, 'index'), { recursive: true, force: true });
    const d = await openStore(dir, OPTS);
    try { await settle(d); assert.equal(got, picture(d, ids)); } finally { await d.close(); }
  });

  it('a D/index built from another journal is rebuilt', async () => {
    const other = tmp(), dir = tmp();
    const x = await openStore(other, OPTS);
    await fill(x, 30);
    await x.append(general('c0', 90_000, 50).events, general('c0', 90_000, 50).idem);
    await settle(x); await x.close();
    const a = await openStore(dir, OPTS);
    const ids = await fill(a, 25);
    await settle(a);
    const want = picture(a, ids);
    await a.close();
    rmSync(join(dir, 'index'), { recursive: true, force: true });
    cpSync(join(other, 'index'), join(dir, 'index'), { recursive: true }); // indexed further than this journal, with other batches
    const b = await openStore(dir, OPTS);
    try {
      assert.equal(b.getIdem('c0', 90_010), undefined, 'nothing of the other journal answers');
      assert.equal(picture(b, ids), want);
      await settle(b);
      assert.equal(b.stats().indexedSeq, b.lastSeq);
      assert.equal(picture(b, ids), want);
    } finally { await b.close(); }
  });

  it('a damaged D/index is rebuilt', async () => {
    const dir = tmp();
    const a = await openStore(dir, OPTS);
    const ids = await fill(a, 15);
    await settle(a);
    const want = picture(a, ids);
    await a.close();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'index', 'data.mdb'), Buffer.alloc(100, 0x5a));
    const b = await openStore(dir, OPTS);
    try {
      await settle(b);
      assert.equal(b.stats().indexedSeq, b.lastSeq);
      assert.equal(picture(b, ids), want);
    } finally { await b.close(); }
  });

  it('compact groups: since/range/query give toEventRecord, getIdem the bytes of compactReply and of the general path', async () => {
    for (const kind of ['lmdb', 'memory'] as const) {
      const s = await openStore(kind === 'lmdb' ? tmp() : ':memory:', OPTS);
      try {
        await s.append(general('g', 1, 3).events, general('g', 1, 3).idem);
        const g = group('c7', 100, 40, 3);
        const p = s.appendCompact(g);
        assert.equal(s.lastSeq, 43, 'seqs taken synchronously');
        await p;
        const recs = [...compactRecords(g)];
        const want = recs.map((r, k) => toEventRecord(g, r, 4 + k));
        assert.deepEqual([...s.since(3)], want);
        assert.deepEqual([...s.since(10)], want.filter((e) => e.seq! > 10));
        assert.deepEqual([...s.range(T0 + 110, T0 + 119)], want.filter((e) => e.at >= T0 + 110 && e.at <= T0 + 119));
        const one = want[5]!;
        assert.deepEqual(s.query({ cred: one.cred!, limit: 100 }).filter((e) => e.controller === 'c7'), want.filter((e) => e.cred === one.cred).reverse());
        if (kind === 'lmdb') await settle(s);
        assert.deepEqual(s.query({ reader: one.reader!, limit: 100 }).filter((e) => e.controller === 'c7'), want.filter((e) => e.reader === one.reader).reverse());
        assert.deepEqual(s.query({ controller: 'c7', limit: 100 }), [...want].reverse());
        let granted = 0, denied = 0, passages = 0;
        for (const r of recs) {
          const got = Buffer.from(s.getIdem('c7', r.id)!);
          assert.deepEqual(got, Buffer.from(compactReply(r)));
          // what the general path sends for the same decision (the hub's encode of the result, then id):
          // violations as code, mode and area only (their facts are the event record's)
          const violations = r.violations.map((v) => ({ code: v.code, mode: v.mode, area: v.area }));
          const body = r.kind === 1 ? { t: 'ack', id: r.id }
            : r.granted ? { t: 'decision', grant: true, reason: 'ok', violations, area: r.area, id: r.id }
              : { t: 'decision', grant: false, reason: 'reentry', violations, id: r.id };
          assert.deepEqual(got, Buffer.from(encode(body)));
          if (r.kind === 1) passages++; else if (r.granted) granted++; else denied++;
        }
        assert.ok(granted > 0 && denied > 0 && passages > 0, 'every kind of record was checked');
        assert.equal(s.getIdem('c7', 140), undefined);
        assert.equal(s.getIdem('c8', 100), undefined);
        assert.equal(s.maxId('c7'), 139);
      } finally { await s.close(); }
    }
  });

  it('idempotency beyond the window: from the journal tail while unindexed, from D/index after; the same over reopen', async () => {
    const dir = tmp();
    const s = await openStore(dir, { ...OPTS, indexer: { delayMs: 60_000, chunkEvents: 4 } }); // stays far behind
    const N = WINDOW + 1000;
    let top = 0;
    try {
      for (let i = 1; i <= N; i += 100) {
        top = i + 99;
        const ps = [s.append(general('w', i, 50).events, general('w', i, 50).idem), s.appendCompact(group('w', i + 50, 50))];
        await Promise.all(ps);
      }
      assert.ok(s.stats().indexedSeq < 100, 'the indexer is behind');
      const probe = [1, 2, 51, 77, 999, 1050, N - 1, N - 51];
      const hex = (id: number): string => Buffer.from(s.getIdem('w', id) ?? []).toString('hex');
      const before = probe.map(hex);
      assert.ok(before.every((h) => h.length > 0));
      assert.equal(hex(1), Buffer.from(general('w', 1, 1).idem[0]!.reply).toString('hex'));
      assert.equal(hex(51), Buffer.from(compactReply([...compactRecords(group('w', 51, 50))][0]!)).toString('hex'));
      assert.equal(s.getIdem('w', N + 100), undefined);
      await s.close();
      const t = await openStore(dir, OPTS);
      try {
        assert.deepEqual(probe.map((id) => Buffer.from(t.getIdem('w', id) ?? []).toString('hex')), before);
        await settle(t);
        assert.equal(t.stats().indexedSeq, t.lastSeq);
        assert.deepEqual(probe.map((id) => Buffer.from(t.getIdem('w', id) ?? []).toString('hex')), before);
        assert.equal(t.maxId('w'), top);
      } finally { await t.close(); }
    } finally { await s.close(); }
  });

  it('compact groups of one turn are one journal value in call order; values holding one group (older) still read', async () => {
    const dir = tmp(), mem = await openStore(':memory:', OPTS);
    const s = await openStore(dir, OPTS);
    const calls = (t: Store): Promise<void>[] => [
      t.appendCompact(group('c0', 1, 3)), t.appendCompact(group('c1', 1, 2)), t.appendCompact(group('c0', 4, 1)),
      t.append(general('g', 1, 2).events, general('g', 1, 2).idem), t.appendCompact(group('c2', 1, 4)),
    ];
    const ids: [string, number][] = [['c0', 1], ['c0', 2], ['c0', 3], ['c0', 4], ['c1', 1], ['c1', 2], ['g', 1], ['g', 2], ['c2', 1], ['c2', 4]];
    try {
      await Promise.all(calls(s)); await Promise.all(calls(mem));
      await settle(s);
      assert.equal(s.lastSeq, 12);
      assert.equal(picture(s, ids), picture(mem, ids), 'the same answers as a store that keeps every group apart');
      await s.close();
      // the raw journal: three values (the groups before the general append, the general one, the last group)
      const env = open({ path: dir, noSubdir: false, maxDbs: 16 } as never);
      const log = env.openDB('log', { keyEncoding: 'ordered-binary', encoding: 'msgpack', encoder: { int64AsType: 'auto', useRecords: false } } as never);
      const values = [...log.getRange({ start: 0 })].map(({ key, value }) => ({ key, value: value as { n: number; k?: { c: string; n: number }[]; e?: unknown[] } }));
      assert.deepEqual(values.map((v) => [v.key, v.value.n, v.value.k?.map((g) => `${g.c}:${g.n}`) ?? 'general']),
        [[1, 6, ['c0:3', 'c1:2', 'c0:1']], [7, 2, 'general'], [9, 4, ['c2:4']]]);
      // a value written before groups were gathered per turn: `k` holds one group, not an array
      const old = group('c3', 1, 5);
      await log.put(13, { s: 13, n: 5, a0: T0 + 1, a1: T0 + 5, k: old });
      await env.close();
      const t = await openStore(dir, OPTS);
      try {
        await mem.appendCompact(old);
        const all: [string, number][] = [...ids, ['c3', 1], ['c3', 5]];
        assert.equal(t.lastSeq, 17);
        await settle(t);
        assert.equal(picture(t, all), picture(mem, all), 'an older value reads as the same records');
        assert.equal(t.maxId('c3'), 5, 'its ids are loaded into the window at open');
        assert.deepEqual(Buffer.from(t.getIdem('c3', 5)!), Buffer.from(compactReply([...compactRecords(old)][4]!)), 'the older value answers a resend from D/index');
      } finally { await t.close(); }
    } finally { await s.close(); await mem.close(); }
  });

  it('appends of one turn are one write-ahead log write and one sync (syncs counts them)', async () => {
    const s = await openStore(tmp(), OPTS) as LmdbStore;
    try {
      await s.append(general('t', 1, 1).events, []);
      await s.whenCommitted();
      const before = s.syncs;
      const ps: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) { ps.push(s.append(general('t', 10 + i * 3, 2).events, general('t', 10 + i * 3, 2).idem)); ps.push(s.appendCompact(group('u', 100 + i * 5, 5))); }
      await Promise.all(ps);
      await s.whenCommitted();
      assert.equal(s.syncs - before, 1);
    } finally { await s.close(); }
  });
});

describe('apb_storage_syncs_total', () => {
  it('/metrics counts write-ahead log syncs', async () => {
    const srv = await startServer({ configText: STADIUM, data: join(tmp(), 'data'), host: '127.0.0.1', port: 0, logLevel: 'silent', core: 'reference' });
    try {
      const syncs = async (): Promise<number> => Number(/^apb_storage_syncs_total (\d+)$/m.exec(await (await fetch(`${srv.url}/metrics`)).text())?.[1]);
      let last = await syncs();
      assert.ok(Number.isInteger(last));
      for (let id = 1; id <= 3; id++) {
        const r = await fetch(`${srv.url}/v1/decide`, {
          method: 'POST', headers: { authorization: 'Bearer demo-turnstiles-token', 'content-type': 'application/json' },
          body: JSON.stringify({ t: 'badge', id, cred: 10_000 + id, reader: 'turnstile-1-in' }),
        });
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        // under durability 'commit' the reply goes once the write reaches the OS; its sync follows at once
        // (a write made while a sync runs waits for the next one, so each decision is awaited on its own)
        let now = await syncs();
        for (const until = Date.now() + 5000; now <= last && Date.now() < until;) { await new Promise((res) => setTimeout(res, 20)); now = await syncs(); }
        assert.ok(now > last, `decision ${id} was followed by a sync (${last} → ${now})`);
        last = now;
      }
    } finally { await srv.close(); }
  });
});

describe('previous layout', () => {
  it('a directory with icred/ireader/itime/iidem in the journal opens, migrates, answers the same', async () => {
    const dir = tmp();
    // the previous layout, written by hand: log batches {s,n,a0,a1,z,e,i} and the indexes inside the journal
    const env = open({ path: dir, noSubdir: false, maxDbs: 16, mapSize: 2 ** 26 } as never);
    const ob = { keyEncoding: 'ordered-binary' as const };
    const log = env.openDB('log', { ...ob, encoding: 'msgpack', sharedStructuresKey: Symbol.for('structures'), encoder: { int64AsType: 'auto' } } as never);
    const icred = env.openDB('icred', { ...ob, encoding: 'binary' });
    const ireader = env.openDB('ireader', { ...ob, encoding: 'binary' });
    const itime = env.openDB('itime', { ...ob, encoding: 'binary' });
    const iidem = env.openDB('iidem', { ...ob, encoding: 'msgpack' });
    const meta = env.openDB('meta', { ...ob, encoding: 'msgpack' });
    const ids: [string, number][] = [];
    let seq = 1;
    for (let b = 0; b < 40; b++) {
      const { events, idem } = general(`c${b % 3}`, 1 + b * 5, 5);
      for (const e of events) e.seq = seq++;
      const key = events[0]!.seq!;
      await log.put(key, { s: key, n: 5, a0: events[0]!.at, a1: events[4]!.at, z: key + 4, e: events, i: idem.map((r) => [r.controller, r.id, r.reply]) });
      for (const e of events) { await icred.put([e.cred!, key], Buffer.from([1])); await ireader.put([e.reader!, key], Buffer.from([1])); }
      await itime.put([events[0]!.at, key], Buffer.from([1]));
      for (const r of idem) { await iidem.put([r.controller, padId(r.id as number)], key); ids.push([r.controller, r.id as number]); }
    }
    await meta.put('indexed', seq - 1);
    await meta.put('config', 'site: old\n');
    await env.close();

    const s = await openStore(dir, OPTS);
    let want: string;
    try {
      assert.equal(s.lastSeq, 200);
      assert.equal(s.configText(), 'site: old\n');
      assert.equal(s.maxId('c1'), 190);
      want = picture(s, ids);
      assert.equal(s.query({ cred: '2003', limit: 1000 }).length, 5);
      assert.deepEqual(Buffer.from(s.getIdem('c0', 1)!), Buffer.from(general('c0', 1, 1).idem[0]!.reply));
      await settle(s);
      assert.equal(s.stats().indexedSeq, 200);
      assert.equal(picture(s, ids), want);
      const evs = general('c0', 1000, 1).events;
      await s.append(evs, []);
      assert.equal(evs[0]!.seq, 201);
      want = picture(s, ids);
    } finally { await s.close(); }
    assert.deepEqual(subDatabases(dir), ['log', 'meta', 'snaps'], 'the old indexes are dropped');
    const t = await openStore(dir, OPTS);
    try {
      assert.ok(existsSync(join(dir, 'index', 'data.mdb')));
      assert.equal(picture(t, ids), want);
      assert.deepEqual(Buffer.from(t.getIdem('c0', 196)!), Buffer.from(general('c0', 196, 1).idem[0]!.reply));
    } finally { await t.close(); }
  });
});

const CHILD = join(ROOT, 'build', 'test', 'store', 'indexer-crash-child.js');

function crashRound(dir: string, firstId: number, delayMs: number, killAfterMs: number): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(firstId), String(delayMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '', err = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      const ready = buf.includes('READY\n');
      buf += d;
      if (!ready && buf.includes('READY\n')) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') { reject(new Error(`child exited ${code} ${signal}: ${err}`)); return; }
      const acks = new Map<string, string>();
      for (const line of buf.slice(0, buf.lastIndexOf('\n') + 1).split('\n')) {
        const m = /^A (\S+) (\d+) ([0-9a-f]+)$/.exec(line);
        if (m) acks.set(`${m[1]} ${m[2]}`, m[3]!);
      }
      resolve(acks);
    });
  });
}

describe('crash while the indexer is far behind', () => {
  it('SIGKILL rounds: nothing acknowledged is lost, the indexes complete after catch-up', async () => {
    const dir = join(tmp(), 'data');
    const all = new Map<string, string>();
    let firstId = 1, prevLast = 0;
    for (let round = 0; round < 4; round++) {
      const acks = await crashRound(dir, firstId, 500, 300 + round * 150);
      assert.ok(acks.size > 0, `round ${round} acknowledged something`);
      for (const [k, v] of acks) all.set(k, v);
      firstId += 1_000_000;
      // what D/index held at the kill (read before the store opens and its indexer starts)
      const ixEnv = open({ path: join(dir, 'index'), noSubdir: false, maxDbs: 8, readOnly: true } as never);
      const indexedAtKill = ixEnv.openDB('meta', { keyEncoding: 'ordered-binary', encoding: 'msgpack' }).get('indexed') as number;
      await ixEnv.close();
      assert.ok(indexedAtKill < prevLast + acks.size, `the indexer was behind at the kill (${indexedAtKill} < ${prevLast + acks.size})`);
      const s = await openStore(dir, { ...OPTS, indexer: { chunkEvents: 64 } });
      try {
        const seen = new Map<string, number>();
        for (const e of s.since(0)) { const k = `${e.controller} ${e.id}`; seen.set(k, (seen.get(k) ?? 0) + 1); }
        for (const [k, hex] of all) {
          assert.equal(seen.get(k), 1, `${k} journaled once`);
          const [c, id] = k.split(' ');
          assert.equal(Buffer.from(s.getIdem(c!, Number(id)) ?? []).toString('hex'), hex, `${k} reply`);
        }
        const byScan = (cred: string): number[] => [...s.since(0)].filter((e) => e.cred === cred).map((e) => e.seq!).reverse();
        const q = (cred: string): number[] => s.query({ cred, limit: 10_000 }).map((e) => e.seq!);
        assert.deepEqual(q('2005'), byScan('2005'));
        await settle(s);
        assert.equal(s.stats().indexedSeq, s.lastSeq, 'indexes complete after catch-up');
        assert.deepEqual(q('2005'), byScan('2005'));
        assert.deepEqual(q('2031'), byScan('2031'));
        for (const [k, hex] of all) {
          const [c, id] = k.split(' ');
          assert.equal(Buffer.from(s.getIdem(c!, Number(id)) ?? []).toString('hex'), hex);
        }
        prevLast = s.lastSeq;
      } finally { await s.close(); }
    }
  });
});
