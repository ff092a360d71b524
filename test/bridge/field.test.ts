/**
 * The bridge as installed, real parts only: `apb serve` and `apb bridge`
 * children on 127.0.0.1 (each its own LMDB in a temp directory), two serial
 * lines (socat pseudo-terminal pairs) with simulated readers:
 *   line 1: a PD at address 1 with two reader heads (0 = turn-in, a turnstile
 *           whose area commits on passage; 1 = turn-out), and a PD at
 *           address 2 configured for the secure channel that reports none;
 *   line 2: one reader (door-b).
 * It checks the capability query (/healthz, /metrics, the refusal), that
 * each head gets its own decisions and feedback, that a passage during an
 * engine outage is journaled, survives a SIGKILL of the bridge and reaches
 * the engine once and in order, and that a serial line unplugged and
 * plugged back is noticed and recovered without touching the other line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CMD } from '../../src/bridge/osdp/codes.js';
import { COLOR_GREEN, COLOR_RED } from '../../src/bridge/osdp/payloads.js';
import { PtyPair, SimBus, SKIP_NO_SOCAT, waitFor, type SimReader } from './sim-pd.js';
import { freePort, kill, MAIN, spawnApb, startEngine, type Child } from './util.js';
import { spawnSync } from 'node:child_process';
import { loadSiteText } from '../../src/config/load.js';
import { Replayer } from '../../src/engine/replay.js';
import { credFromText } from '../../src/engine/cred.js';

const GATE = 'gate-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';
const SITE = `site: bridge-field
timezone: UTC
areas:
  - { id: hall, entry: hard, commitOn: passage, passageTimeout: 600 }
  - { id: side, entry: hard }
readers:
  - { id: turn-in, from: outside, to: hall, controller: gate }
  - { id: turn-out, from: hall, to: outside, controller: gate }
  - { id: side-in, from: outside, to: side, controller: gate }
  - { id: door-b, from: outside, to: side, controller: gate }
controllers:
  - { id: gate, token: ${GATE} }
users:
  - { name: vera, token: ${VIEWER}, role: viewer }
`;

let dir: string, pty1: PtyPair, pty2: PtyPair, sim1: SimBus, sim2: SimBus, enginePort: number, healthPort: number;
let engine: Child | null = null, bridge: Child | null = null;
let pd1: SimReader, pd2: SimReader, pdB: SimReader;

const api = async (path: string): Promise<any> => {
  const r = await fetch(`http://127.0.0.1:${enginePort}${path}`, { headers: { authorization: `Bearer ${VIEWER}` } });
  assert.equal(r.status, 200, `GET ${path}`);
  return r.json();
};
/** the event log, oldest first */
const events = async (q: string): Promise<any[]> => { const p = await api(`/v1/events?${q}`); return (Array.isArray(p) ? p : p.events).reverse(); };
const health = async (): Promise<any> => (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json();
const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
const metric = (text: string, name: string, labels = ''): number | null => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : null;
};
const reader = (hz: any, id: string): any => hz.readers.find((r: any) => r.id === id);
const lines = (c: Child): any[] => c.err().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

async function startBridge(): Promise<Child> {
  const c = spawnApb(['bridge', '--config', join(dir, 'bridge.yaml')]);
  await waitFor(() => c.out().includes('apb bridge:') || c.proc.exitCode !== null, 10_000, 'bridge start');
  assert.equal(c.proc.exitCode, null, `bridge exited: ${c.err()}`);
  return c;
}

/** the LED command number `n` a PD received: [reader head, colour] */
async function led(r: SimReader, n: number): Promise<[number, number]> {
  await waitFor(() => r.commands(CMD.LED).length > n, 3000, `LED ${n} at PD ${r.address}`);
  const d = r.commands(CMD.LED)[n]!.data;
  return [d[0]!, d[5]!];
}

before(async () => {
  if (SKIP_NO_SOCAT) return;
  dir = mkdtempSync(join(tmpdir(), 'apb-bridge-field-'));
  pty1 = await PtyPair.open();
  pty2 = await PtyPair.open();
  [enginePort, healthPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'site.yaml'), SITE);
  writeFileSync(join(dir, 'bridge.yaml'), `engine:
  url: ws://127.0.0.1:${enginePort}
  token: ${GATE}
  deadline: 150
  reconnectMin: 50
  reconnectMax: 300
  pingEvery: 1000
data: ./bridge-data
site: ./site.yaml
http: { host: 127.0.0.1, port: ${healthPort} }
ports:
  - path: ${pty1.a}
    baud: 115200
    pollInterval: 30
    offlineAfter: 3000
    readers:
      - { id: turn-in, address: 1, reader: 0, policy: deny, passageInput: 1 }
      - { id: turn-out, address: 1, reader: 1, policy: deny }
      - { id: side-in, address: 2, secure: { scbk: "000102030405060708090a0b0c0d0e0f" } }
  - path: ${pty2.a}
    baud: 115200
    pollInterval: 30
    offlineAfter: 3000
    readers:
      - { id: door-b, address: 5 }
`);
  sim1 = await SimBus.open(pty1.b);
  sim2 = await SimBus.open(pty2.b);
  pd1 = sim1.add(1, { heads: 2, inputs: 2 });
  pd2 = sim1.add(2, { secureCapable: false, scbk: null });
  pdB = sim2.add(5);
  engine = await startEngine(join(dir, 'site.yaml'), join(dir, 'engine-data'), enginePort);
  bridge = await startBridge();
});

after(async () => {
  if (bridge) await kill(bridge);
  if (engine) await kill(engine);
  await sim1?.close();
  await sim2?.close().catch(() => undefined);
  await pty1?.close();
  await pty2?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const skip = SKIP_NO_SOCAT;

test('capabilities: asked at discovery, on /healthz and /metrics; a secure reader without secure channel is refused', { skip, timeout: 60_000 }, async () => {
  await waitFor(async () => { const x = await health(); return x.engine === 'up' && reader(x, 'turn-in').online && reader(x, 'door-b').online ? x : null; }, 8000, 'bridge up');
  await waitFor(async () => reader(await health(), 'side-in').refused, 3000, 'side-in refused');
  const hz = await health();
  assert.deepEqual([...pd1.commands(CMD.CAP)[0]!.data], [0]);
  const caps = reader(hz, 'turn-in').capabilities;
  assert.deepEqual(caps.readers, { code: 13, compliance: 0, items: 2 });
  assert.deepEqual(caps.reader_led, { code: 4, compliance: 2, items: 1 });
  assert.deepEqual(reader(hz, 'turn-out').capabilities, caps, 'both heads show their PD');
  const side = reader(hz, 'side-in');
  assert.equal(side.online, false);
  assert.match(side.refused, /reports no secure channel support/);
  assert.equal(side.capabilities.communication_security.compliance, 0);
  assert.equal(hz.ready, false, 'a refused reader keeps the bridge from ready');
  assert.equal(pd2.commands(CMD.CHLNG).length, 0);
  const m = await metrics();
  assert.equal(metric(m, 'apb_bridge_reader_refused', 'reader="side-in"'), 1);
  assert.equal(metric(m, 'apb_bridge_reader_refused', 'reader="turn-in"'), 0);
  assert.equal(metric(m, 'apb_bridge_pd_capability_items', `port="${pty1.a}",address="1",function="readers"`), 2);
  assert.equal(metric(m, 'apb_bridge_pd_capability', `port="${pty1.a}",address="2",function="communication_security"`), 0);
  await waitFor(() => pd2.commands(CMD.CAP).length >= 2, 4000, 'side-in rediscovered');
  assert.equal(lines(bridge!).filter((l) => l.level === 50 && /reader not used/.test(l.msg)).length, 1, 'the refusal is logged once');
});

test('two reader heads on one PD: each read decided for its own reader id, feedback to its own head', { skip, timeout: 60_000 }, async () => {
  pd1.card(67, 1, 1); // head 1: turn-out
  assert.deepEqual(await led(pd1, 0), [1, COLOR_GREEN]);
  pd1.card(67, 2, 0); // head 0: turn-in
  assert.deepEqual(await led(pd1, 1), [0, COLOR_GREEN]);
  const ev = (await events('limit=100')).filter((e) => e.kind === 'badge').map((e) => [e.cred, e.reader, e.grant]);
  assert.deepEqual(ev, [['s:67%3A1', 'turn-out', true], ['s:67%3A2', 'turn-in', true]]);
  const buz = pd1.commands(CMD.BUZ);
  assert.equal(buz.length, 0, 'grants online: no beep');
  pd1.card(67, 3, 4); // head 4: not in the bridge file
  assert.deepEqual(await led(pd1, 2), [4, COLOR_RED], 'shown as denied on the head that read it');
  await waitFor(() => pd1.commands(CMD.BUZ).length === 1, 2000, 'two beeps on head 4');
  assert.equal(pd1.commands(CMD.BUZ)[0]!.data[0], 4);
  assert.equal((await events('limit=100')).filter((e) => e.kind === 'badge').length, 2, 'the engine was not asked');
  assert.equal(metric(await metrics(), 'apb_bridge_reads_total', 'reader="turn-in",kind="unknown_head"'), 1);
});

test('a passage during an engine outage is journaled, survives a SIGKILL of the bridge, and reaches the engine once, in order', { skip, timeout: 60_000 }, async () => {
  pd1.card(67, 10, 0); // turn-in: granted, the move waits for the turnstile
  assert.deepEqual(await led(pd1, 3), [0, COLOR_GREEN]);
  await kill(engine!);
  engine = null;
  await waitFor(async () => (await health()).engine !== 'up', 3000, 'link down');
  pd1.setInput(1, true); // the turnstile turns: a passage for the grant
  await waitFor(async () => (await health()).offlineQueue === 1, 3000, 'passage journaled');
  pd1.setInput(1, false);
  pd1.card(67, 11, 1); // turn-out while the engine is away: an offline deny, after the passage
  assert.deepEqual(await led(pd1, 4), [1, COLOR_RED]);
  await waitFor(async () => (await health()).offlineQueue === 2, 3000, 'offline deny journaled');
  await kill(bridge!); // SIGKILL
  bridge = await startBridge();
  await waitFor(async () => { try { return (await health()).offlineQueue === 2; } catch { return false; } }, 5000, 'the journal survived');
  engine = await startEngine(join(dir, 'site.yaml'), join(dir, 'engine-data'), enginePort);
  await waitFor(async () => (await health()).offlineQueue === 0, 10_000, 'uploaded');
  const after = async () => (await events('limit=1000')).filter((e) => e.kind === 'passage' || e.kind === 'offline').map((e) => [e.kind, e.cred, e.reader, Number(e.id)]);
  const got = await after();
  assert.deepEqual(got.map((x) => x.slice(0, 3)), [['passage', 's:67%3A10', 'turn-in'], ['offline', 's:67%3A11', 'turn-out']], 'each once, the passage first');
  assert.ok((got[0]![3] as number) < (got[1]![3] as number), 'ids in the order things happened');
  assert.equal(metric(await metrics(), 'apb_bridge_passage_uploads_total', 'outcome="acknowledged"'), 1);
  assert.equal(await kill(bridge!, 'SIGTERM'), 0);
  bridge = await startBridge();
  await waitFor(async () => (await health()).engine === 'up', 5000, 'link up again');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await after(), got, 'nothing sent twice after another restart');

  // the engine's state is what a replay of its whole log (online badges, the passage, the offline upload) gives
  const exp = spawnSync(process.execPath, [MAIN, 'events', '--data', join(dir, 'engine-data')], { encoding: 'utf8' });
  assert.equal(exp.status, 0, exp.stderr);
  const lines = exp.stdout.trim().split('\n');
  assert.ok(lines.some((l) => JSON.parse(l).t === 'passage'), 'the passage is in the exported stream');
  const site = loadSiteText(SITE, 'site.yaml').site;
  const replay = new Replayer(site, { core: 'reference' });
  assert.ok(replay.process(lines).every((l) => JSON.parse(l).t !== 'error'));
  const creds = [...new Set(lines.map((l) => JSON.parse(l).cred as string))];
  assert.deepEqual(creds.sort(), ['67:1', '67:10', '67:2'], 'the exported stream (an offline deny changes nothing and is not replay input)');
  for (const c of creds) {
    const want = replay.engine.core.state(credFromText(`s:${encodeURIComponent(c)}`));
    const live = await api(`/v1/credentials/s:${encodeURIComponent(c)}`);
    assert.deepEqual([live.location, live.lastReader], [want.location < 0 ? null : site.areaIds[want.location], want.lastReader < 0 ? null : site.readerIds[want.lastReader]], `credential ${c}`);
  }
  assert.equal((await api('/v1/credentials/s:67%3A10')).location, 'hall', 'the passage committed the turnstile move');
});

test('a serial line unplugged: its reader goes offline, one error line; back when the device returns; the other line goes on', { skip, timeout: 60_000 }, async () => {
  await waitFor(async () => reader(await health(), 'door-b').online, 5000, 'door-b online');
  await pty2.unplug();
  await waitFor(async () => { const x = await health(); return !x.ports[1].open && !reader(x, 'door-b').online ? x : null; }, 5000, 'port 2 down');
  const hz = await health();
  assert.equal(hz.ports[0].open, true);
  assert.equal(reader(hz, 'turn-in').online, true, 'line 1 unaffected');
  pd1.card(67, 20, 0);
  assert.deepEqual(await led(pd1, 5), [0, COLOR_GREEN], 'line 1 still decides');
  await new Promise((r) => setTimeout(r, 1500)); // several reopen attempts
  await pty2.replug();
  await sim2.close().catch(() => undefined);
  sim2 = await SimBus.open(pty2.b);
  pdB = sim2.add(5);
  await waitFor(async () => { const x = await health(); return x.ports[1].open && reader(x, 'door-b').online; }, 8000, 'door-b back');
  const lost = lines(bridge!).filter((l) => l.port === pty2.a && l.level >= 50);
  assert.deepEqual(lost.map((l) => l.msg), ['serial port lost; its readers are offline, reopening'], 'one error line');
  const m = await metrics();
  assert.equal(metric(m, 'apb_bridge_serial_port_losses_total', `port="${pty2.a}"`), 1);
  assert.ok(metric(m, 'apb_bridge_serial_open_failures_total', `port="${pty2.a}"`)! >= 1, 'reopen attempts counted');
  assert.equal(metric(m, 'apb_bridge_serial_port_losses_total', `port="${pty1.a}"`), 0);
  pdB.card(67, 30);
  assert.deepEqual(await led(pdB, 0), [0, COLOR_GREEN]);
});
