/**
 * End to end, real parts only: `apb serve` (a child, LMDB in a temp
 * directory, 127.0.0.1), `apb bridge` (a child, its own LMDB), the serial
 * line a socat pseudo-terminal pair, and three simulated readers on its far
 * end (one in install mode for the Secure Channel).
 *   1. online: grant (green LED + output pulse), deny (red + two beeps),
 *      a grant under the secure channel, a turnstile passage reaching the engine;
 *   2. the engine hangs: past the deadline the policy decides, the late answer is compared;
 *      the engine is killed: each reader follows its policy (deny, grant,
 *      local with the facility allowlist), fast, and each decision is journaled;
 *   3. the bridge is killed and restarted while the engine is still down:
 *      the journal survives; the engine comes back: every offline decision
 *      is uploaded once, with the engine's conclusion;
 *   4. the bridge restarted again uploads nothing twice, and an upload
 *      resent with the same id (a crash before it was marked) changes nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CMD } from '../../src/bridge/osdp/codes.js';
import { COLOR_GREEN, COLOR_RED } from '../../src/bridge/osdp/payloads.js';
import { EngineLink } from '../../src/bridge/link/engine-link.js';
import { PtyPair, SimBus, SKIP_NO_SOCAT, waitFor, type SimReader } from './sim-pd.js';
import { freePort, kill, spawnApb, startEngine, type Child } from './util.js';

const GATE = 'gate-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';
const SITE = `site: bridge-e2e
timezone: UTC
areas:
  - { id: building, entry: hard }
  - { id: lab, parent: building, entry: hard }
readers:
  - { id: door-in, from: outside, to: building, controller: gate }
  - { id: door-out, from: building, to: outside, controller: gate }
  - { id: lab-in, from: building, to: lab, controller: gate }
  - { id: desk-in, from: outside, to: building, controller: desk }
controllers:
  - { id: gate, token: ${GATE} }
  - { id: desk, token: desk-token-0123456789abcdef }
users:
  - { name: vera, token: ${VIEWER}, role: viewer }
`;
const LAB_KEY = '000102030405060708090a0b0c0d0e0f';

let dir: string, pty: PtyPair, sim: SimBus, enginePort: number, healthPort: number;
let engine: Child | null = null, bridge: Child | null = null;
let r1: SimReader, r2: SimReader, r3: SimReader;

const api = async (path: string): Promise<any> => {
  const r = await fetch(`http://127.0.0.1:${enginePort}${path}`, { headers: { authorization: `Bearer ${VIEWER}` } });
  assert.equal(r.status, 200, `GET ${path}`);
  return r.json();
};
/** the event log, newest first (a page {events, next}) */
const events = async (q: string): Promise<any[]> => { const p = await api(`/v1/events?${q}`); return Array.isArray(p) ? p : p.events; };
const health = async (): Promise<any> => (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json();
const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
const metric = (text: string, name: string, labels = ''): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : 0;
};

async function startBridge(): Promise<Child> {
  const c = spawnApb(['bridge', '--config', join(dir, 'bridge.yaml')]);
  await waitFor(() => c.out().includes('apb bridge:') || c.proc.exitCode !== null, 10_000, 'bridge start');
  assert.equal(c.proc.exitCode, null, `bridge exited: ${c.err()}`);
  return c;
}

/** the last LED command a reader received after `n` of them: [colour, buzzer beeps or 0] */
async function shown(r: SimReader, leds: number, ms = 2000): Promise<{ color: number; beeps: number; out: boolean }> {
  await waitFor(() => r.commands(CMD.LED).length > leds, ms, `LED at reader ${r.address}`);
  await new Promise((res) => setTimeout(res, 120)); // the buzzer and output follow within a poll or two
  const led = r.commands(CMD.LED)[leds]!;
  const after = r.received.filter((x) => x.at >= led.at);
  const buz = after.find((x) => x.code === CMD.BUZ);
  return { color: led.data[5]!, beeps: buz ? buz.data[4]! : 0, out: after.some((x) => x.code === CMD.OUT) };
}

before(async () => {
  if (SKIP_NO_SOCAT) return;
  dir = mkdtempSync(join(tmpdir(), 'apb-bridge-e2e-'));
  pty = await PtyPair.open();
  [enginePort, healthPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'site.yaml'), SITE);
  writeFileSync(join(dir, 'bridge.yaml'), `engine:
  url: ws://127.0.0.1:${enginePort}
  token: ${GATE}
  viewerToken: ${VIEWER}
  deadline: 150
  reconnectMin: 50
  reconnectMax: 300
  pingEvery: 1000
data: ./bridge-data
site: ./site.yaml
http: { host: 127.0.0.1, port: ${healthPort} }
offline: { facilities: [67] }
ports:
  - path: ${pty.a}
    baud: 115200
    pollInterval: 30
    offlineAfter: 3000
    readers:
      - { id: door-in, address: 1, policy: deny, output: { number: 0, pulse: 2000 } }
      - { id: door-out, address: 2, policy: grant }
      - { id: lab-in, address: 3, policy: local, passageInput: 1, secure: { scbk: "${LAB_KEY}", install: true } }
`);
  sim = await SimBus.open(pty.b);
  r1 = sim.add(1); r2 = sim.add(2); r3 = sim.add(3, { install: true, scbk: null, inputs: 2 });
  engine = await startEngine(join(dir, 'site.yaml'), join(dir, 'engine-data'), enginePort);
  bridge = await startBridge();
});

after(async () => {
  if (bridge) await kill(bridge);
  if (engine) await kill(engine);
  await sim?.close();
  await pty?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const skip = SKIP_NO_SOCAT;

test('online: grant and deny at the door, a secure reader, a passage', { skip }, async () => {
  await waitFor(async () => { const x = await health(); return x.engine === 'up' && x.readers.every((r: any) => r.online) ? x : null; }, 8000, 'bridge ready').catch(async () => assert.fail(JSON.stringify(await health())));
  const hz = await health();
  assert.equal(hz.ready, true);
  assert.deepEqual(hz.readers.map((r: any) => [r.id, r.secure]), [['door-in', false], ['door-out', false], ['lab-in', true]]);
  assert.deepEqual(r3.sessions, [0, 1], 'install mode: SCBK-D, then the configured key');

  r1.card(67, 1000);
  const g = await shown(r1, 0);
  assert.deepEqual(g, { color: COLOR_GREEN, beeps: 0, out: true }, 'grant: green, output pulsed, no beep');
  assert.deepEqual([...r1.commands(CMD.OUT)[0]!.data], [0, 0x05, 20, 0], 'output 0 for 2000 ms');
  r1.card(67, 1000);
  assert.deepEqual(await shown(r1, 1), { color: COLOR_RED, beeps: 2, out: false }, 'reentry: red and two beeps');
  const st = await api('/v1/credentials/s:67%3A1000');
  assert.equal(st.location, 'building');

  r3.card(67, 1000);
  const lab = await shown(r3, 0);
  assert.equal(lab.color, COLOR_GREEN);
  assert.ok(r3.commands(CMD.LED)[0]!.secure, 'the LED command came encrypted');
  r3.setInput(1, true);
  await waitFor(async () => (await events('cred=s:67%3A1000&limit=50')).find((e) => e.kind === 'passage' && e.reader === 'lab-in'), 3000, 'passage in the engine log');
  r3.setInput(1, false);

  r1.card(67, 3000); // known to be in the building, for the local decisions below
  assert.equal((await shown(r1, 2)).color, COLOR_GREEN);
  const m = await metrics();
  assert.equal(metric(m, 'apb_bridge_decisions_total', 'source="engine",result="grant"'), 3);
  assert.equal(metric(m, 'apb_bridge_decisions_total', 'source="engine",result="deny"'), 1);
  assert.ok(metric(m, 'apb_bridge_card_to_led_seconds_count') >= 4);
  assert.equal(metric(m, 'apb_bridge_reader_secure', 'reader="lab-in",configured="secure"'), 1);
  assert.equal(metric(m, 'apb_bridge_reader_secure', 'reader="door-in",configured="clear"'), 0);
});

test('engine hung: past the deadline the door follows its policy; the late decision is compared', { skip }, async () => {
  engine!.proc.kill('SIGSTOP');
  try {
    const t0 = Date.now();
    r1.card(67, 7000); // door-in, policy deny; the engine would grant (unknown credential)
    const d = await shown(r1, 3, 1500);
    const took = Date.now() - t0;
    assert.deepEqual(d, { color: COLOR_RED, beeps: 3, out: false });
    assert.ok(took < 1000, `shown after ${took} ms (deadline 150 ms)`);
  } finally { engine!.proc.kill('SIGCONT'); }
  await waitFor(async () => metric(await metrics(), 'apb_bridge_late_decisions_total', 'agreed="no"') === 1, 3000, 'the late grant, compared');
  await waitFor(async () => (await health()).offlineQueue === 0, 3000, 'the offline deny uploaded once the engine woke up');
  const ev = (await events('cred=s:67%3A7000&limit=10')).map((e) => [e.kind, e.grant]).reverse();
  assert.deepEqual(ev, [['badge', true], ['offline', false]], 'the engine granted the badge late, then got the door\'s deny');
});

test('engine killed: every reader follows its policy at once, and journals it', { skip }, async () => {
  await kill(engine!);
  engine = null;
  await waitFor(async () => (await health()).engine !== 'up', 3000, 'link down');
  const t0 = Date.now();
  r1.card(67, 2000); // door-in: deny
  const d = await shown(r1, 4);
  assert.ok(Date.now() - t0 < 1000, `offline deny shown after ${Date.now() - t0} ms`);
  assert.deepEqual(d, { color: COLOR_RED, beeps: 3, out: false }, 'offline deny: red and three beeps');
  r2.card(67, 1000); // door-out: grant
  assert.deepEqual(await shown(r2, 0), { color: COLOR_GREEN, beeps: 1, out: false }, 'offline grant: green and one short beep');
  r3.card(67, 3000); // lab-in, local: in the building → may enter the lab
  assert.equal((await shown(r3, 1)).color, COLOR_GREEN);
  r3.card(67, 3000); // again: already in the lab
  assert.equal((await shown(r3, 2)).color, COLOR_RED);
  r3.card(99, 1); // unknown, facility 99 not allowed
  assert.equal((await shown(r3, 3)).color, COLOR_RED);
  r3.card(67, 5555); // unknown, facility 67 allowed: first move
  assert.equal((await shown(r3, 4)).color, COLOR_GREEN);
  const hz = await health();
  assert.equal(hz.offlineQueue, 6);
  assert.equal(hz.ready, false);
  const m = await metrics();
  assert.equal(metric(m, 'apb_bridge_offline_queue'), 6);
  assert.equal(metric(m, 'apb_bridge_engine_link_up'), 0);
  assert.equal(metric(m, 'apb_bridge_decisions_total', 'source="offline",result="deny",policy="deny"'), 2, 'this one and the hung engine\'s');
  assert.equal(metric(m, 'apb_bridge_decisions_total', 'source="offline",result="grant",policy="grant"'), 1);
  assert.equal(metric(m, 'apb_bridge_decisions_total', 'source="offline",result="grant",policy="local"'), 2);
  assert.equal(metric(m, 'apb_bridge_decisions_total', 'source="offline",result="deny",policy="local"'), 2);
});

let uploadedIds: number[] = [];

test('bridge killed and restarted, then the engine returns: every offline decision uploaded once', { skip }, async () => {
  await kill(bridge!); // SIGKILL: nothing flushed on the way out
  bridge = await startBridge();
  await waitFor(async () => { try { return (await health()).offlineQueue === 6; } catch { return false; } }, 5000, 'the journal survived the kill');
  engine = await startEngine(join(dir, 'site.yaml'), join(dir, 'engine-data'), enginePort);
  await waitFor(async () => (await health()).offlineQueue === 0, 10_000, 'uploads acknowledged');
  const offline = (await events('limit=1000')).filter((e) => e.kind === 'offline' && e.controller === 'gate');
  uploadedIds = offline.map((e) => Number(e.id));
  assert.equal(offline.length, 7, 'the hung-engine deny and the six of the outage');
  assert.equal(new Set(uploadedIds).size, 7, 'each once');
  const by = (cred: string) => offline.filter((e) => e.cred === `s:${encodeURIComponent(cred)}`).map((e) => [e.reader, e.grant, e.applied]);
  assert.deepEqual(by('67:2000'), [['door-in', false, false]], 'a denied attempt is recorded, changes nothing');
  assert.deepEqual(by('67:1000'), [['door-out', true, true]], 'the granted exit moved the credential');
  assert.equal((await api('/v1/credentials/s:67%3A1000')).location, 'outside');
  assert.equal((await api('/v1/credentials/s:67%3A5555')).location, 'lab');
  // the engine's conclusions, read back with the viewer token
  await waitFor(async () => metric(await metrics(), 'apb_bridge_offline_uploads_total', 'outcome="applied"') === 3, 3000, 'conclusions');
  const m = await metrics();
  assert.equal(metric(m, 'apb_bridge_offline_uploads_total', 'outcome="not_applied"'), 3, 'the three denies of the outage change nothing (this process uploaded those six)');
});

test('restarted once more: nothing is uploaded twice; a resent id changes nothing', { skip }, async () => {
  assert.equal(await kill(bridge!, 'SIGTERM'), 0, 'SIGTERM: clean exit 0');
  bridge = await startBridge();
  await waitFor(async () => (await health()).engine === 'up', 5000, 'link up');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await health()).offlineQueue, 0);
  const count = async () => (await events('limit=1000')).filter((e) => e.kind === 'offline' && e.controller === 'gate').length;
  assert.equal(await count(), 7);
  // a crash between sending and marking an upload resends the same id: the engine keeps its first answer
  await kill(bridge!, 'SIGTERM');
  bridge = null;
  const link = new EngineLink({ url: `ws://127.0.0.1:${enginePort}`, token: GATE, reconnectMin: 50, reconnectMax: 100, pingEvery: 5000 }, pino({ level: 'silent' }));
  link.start();
  await waitFor(() => link.up, 3000, 'test link');
  const before = (await api('/v1/credentials/s:67%3A1000'));
  const rep = await link.send({ t: 'offline', id: uploadedIds[0]!, cred: '67:1000', reader: 'door-in', ts: Date.now(), granted: true }, true);
  assert.equal(rep.t, 'ack');
  assert.equal(await count(), 7, 'still seven');
  assert.deepEqual(await api('/v1/credentials/s:67%3A1000'), before, 'state unchanged');
  await link.stop();
});
