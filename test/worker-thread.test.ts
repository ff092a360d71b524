/**
 * Worker threads must not disturb the main thread's MessagePack decoding (src/worker-thread.ts):
 * msgpackr's native string add-on rebuilds a process-wide table each time a thread loads it, and a
 * decode running elsewhere at that moment returns wrong keys and strings. This starts workers that
 * load msgpackr and lmdb, as apb's do, while the main thread decodes a journal-sized batch without
 * pause, and requires every decode to be exact. Without the worker's setting about one decode in
 * 25,000 came back wrong on the development machine; with the ~90 worker starts below, 2-3 (and
 * the check that no worker loaded the add-on fails every time).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr, isNativeAccelerationEnabled } from 'msgpackr';
import { startWorker } from '../src/worker-thread.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'package.json'));

test('workers started by startWorker leave the main thread\'s decoding exact', async () => {
  assert.ok(isNativeAccelerationEnabled, 'precondition: the main thread decodes with msgpackr\'s native add-on');
  const packr = new Packr({ useRecords: false });
  const batch = {
    s: 4711, n: 24, a0: 1.7e12, a1: 1.7e12 + 90,
    e: Array.from({ length: 24 }, (_, k) => ({ cred: `cred-${k}`, reader: `gate-${k % 5}-in`, at: 1.7e12 + k, decision: k % 3 ? 'grant' : 'deny', reason: 'passback' })),
    i: [['c0', 1, Buffer.from([0x81, 0xa1, 0x64])]], z: 'zone',
  };
  const bytes = packr.pack(batch);
  const want = JSON.stringify(packr.unpack(bytes));
  const code = `const m = require(${JSON.stringify(require.resolve('msgpackr'))}); require(${JSON.stringify(require.resolve('lmdb'))});
    require('node:worker_threads').parentPort.postMessage(m.isNativeAccelerationEnabled);`;
  const deadline = Date.now() + 3000;
  let started = 0, native = 0, wrong = 0, decodes = 0, running = 0;
  let sample = '';
  const spawn = (): void => {
    if (Date.now() > deadline) return;
    running++; started++;
    const w = startWorker(code, { eval: true });
    w.once('message', (on: boolean) => { if (on) native++; });
    w.once('exit', () => { running--; spawn(); });
  };
  spawn(); spawn();
  while (Date.now() < deadline || running > 0) {
    for (let k = 0; k < 500; k++) {
      decodes++;
      let got: string;
      try { got = JSON.stringify(packr.unpack(bytes)); } catch (e) { got = `throws ${(e as Error).message}`; }
      if (got !== want) { wrong++; sample ||= got.slice(0, 160); }
    }
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(started >= 20, `workers started: ${started}`);
  assert.equal(native, 0, 'no worker loaded the native add-on');
  assert.equal(wrong, 0, `${wrong} of ${decodes} decodes wrong while ${started} workers started, e.g. ${sample}`);
});

test('src starts worker threads only through startWorker', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('worker-thread.ts') && /new Worker\(/.test(readFileSync(p, 'utf8'))) offenders.push(p.slice(ROOT.length + 1));
    }
  };
  walk(join(ROOT, 'src'));
  assert.deepEqual(offenders, []);
});
