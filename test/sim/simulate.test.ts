/**
 * `apb simulate` as a user runs it: a child process against a real server
 * child (`apb serve`, :memory: data) on 127.0.0.1, for bounded runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { MAIN_JS, ROOT_DIR, startServerChild, type Child } from '../../bench/proc.js';
import { stadiumSite, siteYaml } from '../../src/sim/sites.js';
import { loadSiteText } from '../../src/config/load.js';

function apb(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN_JS, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let sim: Child, demo: Child;
const DEMO = join(ROOT_DIR, 'src', 'demo', 'stadium.yaml');
before(async () => {
  [sim, demo] = await Promise.all([startServerChild(siteYaml(stadiumSite()), ':memory:'), startServerChild(readFileSync(DEMO, 'utf8'), ':memory:')]);
});
after(async () => { await Promise.all([sim?.stop(), demo?.stop()]); });

test('simulate --scenario stadium --limit 500 against a server on the scenario site: exit 0 and a summary that checks out', async () => {
  const r = await apb(['simulate', '--scenario', 'stadium', '--url', sim.wsUrl, '--limit', '500', '--seed', '4']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sent\s+500 events \((\d+) badges, (\d+) passages\)/m);
  const granted = Number(/^granted\s+(\d+)/m.exec(r.stdout)![1]), denied = Number(/^denied\s+(\d+)/m.exec(r.stdout)![1]);
  const badges = Number(/\((\d+) badges/.exec(r.stdout)![1]);
  assert.equal(granted + denied, badges);
  assert.match(r.stdout, /^latency\s+p50 [\d.]+ ms, p99 [\d.]+ ms/m);
  assert.match(r.stdout, /^check\s+violations found == violations expected, badge by badge$/m);
  const counts = [...r.stdout.matchAll(/(\w+) (\d+) \(expected (\d+)\)/g)];
  assert.ok(counts.length > 0, `the summary lists found vs expected counts:\n${r.stdout}`);
  for (const m of counts) assert.equal(m[2], m[3], `${m[1]} found == expected`);
});

test('simulate against the demo site of `npm start` (--config src/demo/stadium.yaml): exit 0, stream from its readers', async () => {
  const r = await apb(['simulate', '--scenario', 'stadium', '--config', DEMO, '--url', demo.wsUrl, '--limit', '500']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^scenario\s+stadium on demo-stadium$/m);
  assert.match(r.stdout, /^sent\s+500 events/m);
  assert.doesNotMatch(r.stdout, /^errors/m);
  // two runs in a row use fresh credentials: the second is judged the same way
  const again = await apb(['simulate', '--scenario', 'stadium', '--config', DEMO, '--url', demo.wsUrl, '--limit', '300', '--cred-base', '123000000']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /violations found == violations expected/);
});

test('a wrong controller token is refused: exit 1 naming the controller and the 401', async () => {
  // one wrong token among good ones: the command still ends (the good connections are closed)
  const r = await apb(['simulate', '--scenario', 'stadium', '--url', sim.wsUrl, '--limit', '200', '--tokens', 'gate-C=wrong']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /controller gate-C: upgrade refused with HTTP 401/);
  assert.doesNotMatch(r.stdout, /^sent/m);
});

test('bad arguments: precise usage errors, exit 2', async () => {
  const a = await apb(['simulate', '--scenario', 'moon', '--url', 'ws://127.0.0.1:1']);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /^apb simulate: --scenario must be stadium, metro or office, got "moon"/);
  const b = await apb(['simulate', '--scenario', 'metro', '--url', 'http://x', '--limit', '10']);
  assert.match(b.stderr, /--url must be a ws:\/\/ or wss:\/\/ URL/);
  const c = await apb(['simulate', '--scenario', 'metro', '--url', sim.wsUrl, '--limit', '0']);
  assert.match(c.stderr, /--limit must be an integer ≥ 1, got "0"/);
  const d = await apb(['simulate', '--scenario', 'office', '--print-site']);
  assert.equal(d.code, 0);
  assert.match(d.stdout, /^site: sim-office$/m);
  const { config } = loadSiteText(d.stdout, 'printed site');
  assert.deepEqual(config.areas.find((x) => x.id === 'office')!.resetAt, ['00:00']);
});
