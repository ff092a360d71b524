/**
 * `apb serve` prints "apb serving" only once its signal handlers are in place: a supervisor that
 * sends SIGTERM the moment the line appears gets a clean shutdown (exit 0, "signal received" in
 * the log), never Node's default exit by signal.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const CONFIG = join(ROOT, 'src', 'demo', 'stadium.yaml');
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('apb serve and an immediate SIGTERM', () => {
  it('a SIGTERM sent as soon as "apb serving" is printed shuts down cleanly, every time', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = mkdtempSync(join(tmpdir(), 'apb-sig-'));
      dirs.push(dir);
      const child = spawn(process.execPath, [MAIN, 'serve', '--config', CONFIG, '--data', join(dir, 'data'), '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/apb serving/.test(out) && child.signalCode === null && !child.killed) child.kill('SIGTERM');
      });
      const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const [code, signal] = await new Promise<[number | null, string | null]>((res) => child.on('exit', (c, s) => res([c, s])));
      clearTimeout(guard);
      assert.match(out, /apb serving/);
      assert.equal(signal, null, `round ${round}: killed by ${signal}, not shut down: ${err.slice(-500)}`);
      assert.equal(code, 0, err.slice(-1000));
      assert.match(err, /"signal":"SIGTERM".*signal received/);
    }
  });
});
