/**
 * The write-ahead log in front of the journal (src/store/wal.ts): what only the log holds is put
 * into the journal on open (and seen by read-only opens before that), a torn record ends the log,
 * a log of another journal is discarded, and segments are reused instead of growing the directory.
 *
 * "Only the log holds it" is made exactly: the data directory is copied before some appends, and
 * the log written by those appends is copied into the copy (LMDB there never saw them).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { HEADER_BYTES, readWal, Wal } from '../../src/store/wal.js';
import type { EventRecord } from '../../src/store/types.js';
import { ApbError } from '../../src/errors.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const temp = (): string => { const d = mkdtempSync(join(tmpdir(), 'apb-wal-')); dirs.push(d); return d; };
const OPTS = { retention: { intervalMs: 0 } };
const ev = (i: number, pad = ''): EventRecord => ({ at: 1_000 + i, kind: 'badge', controller: 'c', id: i, cred: String(i), reader: 'r', grant: true, reason: 'ok', violations: [], ...(pad ? { why: pad } : {}) });
const reply = (i: number) => ({ controller: 'c', id: i, reply: Uint8Array.of(0x90 + (i % 16)) });

/** D with events 1..5 in LMDB, and a copy D0 of it; then events 6..10 appended to D (one batch each) */
async function twoDirs(): Promise<{ d: string; d0: string }> {
  const base = temp();
  const d = join(base, 'd'), d0 = join(base, 'd0');
  let s = new LmdbStore(d, OPTS);
  for (let i = 1; i <= 5; i++) await s.append([ev(i)], [reply(i)]);
  await s.close();
  cpSync(d, d0, { recursive: true });
  s = new LmdbStore(d, OPTS);
  for (let i = 6; i <= 10; i++) await s.append([ev(i)], [reply(i)]);
  await s.close();
  return { d, d0 };
}

/**
 * Appends batches 6 and 7 to a store holding 1-5: both are acknowledged from the log, but the LMDB put of 6
 * fails as one on a full disk does while 7's, in the same gathering, commits (a hole). Returns what puts
 * the real LMDB put back.
 */
async function holeAtSix(s: LmdbStore): Promise<() => void> {
  const log = (s as unknown as { log: { put(k: number, v: unknown): Promise<boolean> } }).log;
  const put = log.put.bind(log);
  log.put = (k, v) => (k === 6 ? Promise.reject(new Error('MDB_MAP_FULL: simulated')) : put(k, v));
  const six = s.append([ev(6)], [reply(6)]);
  await new Promise((r) => setImmediate(r));
  await Promise.all([six, s.append([ev(7)], [reply(7)])]);
  await s.whenCommitted();
  return () => { log.put = put; };
}

describe('write-ahead log', () => {
  it('batches only the log holds are put into the journal on open, with their replies; a read-only open sees them first', async () => {
    const { d, d0 } = await twoDirs();
    rmSync(join(d0, 'wal'), { recursive: true, force: true });
    cpSync(join(d, 'wal'), join(d0, 'wal'), { recursive: true });
    const ro = new LmdbStore(d0, { ...OPTS, readOnly: true });
    assert.deepEqual([...ro.since(0)].map((e) => e.cred), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'], 'read-only: LMDB plus the log');
    assert.equal(ro.lastSeq, 10);
    await ro.close();
    const s = new LmdbStore(d0, OPTS);
    try {
      assert.equal(s.lastSeq, 10);
      assert.deepEqual([...s.since(0)].map((e) => e.cred), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
      assert.deepEqual([...s.getIdem('c', 8)!], [0x98]);
      assert.equal(s.maxId('c'), 10);
      await s.append([ev(11)], [reply(11)]);
      assert.equal(s.lastSeq, 11);
    } finally { await s.close(); }
    // and the journal itself now holds them: a copy without the log still has all eleven
    const d1 = join(temp(), 'd1');
    cpSync(d0, d1, { recursive: true });
    rmSync(join(d1, 'wal'), { recursive: true, force: true });
    const t = new LmdbStore(d1, OPTS);
    try { assert.equal([...t.since(0)].length, 11); } finally { await t.close(); }
  });

  it('a torn last record (bad CRC) ends the log: the batches before it are recovered, not it', async () => {
    const { d, d0 } = await twoDirs();
    rmSync(join(d0, 'wal'), { recursive: true, force: true });
    cpSync(join(d, 'wal'), join(d0, 'wal'), { recursive: true });
    // the record of seq 10: flip one byte of its payload in whichever segment holds it
    let torn = false;
    for (const f of readdirSync(join(d0, 'wal')).filter((n) => n.endsWith('.wal'))) {
      const path = join(d0, 'wal', f);
      const buf = readFileSync(path);
      for (let off = 0; off + HEADER_BYTES <= buf.length;) {
        if (buf.readUInt32LE(off) !== 0x4c415741) break;
        const len = buf.readUInt32LE(off + 4);
        if (buf.readDoubleLE(off + 16) === 10) { buf[off + HEADER_BYTES + (len >> 1)]! ^= 0xff; writeFileSync(path, buf); torn = true; break; }
        off += (HEADER_BYTES + len + 7) & ~7;
      }
    }
    assert.ok(torn, 'the record of seq 10 was found');
    const s = new LmdbStore(d0, OPTS);
    try {
      assert.deepEqual([...s.since(0)].map((e) => e.cred), ['1', '2', '3', '4', '5', '6', '7', '8', '9']);
      assert.equal(s.getIdem('c', 10), undefined);
    } finally { await s.close(); }
  });

  it('a log of another journal (a data.mdb swapped under it) is discarded, not applied', async () => {
    const { d } = await twoDirs();
    const other = join(temp(), 'other');
    const s0 = new LmdbStore(other, OPTS);
    await s0.append([ev(100)], []);
    await s0.close();
    rmSync(join(other, 'wal'), { recursive: true, force: true });
    cpSync(join(d, 'wal'), join(other, 'wal'), { recursive: true });
    const s = new LmdbStore(other, OPTS);
    try {
      assert.deepEqual([...s.since(0)].map((e) => e.cred), ['100']);
      assert.equal(s.lastSeq, 1);
      // the discarded log's records are gone: what is left is this journal's own
      assert.ok(readWal(join(other, 'wal')).records.every((r) => r.s > 1), 'no record of the other journal remains');
    } finally { await s.close(); }
  });

  it('a batch whose LMDB put failed while a later one committed is put back from the log on the next open (a crash before the retry)', async () => {
    const base = temp();
    const d = join(base, 'd'), image = join(base, 'image');
    const s = new LmdbStore(d, OPTS);
    try {
      for (let i = 1; i <= 5; i++) await s.append([ev(i)], [reply(i)]);
      await s.whenCommitted();
      const restorePut = await holeAtSix(s);
      assert.equal(s.healthy, false, 'the failed put made the store unhealthy');
      // a crash now (before the probe puts 6 again): the directory as it is on disk
      cpSync(d, image, { recursive: true });
      const lmdb = open({ path: image, readOnly: true, maxDbs: 16 } as never) as unknown as { openDB(n: string, o: object): { doesExist(k: number): boolean }; close(): Promise<void> };
      const journal = lmdb.openDB('log', { keyEncoding: 'ordered-binary', encoding: 'msgpack' });
      assert.deepEqual([5, 6, 7].map((k) => journal.doesExist(k)), [true, false, true], 'the image has the hole: 7 without 6');
      await lmdb.close();
      // no crash: the index does not pass the hole while it lasts, and the probe fills it (the disk works again)
      const indexer = (s as unknown as { indexer: { indexedSeq: number } }).indexer;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(indexer.indexedSeq <= 5, `indexed up to ${indexer.indexedSeq} while 6 is missing`);
      restorePut();
      for (const until = Date.now() + 10_000; !s.healthy && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
      assert.equal(s.healthy, true, 'the probe put 6 back and the store is healthy');
      await s.settle();
      assert.equal(indexer.indexedSeq, 7);
      for (const c of ['5', '6', '7']) assert.deepEqual(s.query({ cred: c, limit: 10 }).map((e) => e.seq), [Number(c)], `credential ${c} found through D/index`);
    } finally { await s.close(); }
    const again = new LmdbStore(image, OPTS);
    try {
      assert.deepEqual([...again.since(0)].map((e) => e.cred), ['1', '2', '3', '4', '5', '6', '7'], 'every acknowledged batch, in order');
      assert.deepEqual([...again.getIdem('c', 6)!], [...reply(6).reply]);
      assert.equal(again.lastSeq, 7);
      await again.settle();
      for (const c of ['5', '6', '7']) assert.deepEqual(again.query({ cred: c, limit: 10 }).map((e) => e.seq), [Number(c)], `credential ${c} found after the repair`);
    } finally { await again.close(); }
  });

  it("a batch refused because its sync failed (durability 'flush') is marked void: not taken for a hole after later batches were acknowledged", async () => {
    const base = temp();
    const d = join(base, 'd'), image = join(base, 'image');
    const s = new LmdbStore(d, { ...OPTS, durability: 'flush', probeIntervalMs: 50 });
    const real = fs.fdatasync;
    try {
      for (let i = 1; i <= 3; i++) await s.append([ev(i)], [reply(i)]);
      // the next fdatasync fails (an I/O error): the batch written before it is refused
      let failed = false;
      (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
        if (failed) return real(fd, cb);
        failed = true;
        setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
      }) as typeof fs.fdatasync;
      syncBuiltinESMExports();
      await assert.rejects(s.append([ev(4)], [reply(4)]), (e: unknown) => e instanceof ApbError && e.code === 'storage_unavailable');
      (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = real;
      syncBuiltinESMExports();
      for (const until = Date.now() + 10_000; !s.healthy && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
      assert.equal(s.healthy, true, 'recovered');
      await s.append([ev(5)], [reply(5)]);
      await s.whenCommitted();
      assert.ok(readWal(join(d, 'wal')).records.some((r) => r.payload.length === 0 && r.s <= 4 && r.e >= 4), 'the log holds a void mark for seq 4');
      assert.ok(readWal(join(d, 'wal')).records.some((r) => r.s === 4 && r.payload.length > 0), "and still the refused batch's bytes");
      cpSync(d, image, { recursive: true });
      assert.deepEqual([...s.since(0)].map((e) => e.cred), ['1', '2', '3', '5']);
    } finally {
      (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = real;
      syncBuiltinESMExports();
      await s.close();
    }
    const again = new LmdbStore(image, OPTS);
    try {
      assert.deepEqual([...again.since(0)].map((e) => e.cred), ['1', '2', '3', '5'], 'the refused batch stays out; the acknowledged one is there');
      assert.equal(again.getIdem('c', 4), undefined);
      // and its bytes are erased: a later reuse of the mark's segment cannot bring it back
      assert.ok(!readWal(join(image, 'wal')).records.some((r) => r.s === 4 && r.payload.length > 0), 'the refused record is erased');
    } finally { await again.close(); }
    const third = new LmdbStore(image, OPTS);
    try { assert.deepEqual([...third.since(0)].map((e) => e.cred), ['1', '2', '3', '5']); } finally { await third.close(); }
  });

  it('an index that had passed a hole (as before the indexer was held below holes) is rebuilt when the hole is put back at open', async () => {
    const base = temp();
    const d = join(base, 'd'), image = join(base, 'image');
    const s = new LmdbStore(d, OPTS);
    try {
      for (let i = 1; i <= 5; i++) await s.append([ev(i)], [reply(i)]);
      await s.settle();
      const inner = s as unknown as { indexLimit(): number; committedSeq: number; indexer: { indexedSeq: number } };
      inner.indexLimit = () => inner.committedSeq; // the previous behaviour: the indexer follows the committed end
      await holeAtSix(s);
      for (const until = Date.now() + 10_000; inner.indexer.indexedSeq < 7 && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
      assert.equal(inner.indexer.indexedSeq, 7, 'the index passed the hole');
      cpSync(d, image, { recursive: true });
    } finally { await s.close(); }
    const again = new LmdbStore(image, OPTS);
    try {
      await again.settle();
      for (const c of ['5', '6', '7']) assert.deepEqual(again.query({ cred: c, limit: 10 }).map((e) => e.seq), [Number(c)], `credential ${c} found through the rebuilt index`);
    } finally { await again.close(); }
  });

  it('batches retention deleted are not taken for holes: the log still holds their records, the journal stays trimmed', async () => {
    const dir = join(temp(), 'd');
    let now = 1_000;
    const s = new LmdbStore(dir, { now: () => now, retention: { intervalMs: 0, maxAgeMs: 60_000 } });
    try {
      for (let i = 1; i <= 30; i++) { await s.append([ev(i)], [reply(i)]); }
      await s.settle();
      now = 10_000_000;
      await s.saveSnapshot(20, Uint8Array.from([1]), 'cfg');
      await s.saveSnapshot(25, Uint8Array.from([2]), 'cfg');
      assert.equal(await s.compact(), 20);
    } finally { await s.close(); }
    assert.ok(readWal(join(dir, 'wal')).records.some((r) => r.s <= 20), 'the log still holds records of deleted batches');
    const again = new LmdbStore(dir, OPTS);
    try {
      const left = [...again.since(0)];
      assert.equal(left[0]!.seq, 21, 'nothing deleted came back');
      assert.equal(left.length, 10);
    } finally { await again.close(); }
  });

  it('segments are reused once LMDB has flushed them: the log does not grow with the journal', async () => {
    const dir = join(temp(), 'd');
    const seg = 64 * 1024;
    const s = new LmdbStore(dir, { ...OPTS, walSegmentBytes: seg });
    const pad = 'x'.repeat(1000);
    try {
      // ~2 MB of batches through 64 KiB segments (about 32 segments' worth)
      for (let i = 1; i <= 2000; i++) {
        await s.append([ev(i, pad)], []);
        if (i % 50 === 0) await s.whenCommitted();
      }
      await s.whenCommitted();
      const files = readdirSync(join(dir, 'wal')).filter((n) => n.endsWith('.wal'));
      assert.ok(files.length <= 12, `segments are reused (${files.length} files of ${seg} bytes for ~2 MB)`);
      assert.equal([...s.since(0)].length, 2000);
    } finally { await s.close(); }
    const again = new LmdbStore(dir, { ...OPTS, walSegmentBytes: seg });
    try {
      const all = [...again.since(0)];
      assert.equal(all.length, 2000);
      assert.deepEqual(all.map((e) => e.seq), Array.from({ length: 2000 }, (_, k) => k + 1));
    } finally { await again.close(); }
  });

  it("under durability 'flush' an append resolves only after an fdatasync covering it", async () => {
    const dir = join(temp(), 'd');
    const s = new LmdbStore(dir, { ...OPTS, durability: 'flush' });
    try {
      for (let i = 1; i <= 20; i++) {
        const before = s.syncs;
        await s.append([ev(i)], []);
        assert.ok(s.syncs > before, `append ${i} resolved after a sync (${before} → ${s.syncs})`);
      }
    } finally { await s.close(); }
  });

  it("under durability 'commit' background syncs are paced (one per syncGapMs at most), and the last write is still synced without another write", async () => {
    const writeTurns = async (w: Wal<number>, ms: number): Promise<number> => {
      const payload = Buffer.alloc(100, 1);
      const t0 = performance.now();
      let k = 0;
      while (performance.now() - t0 < ms) { w.append(k + 1, k + 1, payload, k++); w.flush(); await new Promise((r) => setImmediate(r)); }
      return k;
    };
    const paced = new Wal<number>(join(temp(), 'wal'), { flush: false, syncGapMs: 50, onDurable: () => {}, onFailed: (_t, e) => { throw e; }, onSyncError: (e) => { throw e; } }, 0, 0);
    const eager = new Wal<number>(join(temp(), 'wal'), { flush: false, syncGapMs: 0, onDurable: () => {}, onFailed: (_t, e) => { throw e; }, onSyncError: (e) => { throw e; } }, 0, 0);
    try {
      const n = await writeTurns(paced, 300);
      assert.ok(n > 100, `${n} writes`);
      // 300 ms at one sync per 50 ms: 7 at most (the first starts at once)
      assert.ok(paced.syncs >= 2 && paced.syncs <= 7, `paced: ${paced.syncs} syncs for ${n} writes`);
      // no further write: the timer set by the last one syncs it
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(paced.allSynced, 'the last write was synced without another write coming');
      const m = await writeTurns(eager, 300);
      assert.ok(eager.syncs > 20, `unpaced (syncGapMs 0): ${eager.syncs} syncs for ${m} writes`);
    } finally { await paced.close(); await eager.close(); }
  });

  it('the next segment is created ahead, off the event loop, once the current one is half full; a roll then takes it', async () => {
    const dir = join(temp(), 'wal');
    const seg = 64 * 1024;
    const durable: number[] = [];
    const w = new Wal<number>(dir, { flush: false, segmentBytes: seg, onDurable: (t) => durable.push(t), onFailed: (_t, e) => { throw e; }, onSyncError: (e) => { throw e; } }, 0, 0);
    const files = () => readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
    try {
      assert.deepEqual(files(), ['seg-0.wal']);
      const payload = Buffer.alloc(1000, 7);
      let k = 0;
      // just under half a segment: nothing is prepared yet
      while ((k + 1) * (HEADER_BYTES + 1000) < seg / 2 - 1024) w.append(k + 1, k + 1, payload, k++);
      w.flush();
      await w.prepared();
      assert.deepEqual(files(), ['seg-0.wal'], 'no spare before the segment is half full');
      // past half: the flush starts the spare's creation in the thread pool
      for (let i = 0; i < 4; i++) w.append(k + 1, k + 1, payload, k++);
      w.flush();
      await w.prepared();
      assert.deepEqual(files(), ['seg-0.wal', 'seg-1.wal'], 'a spare exists before the roll');
      // fill past the end: the roll takes the spare; no third file is created synchronously
      while (k * (HEADER_BYTES + 1000) < seg + 4096) { w.append(k + 1, k + 1, payload, k++); if (k % 8 === 0) w.flush(); }
      w.flush();
      assert.deepEqual(files(), ['seg-0.wal', 'seg-1.wal'], 'the roll took the prepared spare');
      await w.idle();
      const recs = readWal(dir).records;
      assert.deepEqual(recs.map((r) => r.s), Array.from({ length: k }, (_, i) => i + 1), 'every record readable, in order, across the prepared segment');
      assert.equal(durable.length, k);
    } finally { await w.close(); }
  });

  it('the journal holds exactly the bytes the log wrote for each batch (stored as they are, not encoded again), and they read back as the batch', async () => {
    const dir = join(temp(), 'd');
    const s = new LmdbStore(dir, OPTS);
    try {
      for (let i = 1; i <= 20; i++) await s.append([ev(i)], [reply(i)]);
      await s.whenCommitted();
    } finally { await s.close(); }
    const recs = readWal(join(dir, 'wal')).records;
    assert.equal(recs.length, 20);
    const root = open({ path: dir, readOnly: true });
    try {
      const raw = root.openDB<Buffer, number>('log', { keyEncoding: 'ordered-binary', encoding: 'binary' });
      for (const r of recs) assert.deepEqual(raw.get(r.s), r.payload, `journal value of batch ${r.s}`);
    } finally { await root.close(); }
    const again = new LmdbStore(dir, { ...OPTS, readOnly: true });
    try {
      assert.deepEqual([...again.since(0)].map((e) => [e.seq, e.cred, e.id]), Array.from({ length: 20 }, (_, k) => [k + 1, String(k + 1), k + 1]));
      assert.deepEqual([...again.getIdem('c', 7)!], [0x97]);
    } finally { await again.close(); }
  });
});
