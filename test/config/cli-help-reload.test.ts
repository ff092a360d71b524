/**
 * `apb --help` against what the parsers really accept, and the reload log:
 *  - for every command, the options its parser accepts (as it lists them when
 *    refusing an unknown one) are exactly the options `apb --help` and
 *    `apb <command> --help` print for it, in aligned columns;
 *  - one SIGHUP reload (and one PUT /v1/config) logs exactly one line with
 *    the reload report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/usage.js';
import { CLI } from './util.js';

const apb = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });

/** the section of `apb --help` that belongs to `name`: its synopsis line and the option lines under it */
function section(help: string, name: string): string[] {
  const lines = help.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`  apb ${name}`));
  assert.ok(at >= 0, `apb --help has a section for ${name}`);
  const out = [lines[at]!];
  for (let i = at + 1; i < lines.length && /^ {6}--/.test(lines[i]!); i++) out.push(lines[i]!);
  return out;
}

const flagsIn = (lines: string[]): string[] => lines.flatMap((l) => [...l.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((m) => m[1]!));

test('every option a parser accepts is in apb --help and apb <command> --help, and nothing else', () => {
  const help = apb(['--help']);
  assert.equal(help.status, 0);
  const names = Object.keys(COMMANDS);
  assert.ok(names.length >= 6);
  for (const name of names) {
    // the parser names what it accepts when it refuses an unknown option
    const r = apb([name, '--no-such-option-xyz']);
    assert.equal(r.status, 2, `${name}: ${r.stderr}`);
    const m = /^apb [a-z]+: unknown option --no-such-option-xyz \(options: (.*)\)\n$/.exec(r.stderr);
    assert.ok(m, `${name}: ${r.stderr}`);
    const accepted = m[1]!.split(', ').filter((f) => f !== '--help').sort();
    const listed = [...new Set(flagsIn(section(help.stdout, name).slice(1)))].sort();
    assert.deepEqual(listed, accepted, `apb --help lists exactly the options apb ${name} accepts`);
    const own = apb([name, '--help']);
    assert.deepEqual([...new Set(flagsIn(own.stdout.split('\n').filter((l) => /^ {2}--/.test(l))))].sort(), [...accepted, '--help'].sort(), `apb ${name} --help`);
  }
  assert.match(section(help.stdout, 'events').join('\n'), /--until T +last instant/);
  // aligned: every description of every option line starts in the same column
  const starts = help.stdout.split('\n').filter((l) => /^ {6}--/.test(l)).map((l) => /^ {6}--\S+(?: \S+)? +/.exec(l)![0].length);
  assert.equal(new Set(starts).size, 1, `description columns ${[...new Set(starts)].join(', ')}`);
});

const SITE = (extra: string) => `site: s
timezone: UTC
areas: [{id: a}${extra}]
readers: [{id: r, from: outside, to: a, controller: c}]
controllers: [{id: c, token: tok-c-long-test-token}]
users: [{name: root, token: tok-admin-long-test-token, role: admin}]
`;

test('one SIGHUP reload logs one report line; one PUT /v1/config too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-cli-'));
  const f = join(dir, 's.yaml');
  writeFileSync(f, SITE(''));
  const child = spawn(process.execPath, [CLI, 'serve', '--config', f, '--data', join(dir, 'd'), '--port', '0', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (b) => { stdout += b; });
  child.stderr.on('data', (b) => { stderr += b; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitFor = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(cond(), `${what}\nstdout: ${stdout}\nstderr: ${stderr}`);
  };
  const reportLines = () => stderr.split('\n').filter((l) => l.includes('"report"'));
  try {
    await waitFor(() => /apb serving/.test(stdout), 'server start');
    writeFileSync(f, SITE(', {id: b}'));
    child.kill('SIGHUP');
    await waitFor(() => reportLines().length >= 1, 'the reload report');
    await new Promise((r) => setTimeout(r, 300)); // a second line would follow at once
    assert.equal(reportLines().length, 1, stderr);
    const line = JSON.parse(reportLines()[0]!);
    assert.deepEqual([line.who, line.report.areasAdded], ['sighup', ['b']]);
    const url = /apb serving (\S+)/.exec(stdout)![1]!;
    const put = await fetch(url + '/v1/config', { method: 'PUT', headers: { authorization: 'Bearer tok-admin-long-test-token' }, body: SITE(', {id: b}, {id: c2}') });
    assert.equal(put.status, 200, await put.text());
    await waitFor(() => reportLines().length >= 2, 'the PUT reload report');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reportLines().length, 2, stderr);
    assert.deepEqual(JSON.parse(reportLines()[1]!).report.areasAdded, ['c2']);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
