/**
 * Issue 10 items 15, 17 and 22 at the command line: usage errors are one
 * line `apb <command>: <message>` with exit 2 (no stack trace, no wire
 * code), every command takes --help, `apb --version`, an aligned
 * `apb --help` listing every flag; `apb validate` names a short token by
 * its path; no config error or refused SIGHUP reload prints a token value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/usage.js';
import { CLI, DEMO, ROOT } from './util.js';

const apb = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });

const SECRET = 'Sup3r-secret-value';
const site = (token: string) => `site: s\ntimezone: UTC\nareas: [{id: a}]\nreaders: [{id: r, from: outside, to: a, controller: c}]\ncontrollers: [{id: c, token: "${token}"}]\n`;

test('apb serve --log-level loud: one usage line, exit 2, no stack trace (also from APB_LOG_LEVEL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-cli-'));
  try {
    const r = apb(['serve', '--config', join(DEMO, 'stadium.yaml'), '--data', join(dir, 'd'), '--port', '0', '--log-level', 'loud']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'apb serve: --log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n');
    const e = apb(['serve', '--config', join(DEMO, 'stadium.yaml'), '--data', join(dir, 'd'), '--port', '0'], { APB_LOG_LEVEL: 'loud' });
    assert.equal(e.status, 2);
    assert.equal(e.stderr, 'apb serve: APB_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors: `apb <command>: <message>`, exit 2, no wire-code prefix', () => {
  const cases: [string[], string][] = [
    [['replay'], 'apb replay: --config is required\n'],
    [['replay', '--config', 'x.yaml'], 'apb replay: --events is required\n'],
    [['schema', '--bogus'], 'apb schema: unknown option --bogus (options: --help)\n'],
    [['validate', 'site.yaml'], 'apb validate: unexpected argument "site.yaml" (options: --help, --config)\n'],
    [['serve', '--config', '--data', 'd'], 'apb serve: --config needs a value\n'],
    [['serve', '--config', 'f', '--data', 'd', '--port', '99999'], 'apb serve: --port must be an integer 0-65535, got "99999"\n'],
    [['events', '--data', 'd', '--since', 'soon'], 'apb events: --since must be milliseconds since the epoch or an ISO 8601 date, got "soon"\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = apb(args);
    assert.equal(r.stderr, stderr, args.join(' '));
    assert.equal(r.status, 2, args.join(' '));
  }
  const u = apb(['frobnicate']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /^apb: unknown command "frobnicate"/);
});

test('every command accepts --help (its usage, exit 0); apb --version prints package.json\'s version', () => {
  for (const name of Object.keys(COMMANDS)) {
    const r = apb([name, '--help']);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: apb ${name}\\b`), name);
    for (const f of COMMANDS[name]!.flags) assert.ok(r.stdout.includes(`--${f.name}`), `${name} --help lists --${f.name}`);
  }
  const v = apb(['--version']);
  assert.equal(v.status, 0);
  assert.equal(v.stdout, `apb ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
});

test('apb --help lists every flag of every command (events --until included) in aligned columns', () => {
  const r = apb(['--help']);
  assert.equal(r.status, 0);
  for (const [name, c] of Object.entries(COMMANDS)) {
    assert.match(r.stdout, new RegExp(`^  apb ${name}\\b`, 'm'));
    for (const f of c.flags) assert.match(r.stdout, new RegExp(`^ +--${f.name}\\b`, 'm'), `--${f.name} of ${name}`);
  }
  assert.match(r.stdout, /^ +--until T +last instant/m);
  // every description starts in the same column
  const cols = r.stdout.split('\n').filter((l) => /^ +(--|apb --|apb <)/.test(l)).map((l) => /^( +\S+(?: \S+)?(?: \S+)? {2,})/.exec(l)![1]!.length);
  assert.ok(cols.length > 20);
  assert.equal(new Set(cols).size, 1, `description columns: ${[...new Set(cols)].join(', ')}`);
});

test('apb validate: a token shorter than 16 characters is reported with its path, never quoted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-cli-'));
  try {
    const f = join(dir, 's.yaml');
    writeFileSync(f, site('short-tok'));
    const r = apb(['validate', '--config', f]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, 'controllers[0].token: must be at least 16 characters long (use a long random secret)\n');
    writeFileSync(f, site(SECRET + ' with a space'));
    const w = apb(['validate', '--config', f]);
    assert.equal(w.status, 1);
    assert.equal(w.stdout, 'controllers[0].token: must be a token without whitespace\n');
    // apb serve on it: refused, and the secret is not printed either
    const s = apb(['serve', '--config', f, '--data', join(dir, 'd'), '--port', '0', '--log-level', 'silent']);
    assert.equal(s.status, 1);
    assert.match(s.stderr, /^apb serve: invalid_config: controllers\[0\]\.token: must be a token without whitespace\n$/);
    for (const out of [r.stdout + r.stderr, w.stdout + w.stderr, s.stdout + s.stderr]) assert.ok(!out.includes('Sup3r') && !out.includes('short-tok'), out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a SIGHUP reload refused for a bad token logs the error without the token value', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-cli-'));
  const f = join(dir, 's.yaml');
  writeFileSync(f, site(SECRET));
  const child = spawn(process.execPath, [CLI, 'serve', '--config', f, '--data', join(dir, 'd'), '--port', '0', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (b) => { stdout += b; });
  child.stderr.on('data', (b) => { stderr += b; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitFor = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(cond(), `${what}\nstdout: ${stdout}\nstderr: ${stderr}`);
  };
  try {
    await waitFor(() => /apb serving/.test(stdout), 'server start');
    writeFileSync(f, site(SECRET + ' x'));
    child.kill('SIGHUP');
    await waitFor(() => /reload refused/.test(stderr), 'the refused reload');
    assert.match(stderr, /controllers\[0\]\.token: must be a token without whitespace/);
    assert.ok(!stderr.includes('Sup3r'), stderr);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('apb serve with a site file that cannot be read: one precise line, exit 1, nothing created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-cli-'));
  try {
    const missing = join(dir, 'missing.yaml');
    const r = apb(['serve', '--config', missing, '--data', join(dir, 'd'), '--port', '0', '--log-level', 'silent']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `apb serve: invalid_config: cannot read site file "${missing}": no such file\n`);
    assert.ok(!existsSync(join(dir, 'd')), 'no data directory was created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
