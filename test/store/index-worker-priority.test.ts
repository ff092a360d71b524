/**
 * Issue 12 latency: the index worker's work runs below the deciding main thread and off the libuv pool.
 *  - lowerThreadPriority() lowers the calling worker thread only (never the process / main thread);
 *  - DerivedIndex.attach(dir, true) (the worker's handle) commits each transaction on the calling thread:
 *    add() has committed when it returns, before its promise is awaited.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ChunkEntries, DerivedIndex } from '../../src/store/derived-index.js';
import { BACKGROUND_NICE, lowerThreadPriority } from '../../src/store/thread-priority.js';

const root = mkdtempSync(join(tmpdir(), 'apb-ixprio-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('index worker priority', () => {
  it('lowerThreadPriority lowers a worker thread to BACKGROUND_NICE (19) and never the main thread', { skip: process.platform !== 'linux' }, async () => {
    const before = getPriority();
    assert.equal(lowerThreadPriority(), false, 'the main thread is left alone');
    assert.equal(getPriority(), before);
    const url = new URL('../../src/store/thread-priority.js', import.meta.url).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { readlinkSync } = require('node:fs');
      const { getPriority } = require('node:os');
      import(${JSON.stringify(url)}).then((m) => {
        const changed = m.lowerThreadPriority();
        const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
        parentPort.postMessage({ changed, nice: getPriority(tid) });
      });`;
    const r = await new Promise<{ changed: boolean; nice: number }>((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.once('message', (m) => { resolve(m); void w.terminate(); });
      w.once('error', reject);
    });
    assert.equal(r.changed, true);
    assert.equal(BACKGROUND_NICE, 19);
    assert.equal(r.nice, BACKGROUND_NICE, `worker nice ${r.nice}`);
    assert.equal(getPriority(), before, 'the process (main thread) priority is unchanged');
  });

  it('the worker handle (attach(dir, true)) commits D/index transactions on the calling thread', async () => {
    const dir = join(root, 'index');
    const opened = DerivedIndex.open(dir, 'journal-1')!;
    const ix = DerivedIndex.attach(dir, true);
    try {
      const chunk = new ChunkEntries();
      chunk.addNames(1, 1000, ['c1'], ['r1'], [['ctl', 7]]);
      const p = ix.add(chunk, 1);
      // committed before the promise is awaited: visible to this thread and to another handle at once
      assert.equal(ix.indexedSeq, 1);
      assert.deepEqual([...ix.keysOf('cred', 'c1', 10)], [1]);
      await p;
      assert.equal(opened.ix.indexedSeq, 1);
      assert.deepEqual([...opened.ix.idemBatches('ctl', 7)], [1]);
      const q = ix.remove([{ key: 1, a0: 1000 }]);
      assert.deepEqual([...ix.keysOf('cred', 'c1', 10)], []);
      await q;
    } finally {
      await opened.ix.close().catch(() => undefined);
    }
  });
});
