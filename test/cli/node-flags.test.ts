/**
 * The server's V8 flag (src/cli/node-flags.ts) reaches node every way the
 * server is started: the `apb` command's first line (run as an executable,
 * as npm links it), `npm start`, and the benchmarks' server processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { startServerChild } from '../../bench/proc.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');

test('main.ts, its build and npm start carry NODE_FLAGS', () => {
  assert.ok(NODE_FLAGS.length > 0);
  const shebang = `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`;
  assert.equal(readFileSync(join(ROOT, 'src', 'cli', 'main.ts'), 'utf8').split('\n')[0], shebang);
  assert.equal(readFileSync(MAIN, 'utf8').split('\n')[0], shebang);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.start!.startsWith(`node ${NODE_FLAGS.join(' ')} build/src/cli/main.js serve `), pkg.scripts.start);
});

test('the benchmarks start the server with NODE_FLAGS', { skip: existsSync('/proc/self/cmdline') ? false : 'needs /proc (Linux) to read the command line' }, async () => {
  const child = await startServerChild(readFileSync(join(ROOT, 'src', 'demo', 'stadium.yaml'), 'utf8'), ':memory:');
  try {
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    for (const f of NODE_FLAGS) assert.ok(argv.includes(f), `${f} in ${JSON.stringify(argv)}`);
  } finally { await child.stop(); }
});

test('apb run as an executable gets the flags on node\'s command line', { skip: existsSync('/proc/self/cmdline') ? false : 'needs /proc (Linux) to read the command line' }, async () => {
  // the executable itself (the shebang line), not `node main.js`: what `npx apb serve` runs
  const child = spawn(MAIN, ['serve', '--config', join(ROOT, 'src', 'demo', 'stadium.yaml'), '--data', ':memory:', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '', err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "apb serving" within 30 s: ${out}${err}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('apb serving http://127.0.0.1:')) { clearTimeout(t); resolve(); } });
      child.once('exit', (code) => { clearTimeout(t); reject(new Error(`exited ${code}: ${out}${err}`)); });
    });
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    for (const f of NODE_FLAGS) assert.ok(argv.includes(f), `${f} in ${JSON.stringify(argv)}`);
    assert.match(argv[0]!, /node/);
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) child.kill('SIGTERM');
    await gone;
  }
});
