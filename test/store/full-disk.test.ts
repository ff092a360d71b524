/**
 * Issue 10 item 21 with a really full disk (a small tmpfs; needs root and
 * mount, skipped otherwise): a real `apb serve` whose data directory fills up
 *  - stays not ready while the disk is full (each flip to ready would rebuild
 *    the engine from the whole journal, and the next commit fails again),
 *  - turns ready by itself once there is room again, and decides;
 *  - keeps its stderr a JSON-lines log: lmdb-js' console errors are logged as
 *    JSON; LMDB's own C line ("Write error: ...") cannot be intercepted and
 *    stays alone on its line, never glued to a JSON line.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './util.js';

const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const CONFIG = join(ROOT, 'src', 'demo', 'stadium.yaml');
const TOKEN = 'demo-turnstiles-token';

function tryMount(): { dir: string } | string {
  if (process.platform !== 'linux') return 'needs Linux tmpfs';
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  const dir = mkdtempSync(join(tmpdir(), 'apb-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', dir]);
  if (r.status !== 0) { rmSync(dir, { recursive: true, force: true }); return `cannot mount a tmpfs: ${r.stderr?.toString().trim() || r.error?.message}`; }
  return { dir };
}
const mounted = tryMount();
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (typeof mounted !== 'string') { spawnSync('umount', ['-l', mounted.dir]); rmSync(mounted.dir, { recursive: true, force: true }); }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

/** Writes a file until the file system is full; returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try { for (;;) writeSync(fd, chunk); } catch (e) { assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC'); } finally { closeSync(fd); }
  return path;
}

describe('a full disk (issue 10 item 21)', { skip: typeof mounted === 'string' ? mounted : false }, () => {
  it('the server stays not ready while the disk is full, recovers once there is room, and its log stays JSON', async () => {
    const base = (mounted as { dir: string }).dir;
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, 'serve', '--config', CONFIG, '--data', join(base, 'data'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const url = `http://127.0.0.1:${port}`;
    const health = async (): Promise<boolean> => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited: ${err.slice(-3000)}`);
      try { return ((await (await fetch(`${url}/healthz`)).json()) as { ready: boolean }).ready; } catch { return false; }
    };
    const waitReady = async (): Promise<void> => {
      for (const deadline = Date.now() + 30_000; !(await health());) {
        if (Date.now() > deadline) throw new Error(`not ready: ${err.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let id = 0;
    const decide = async (): Promise<number> => {
      id++;
      const r = await fetch(`${url}/v1/decide`, {
        method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ t: 'badge', id, cred: 10_000 + id, reader: 'turnstile-1-in' }),
      });
      await r.arrayBuffer();
      return r.status;
    };

    await waitReady();
    assert.equal(await decide(), 200);
    const filler = fill(base);
    let status = 200;
    for (let k = 0; k < 20_000 && status === 200; k++) status = await decide();
    assert.equal(status, 503, 'a commit failed on the full disk');

    // nearly full (a little room for a small write, far less than a working store needs): the hub keeps
    // probing (each attempt is one "recovery attempt failed" line) and the server stays not ready
    truncateSync(filler, statSync(filler).size - 256 * 1024);
    const attempts = (): number => err.split('\n').filter((l) => l.includes('recovery attempt failed')).length;
    while (attempts() < 3) {
      assert.equal(await health(), false, 'turned ready while the disk is still full');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await health(), false);
    assert.doesNotMatch(err, /storage available again/);

    // room again: ready by itself, and deciding
    rmSync(filler);
    await waitReady();
    assert.equal(await decide(), 200);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err.slice(-3000));

    // every stderr line is JSON, except the lines LMDB's C code prints itself, each alone on its line
    const bad = err.split('\n').filter((l) => l.trim() !== '').filter((l) => {
      if (/^(Write error: [^{}]*|mdb_[a-z_]+ (flushing )?error -?\d+)$/.test(l)) return false;
      try { JSON.parse(l); return false; } catch { return true; }
    });
    assert.deepEqual(bad, [], 'non-JSON lines in the log');
    // LMDB reports the full disk as ENOSPC on a page write, or as EIO when it is setting up its reader
    // locks at that moment: either way it is one JSON line
    assert.match(err, /"msg":"lmdb: [^"]*(No space left on device|Input\/output error)/, 'the failed commit is logged as JSON');
  });
});
