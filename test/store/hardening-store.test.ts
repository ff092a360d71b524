/**
 * Issue 10, the store's part: the indexer never takes the process down
 * (item 1), data directory paths (item 8), permissions (item 15), and the
 * in-process side of the data-directory lock (item 3).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { ApbError } from '../../src/errors.js';
import { openStore } from '../../src/store/index.js';
import { LmdbStore, MAX_INDEXED_NAME_BYTES } from '../../src/store/lmdb-store.js';
import type { EventRecord } from '../../src/store/types.js';
import { openDurableEngine } from '../../src/store/recovery.js';
import { STADIUM } from './util.js';
import { startServer } from '../../src/server/server.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function temp(): string { const d = mkdtempSync(join(tmpdir(), 'apb-hard-')); dirs.push(d); return d; }

const LONG = 'r'.repeat(2000);          // over LMDB's 1,978-byte key limit once in an index key
const ev = (at: number, reader: string, cred: string): EventRecord => ({ at, kind: 'badge', controller: 'c', reader, cred, grant: true, reason: 'ok' });

/** Rewinds meta 'indexed' so the next open re-indexes the whole log (as after a crash before the indexer ran). */
function rewindIndex(dir: string): void {
  const root = open({ path: dir, maxDbs: 16 });
  const meta = root.openDB('meta', { keyEncoding: 'ordered-binary', encoding: 'msgpack' });
  meta.putSync('indexed', 0);
  void root.close();
}

describe('the indexer never takes the process down (issue 10 item 1)', () => {
  it('a record whose reader and credential are over the key limit is journaled, skipped by the indexer and counted', async () => {
    const dir = temp();
    const store = new LmdbStore(dir, { retention: { intervalMs: 0 } });
    await store.append([ev(1, 'gate-in', 'c1'), ev(2, LONG, 'c2'), ev(3, 'gate-in', LONG)], [{ controller: 'c', id: 1, reply: Uint8Array.of(1) }]);
    await store.append([ev(4, 'gate-in', 'c3')], []);
    await store.settle();
    assert.equal(store.healthy, true);
    assert.equal(store.indexSkipped, 2, 'the long reader and the long credential');
    assert.equal(store.stats().indexedSeq, 4, 'the indexer went past the record');
    // every record is still in the journal; normal queries work; long query values find nothing and do not throw
    assert.deepEqual([...store.since(0)].map((e) => e.seq), [1, 2, 3, 4]);
    assert.deepEqual(store.query({ reader: 'gate-in' }).map((e) => e.seq), [4, 3, 1]);
    assert.deepEqual(store.query({ reader: 'x'.repeat(3000) }), []);
    assert.deepEqual(store.query({ cred: 'y'.repeat(3000) }), []);
    assert.deepEqual(store.query({ reader: LONG }), []);
    assert.equal(store.getIdem('c'.repeat(3000), 1), undefined);
    await store.close();
  });

  it('a data directory that already holds such a record (not yet indexed) opens, indexes past it and serves', async () => {
    const dir = temp();
    let store = new LmdbStore(dir, { retention: { intervalMs: 0 } });
    await store.append([ev(1, LONG, 'c1'), ev(2, 'gate-in', 'c2')], []);
    await store.settle();
    await store.close();
    rewindIndex(dir);
    store = new LmdbStore(dir, { retention: { intervalMs: 0 } });
    await store.settle();
    assert.equal(store.healthy, true);
    assert.equal(store.indexSkipped, 1);
    assert.deepEqual(store.query({ cred: 'c2' }).map((e) => e.seq), [2]);
    await store.append([ev(3, 'gate-in', 'c3')], []);
    await store.settle();
    assert.deepEqual(store.query({ reader: 'gate-in' }).map((e) => e.seq), [3, 2]);
    await store.close();
  });

  it('retention deletes such a record without failing', async () => {
    const dir = temp();
    let now = 1000;
    const store = new LmdbStore(dir, { retention: { intervalMs: 0, maxAgeMs: 10 }, now: () => now });
    await store.append([ev(1, LONG, LONG)], []);
    await store.append([ev(2, 'gate-in', 'c2')], []);
    await store.settle();
    await store.saveSnapshot(2, Uint8Array.of(1, 2, 3), undefined, 2);
    now = 10_000;
    assert.equal(await store.compact(), 2);
    assert.equal(store.healthy, true);
    assert.deepEqual([...store.since(0)], []);
    await store.close();
  });

  it('a server on such a data directory starts, serves, and counts the skipped entries on /metrics', async () => {
    const dir = temp();
    const store = new LmdbStore(dir, { retention: { intervalMs: 0 } });
    await store.append([ev(1, LONG, '1001'), ev(2, 'gate-north-in', '1002')], []);
    await store.settle();
    await store.close();
    rewindIndex(dir);
    const srv = await startServer({ configText: STADIUM, data: dir, host: '127.0.0.1', port: 0, logLevel: 'silent', core: 'reference' });
    try {
      let text = '';
      for (const deadline = Date.now() + 20_000; !/^apb_store_index_skipped_total 1$/m.test(text);) {
        assert.ok(Date.now() < deadline, `metric not seen: ${text.split('\n').filter((l) => l.includes('skipped')).join(' | ')}`);
        text = await (await fetch(`${srv.url}/metrics`)).text();
        if (!/^apb_store_index_skipped_total 1$/m.test(text)) await new Promise((r) => setTimeout(r, 20));
      }
      const h = (await (await fetch(`${srv.url}/healthz`)).json()) as { ready: boolean };
      assert.equal(h.ready, true);
    } finally {
      await srv.close();
    }
  });

  it('the bound leaves room for the rest of the key', () => {
    assert.ok(MAX_INDEXED_NAME_BYTES + 40 < 1978);
  });
});

describe('data directory paths (issue 10 item 8)', () => {
  for (const name of ['site.v2', 'x.mdb', 'plain']) {
    it(`a directory named ${name} works and nothing is created beside it`, async () => {
      const parent = temp();
      const dir = join(parent, name);
      let store = await openStore(dir, { retention: { intervalMs: 0 } });
      await store.append([ev(1, 'gate-in', 'c1')], []);
      await store.close();
      assert.deepEqual(readdirSync(parent), [name]);
      assert.ok(statSync(dir).isDirectory());
      assert.deepEqual(readdirSync(dir).sort(), ['data.mdb', 'index', 'lock.mdb', 'snapshots', 'wal']);
      store = await openStore(dir, { retention: { intervalMs: 0 } });
      assert.equal(store.lastSeq, 1);
      await store.close();
      const ro = new LmdbStore(dir, { readOnly: true, retention: { intervalMs: 0 } });
      assert.deepEqual([...ro.since(0)].map((e) => e.cred), ['c1']);
      await ro.close();
    });
  }

  it('a data directory made by the previous code (D/data.mdb, D/lock.mdb) keeps opening', async () => {
    const dir = join(temp(), 'old');
    // what earlier versions did: lmdb-js defaults on an extension-less path
    const root = open({ path: dir, maxDbs: 16 });
    const log = root.openDB('log', { keyEncoding: 'ordered-binary', encoding: 'msgpack', sharedStructuresKey: Symbol.for('structures') } as never);
    await log.put(1, { s: 1, n: 1, a0: 5, a1: 5, e: [{ seq: 1, at: 5, kind: 'badge', cred: 'old' }] });
    await root.close();
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    assert.equal(store.lastSeq, 1);
    assert.deepEqual([...store.since(0)].map((e) => e.cred), ['old']);
    await store.close();
  });

  it('an empty path is refused', async () => {
    const cwd = readdirSync('.');
    await assert.rejects(openStore(''), (e: unknown) => e instanceof ApbError && e.code === 'usage' && /empty/.test(e.message));
    assert.throws(() => new LmdbStore('', { readOnly: true }), (e: unknown) => e instanceof ApbError && e.code === 'usage');
    assert.deepEqual(readdirSync('.'), cwd, 'nothing written into the current directory');
  });
});

describe('permissions of the data directory (issue 10 item 15)', () => {
  const mode = (p: string): number => statSync(p).mode & 0o777;

  it('a new data directory is 0700, its files and snapshots 0600', async () => {
    const dir = join(temp(), 'data');
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    await store.append([ev(1, 'gate-in', 'c1')], []);
    await store.saveSnapshot(1, Uint8Array.of(1, 2, 3));
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(join(dir, 'snapshots')), 0o700);
    assert.equal(mode(join(dir, 'data.mdb')), 0o600);
    assert.equal(mode(join(dir, 'lock.mdb')), 0o600);
    const snaps = readdirSync(join(dir, 'snapshots'));
    assert.equal(snaps.length, 1);
    assert.equal(mode(join(dir, 'snapshots', snaps[0]!)), 0o600);
    await store.close();
  });

  it('an existing directory with world-readable files is tightened when opened for writing', async () => {
    const dir = join(temp(), 'data');
    let store = await openStore(dir, { retention: { intervalMs: 0 } });
    await store.saveSnapshot(0, Uint8Array.of(1));
    await store.close();
    const snap = join(dir, 'snapshots', readdirSync(join(dir, 'snapshots'))[0]!);
    for (const f of ['data.mdb', 'lock.mdb']) chmodSync(join(dir, f), 0o644);
    chmodSync(join(dir, 'snapshots'), 0o755);
    chmodSync(snap, 0o644);
    store = await openStore(dir, { retention: { intervalMs: 0 } });
    assert.equal(mode(join(dir, 'data.mdb')), 0o600);
    assert.equal(mode(join(dir, 'lock.mdb')), 0o600);
    assert.equal(mode(join(dir, 'snapshots')), 0o700);
    assert.equal(mode(snap), 0o600);
    await store.close();
  });
});

describe('one writer per data directory, in one process (issue 10 item 3)', () => {
  it('a second writable open is refused with data_locked naming the pid; read-only works beside it; close releases', async () => {
    const dir = join(temp(), 'data');
    mkdirSync(dir);
    const a = await openStore(dir, { retention: { intervalMs: 0 } });
    await a.append([ev(1, 'gate-in', 'c1')], []);
    await assert.rejects(openStore(dir, { retention: { intervalMs: 0 } }),
      (e: unknown) => e instanceof ApbError && e.code === 'data_locked' && e.message.includes(`pid ${process.pid}`));
    const ro = await openStore(dir, { readOnly: true, retention: { intervalMs: 0 } });
    assert.deepEqual([...ro.since(0)].map((e) => e.cred), ['c1']);
    await ro.close();
    await a.close();
    const b = await openStore(dir, { retention: { intervalMs: 0 } });
    assert.equal(b.lastSeq, 1);
    await b.close();
    assert.ok(!existsSync(join(dir, 'apb.sock')) || process.platform !== 'linux', 'on Linux the lock is no file');
  });
});

describe('a data directory written before the token bounds keeps opening (issue 10, same class as item 1)', () => {
  // what earlier versions accepted and journaled: the demo site with its old, 13-15 character tokens
  const OLD = STADIUM.replace(/-token\b/g, '');

  it('journaled configuration records and snapshots with short tokens are replayed; the given configuration is put in force', async () => {
    assert.notEqual(OLD, STADIUM);
    const dir = temp();
    let store = await openStore(dir, { retention: { intervalMs: 0 } });
    await store.append([{ at: 1, kind: 'config', who: 'startup', op: { t: 'config', text: OLD } }], []);
    await store.saveConfig(OLD);
    await store.close();
    store = await openStore(dir, { retention: { intervalMs: 0 } });
    const d = await openDurableEngine({ store, configText: STADIUM, core: 'reference' });
    assert.equal(d.configChanged, true);
    assert.ok(d.site.config.controllers.every((c) => c.token.endsWith('-token')), 'the tokens of the given file are in force');
    // and from a snapshot taken under the old configuration
    await store.saveSnapshot(store.lastSeq, d.engine.snapshot(), OLD);
    await store.close();
    store = await openStore(dir, { retention: { intervalMs: 0 } });
    const e = await openDurableEngine({ store, configText: STADIUM, core: 'reference' });
    assert.equal(e.site.config.controllers[0]!.token, 'demo-gate-north-token');
    await store.close();
  });
});
