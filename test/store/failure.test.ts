/**
 * Storage failure (issue 4 item 2), with a real failing write: the child
 * store runs under RLIMIT_FSIZE (the data file cannot grow, writes fail with
 * EFBIG, as on a full disk). Appends then reject with storage_unavailable,
 * `healthy` turns false, nothing is half-written; once the limit is lifted
 * (prlimit on the running process) the background probe turns the store
 * healthy again and writes work, with no restart.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { ROOT } from './util.js';

const CHILD = join(ROOT, 'build', 'test', 'store', 'fail-child.js');
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('storage failure and automatic recovery', { skip: hasPrlimit ? false : 'prlimit (util-linux) not installed' }, () => {
  it('a failing disk gives storage_unavailable, unhealthy; it recovers by itself when writes work again', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'apb-fail-'));
    dirs.push(dir);
    // 4 MiB soft file size limit (ulimit -f counts 1 KiB blocks); exec keeps the pid for prlimit
    const child = spawn('bash', ['-c', `ulimit -S -f 4096; exec "${process.execPath}" "${CHILD}" "${dir}"`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const lifted = new Promise<void>((resolve) => {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        out += d;
        if (out.includes('FAILED') && !out.includes('LIFTED')) {
          out += 'LIFTED\n';
          const r = spawnSync('prlimit', ['--pid', String(child.pid), '--fsize=unlimited']);
          assert.equal(r.status, 0, r.stderr.toString());
          child.stdin.write('lifted\n');
          resolve();
        }
      });
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    clearTimeout(guard);
    await lifted;
    const acked = Number(/ACKED (\d+)/.exec(out)![1]);
    assert.ok(acked > 100, 'writes worked until the file hit the limit');
    assert.match(out, /FAILED true/, 'storage_unavailable, unhealthy, later appends refused, no reply kept for the failed batch');
    assert.match(out, /HEALTHY false,true/, 'the probe turned the store healthy again without a restart');
    const done = /DONE (\d+)/.exec(out);
    if (!done) {
      // lmdb-js 3.5 can abort in native code (glibc heap check) some time after a failed page write;
      // the process then dies like a crash: what was acknowledged must still be on disk (checked below)
      assert.ok(code !== 0 && /glibc|corrupt/.test(err), `child failed otherwise: ${out}${err.slice(-2000)}`);
      t.diagnostic('lmdb-js aborted in native code after the I/O failure (known issue); checking durability only');
    } else {
      assert.equal(code, 0, out + err.slice(-2000));
    }
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    try {
      const evs = [...store.since(0)];
      // every acknowledged append is there, in order; the failed one is not
      assert.deepEqual(evs.slice(0, acked).map((e) => e.cred), Array.from({ length: acked }, (_, i) => String(i)));
      assert.ok(evs.slice(acked).every((e) => e.cred === 'grow' || e.cred === 'after-recovery'), 'nothing of the failed batch');
      assert.equal(store.getIdem('c', acked), undefined, 'the failed batch left no reply');
      if (done) {
        assert.equal(evs.filter((e) => e.cred === 'grow').length, 1500, 'the file grew past the old limit after recovery');
        assert.equal(evs.at(-1)!.cred, 'after-recovery');
        assert.equal(evs.at(-1)!.seq, Number(done[1]));
        assert.deepEqual([...store.getIdem('c', 1_000_000)!], [2]);
      }
    } finally { await store.close(); }
  });
});
