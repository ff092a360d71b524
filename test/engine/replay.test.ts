/**
 * `apb replay` end to end: the real CLI in a child process, fed from files
 * and from stdin, checked line by line against SPEC 11/12.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

const SITE = `site: replay-test
timezone: Europe/London
areas:
  - { id: hall, entry: hard, resetAt: ["03:00"] }
  - { id: vip, parent: hall, entry: hard }
readers:
  - { id: in, from: outside, to: hall, controller: c }
  - { id: out, from: hall, to: outside, controller: c }
  - { id: vip-in, from: hall, to: vip, controller: c }
controllers:
  - { id: c, token: t-long-test-token }
`;

const T = Date.UTC(2026, 0, 5, 9); // Monday 09:00 London

interface Run { code: number | null; stdout: string; stderr: string }

function runCli(args: string[], input?: string, nodeArgs: string[] = []): Promise<Run> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

const lines = (s: string): Record<string, unknown>[] => s.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

let dir: string;
let sitePath: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'apb-replay-'));
  sitePath = join(dir, 'site.yaml');
  writeFileSync(sitePath, SITE);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const MIXED = [
  `{"t":"badge","cred":1,"reader":"in","ts":${T}}`,                               // 0 grant
  `{"t":"badge","cred":1,"reader":"in","ts":${T + 1000}}`,                        // 1 deny reentry
  ``,                                                                              // 2 bad_frame (blank)
  `this is not json`,                                                              // 3 bad_frame
  `[{"t":"badge"}]`,                                                               // 4 bad_frame (not an object)
  `{"t":"ping","ts":${T + 1000}}`,                                                 // 5 unknown_type
  `{"cred":1,"reader":"in","ts":${T + 1000}}`,                                     // 6 bad_message (no t)
  `{"t":"badge","cred":1,"reader":"in"}`,                                          // 7 bad_message (no ts)
  `{"t":"badge","cred":1.5,"reader":"in","ts":${T + 1000}}`,                       // 8 bad_message (cred)
  `{"t":"badge","cred":1,"reader":"in","ts":${T - 1}}`,                            // 9 bad_message (clock)
  `{"t":"offline","cred":2,"reader":"in","ts":${T - 60000},"granted":true}`,      // 10 ack, applied, clock unmoved
  `{"t":"badge","cred":2,"reader":"in","ts":${T + 1000}}`,                        // 11 deny reentry (the upload placed cred 2 inside)
  `{"t":"resetArea","area":"lobby","ts":${T + 2000}}`,                            // 12 unknown_area
  `{"t":"passage","cred":1,"reader":"nowhere","ts":${T + 2000}}`,                 // 13 ack (unknown reader)
  `{"t":"badge","cred":1,"reader":"nowhere","ts":${T + 2000}}`,                   // 14 deny unknown_reader
  `{"t":"forgive","cred":1,"ts":${T + 3000}}`,                                    // 15 ack
  `{"t":"badge","cred":1,"reader":"in","ts":${T + 3000}}`,                        // 16 grant forgiven
  `{"t":"badge","cred":18446744073709551615,"reader":"in","ts":${T + 4000}}`,     // 17 grant (u64 max)
  `{"t":"badge","cred":18446744073709551615,"reader":"in","ts":${T + 4000}}`,     // 18 deny: the same exact credential
  `{"t":"badge","cred":18446744073709551614,"reader":"in","ts":${T + 4000}}`,     // 19 grant: a different one
  `{"t":"badge","cred":{"hex":"04a1b2"},"reader":"in","ts":${T + 5000}}`,         // 20 grant (binary)
  `{"t":"badge","cred":"04a1b2","reader":"in","ts":${T + 5000}}`,                 // 21 grant (a string, not the binary)
  `{"t":"setLocation","cred":9,"area":"vip","ts":${T + 6000}}`,                   // 22 ack
  `{"t":"badge","cred":9,"reader":"vip-in","ts":${T + 6000}}`,                    // 23 deny reentry vip (only vip is entered)
  `{"t":"exempt","cred":9,"on":true,"ts":${T + 6000}}`,                           // 24 ack
  `{"t":"badge","cred":9,"reader":"vip-in","ts":${T + 6000},"extra":"ignored"}`,  // 25 grant exempt
  `{"t":"badge","cred":1,"reader":"in","ts":${T + 18 * 3600_000}}`,               // 26 grant: the 03:00 reset ran first
  `{"t":"exempt","cred":9,"ts":${T + 18 * 3600_000}}`,                            // 27 bad_message (on)
];

function checkMixed(out: Record<string, unknown>[]): void {
  assert.equal(out.length, MIXED.length, 'one output line per input line');
  const code = (i: number): unknown => out[i]!.code;
  const dec = (i: number): string => `${out[i]!.t}:${out[i]!.grant}:${out[i]!.reason}`;
  assert.deepEqual(out[0], { t: 'decision', grant: true, reason: 'ok', violations: [], area: 'hall' });
  assert.deepEqual(out[1], { t: 'decision', grant: false, reason: 'reentry', violations: [{ code: 'reentry', mode: 'hard', area: 'hall' }] });
  assert.deepEqual([2, 3, 4].map(code), ['bad_frame', 'bad_frame', 'bad_frame']);
  assert.equal(code(5), 'unknown_type');
  for (const i of [6, 7, 8, 9]) { assert.equal(out[i]!.t, 'error'); assert.equal(code(i), 'bad_message'); }
  assert.match(String(out[6]!.message), /^t:/); assert.match(String(out[7]!.message), /^ts:/);
  assert.match(String(out[8]!.message), /^cred:/); assert.match(String(out[9]!.message), /clock/);
  assert.deepEqual(out[10], { t: 'ack' });
  assert.equal(dec(11), 'decision:false:reentry');
  assert.equal(code(12), 'unknown_area');
  assert.deepEqual(out[13], { t: 'ack' });
  assert.equal(dec(14), 'decision:false:unknown_reader');
  assert.deepEqual(out[15], { t: 'ack' });
  assert.equal(dec(16), 'decision:true:forgiven');
  assert.deepEqual([17, 18, 19].map(dec), ['decision:true:ok', 'decision:false:reentry', 'decision:true:ok']);
  assert.deepEqual([20, 21].map(dec), ['decision:true:ok', 'decision:true:ok']);
  assert.deepEqual(out[22], { t: 'ack' });
  assert.equal(dec(23), 'decision:false:reentry');
  assert.deepEqual((out[23]!.violations as unknown[]).length, 1);
  assert.deepEqual(out[24], { t: 'ack' });
  assert.deepEqual(out[25], { t: 'decision', grant: true, reason: 'exempt', violations: [], area: 'vip' });
  assert.equal(dec(26), 'decision:true:ok');
  assert.equal(code(27), 'bad_message'); assert.match(String(out[27]!.message), /^on:/);
  for (const o of out) assert.equal(o.id, undefined, 'replies carry no id');
}

for (const core of ['wasm', 'reference']) {
  describe(`apb replay --core ${core}`, () => {
    test('a file with good and bad lines: one answer per line, per SPEC 11/12', async () => {
      const events = join(dir, `mixed-${core}.jsonl`);
      writeFileSync(events, MIXED.join('\n') + '\n');
      const r = await runCli(['replay', '--config', sitePath, '--events', events, '--core', core]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', 'no progress output when stderr is not a terminal');
      checkMixed(lines(r.stdout));
    });

    test('stdin with "-", CRLF line ends and no final newline', async () => {
      const r = await runCli(['replay', '--config', sitePath, '--events', '-', '--core', core], MIXED.join('\r\n'));
      assert.equal(r.code, 0, r.stderr);
      checkMixed(lines(r.stdout));
    });
  });
}

test('the same stream gives byte-identical output on both cores and on every run', async () => {
  const rows: string[] = [];
  let ts = T;
  for (let i = 0; i < 3000; i++) {
    ts += (i * 7919) % 5 === 0 ? 3_600_000 : (i * 31) % 4000;
    const cred = (i * 2654435761) % 37;
    const reader = ['in', 'out', 'vip-in', 'gone'][(i * 13) % 4];
    if (i % 17 === 0) rows.push(`{"t":"offline","cred":${cred},"reader":"${reader}","ts":${ts - ((i * 101) % 7_200_000)},"granted":${i % 2 === 0}}`);
    else if (i % 29 === 0) rows.push(`{"t":"forgive","cred":${cred},"ts":${ts}}`);
    else if (i % 97 === 0) rows.push(`{"t":"resetArea","area":"hall","ts":${ts}}`);
    else rows.push(`{"t":"badge","cred":${cred},"reader":"${reader}","ts":${ts}}`);
  }
  const events = join(dir, 'det.jsonl');
  writeFileSync(events, rows.join('\n') + '\n');
  const a = await runCli(['replay', '--config', sitePath, '--events', events, '--core', 'wasm']);
  const b = await runCli(['replay', '--config', sitePath, '--events', events, '--core', 'reference']);
  const c = await runCli(['replay', '--config', sitePath, '--events', events]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(lines(a.stdout).length, rows.length);
  assert.equal(a.stdout, b.stdout, 'wasm and reference agree');
  assert.equal(a.stdout, c.stdout, 'deterministic (the default core is wasm)');
  assert.ok(lines(a.stdout).some((o) => o.grant === false), 'the stream exercises denies');
});

test('200k lines stream through stdin in bounded memory', async () => {
  const N = 200_000;
  const pad = 'x'.repeat(300); // ~64 MB of input: far more than the child's 48 MB heap could buffer
  const child = spawn(process.execPath, ['--max-old-space-size=48', MAIN, 'replay', '--config', sitePath, '--events', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const counts = { lines: 0, ok: 0, errors: 0, other: 0 };
  const reading = (async () => {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
      counts.lines++;
      const o = JSON.parse(line) as { t: string; reason?: string };
      if (o.t === 'decision' && o.reason === 'ok') counts.ok++;
      else if (o.t === 'error') counts.errors++;
      else counts.other++;
    }
  })();
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  let bad = 0, good = 0;
  for (let i = 0; i < N; i++) {
    // good line j: cred j%1000 enters on even rounds and leaves on odd ones, so every badge is granted "ok";
    // the bad lines in between change nothing
    const cred = good % 1000, round = Math.floor(good / 1000);
    const line = i % 997 === 0 ? (bad++, `{"t":"badge",`) : (good++, `{"t":"badge","cred":${cred},"reader":"${round % 2 ? 'out' : 'in'}","ts":${T + i},"pad":"${pad}"}`);
    if (!child.stdin.write(line + '\n')) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  const [code] = await Promise.all([exited, reading]);
  assert.equal(code, 0, stderr);
  assert.equal(counts.lines, N, 'output line count == input line count');
  assert.equal(counts.errors, bad);
  assert.equal(counts.ok, N - bad, 'every other line granted ok (bad lines changed nothing)');
  assert.equal(counts.other, 0);
});

test('bad invocations: invalid config, missing events file, unknown option', async () => {
  const badSite = join(dir, 'bad.yaml');
  writeFileSync(badSite, SITE.replace('parent: hall', 'parent: lobby'));
  const r1 = await runCli(['replay', '--config', badSite, '--events', '-']);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /invalid_config/); assert.match(r1.stderr, /lobby/);
  const r2 = await runCli(['replay', '--config', sitePath, '--events', join(dir, 'nope.jsonl')]);
  assert.equal(r2.code, 1); assert.match(r2.stderr, /nope\.jsonl/);
  const r3 = await runCli(['replay', '--config', sitePath, '--events', '-', '--speed', '2']);
  assert.notEqual(r3.code, 0); assert.match(r3.stderr, /--speed/);
  assert.equal(r3.stdout, '');
});
