/**
 * The control panel side on a real serial port: the bridge's bus loop on
 * one end of a socat pseudo-terminal pair, simulated readers on the other.
 * Polling and sequence numbers, card reads, door commands reaching the
 * reader, retries and the offline/online transitions, and the Secure
 * Channel handshake in install mode (SCBK-D, then osdp_KEYSET) and with a
 * set SCBK, with card reads and commands carried encrypted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Bus } from '../../src/bridge/acu/bus.js';
import { PdLink, type PdEvents, type PdSettings, type PlainReply } from '../../src/bridge/acu/pd-link.js';
import { CMD, REPLY } from '../../src/bridge/osdp/codes.js';
import { COLOR_GREEN, ledData, outPulseData } from '../../src/bridge/osdp/payloads.js';
import { decodeCardRead } from '../../src/adapters/osdp/replies.js';
import { buildFormatTable } from '../../src/adapters/wiegand/formats.js';
import { PtyPair, SimBus, SKIP_NO_SOCAT, waitFor } from './sim-pd.js';

const log = pino({ level: 'silent' });
const KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

interface Seen { reads: string[]; states: string[]; problems: string[]; acked: number; inputs: boolean[][]; keySet: number }

function events(seen: Seen): PdEvents {
  const T = buildFormatTable();
  return {
    reply: (_pd, r: PlainReply) => {
      if (r.code === REPLY.ISTATR) { seen.inputs.push([...r.data].map((b) => b === 1)); return; }
      seen.reads.push(decodeCardRead(r, T).cred);
    },
    state: (pd, online, why) => seen.states.push(`${pd.name}:${online ? 'online' : 'offline'}:${why}`),
    acked: () => { seen.acked++; },
    identity: () => undefined,
    problem: (_pd, what) => seen.problems.push(what),
    inputs: (_pd, i) => seen.inputs.push(i),
    keySet: () => { seen.keySet++; },
  };
}

const settings = (address: number, o: Partial<PdSettings> = {}): PdSettings => ({
  address, crc: true, secure: null, readInputs: false, offlineAfter: 1500, probeEvery: 200, commandTtl: 5000, ...o,
});

let pty: PtyPair;
before(async () => { if (!SKIP_NO_SOCAT) pty = await PtyPair.open(); });
after(async () => { await pty?.close(); });

async function rig(pds: { address: number; o?: Partial<PdSettings> }[]): Promise<{ bus: Bus; links: PdLink[]; seen: Seen; sim: SimBus; stop(): Promise<void> }> {
  const seen: Seen = { reads: [], states: [], problems: [], acked: 0, inputs: [], keySet: 0 };
  const ev = events(seen);
  const links = pds.map((p) => new PdLink(settings(p.address, p.o), `pd${p.address}`, ev));
  const bus = new Bus({ path: pty.a, baud: 115200, pollInterval: 50, replyTimeout: 200, retries: 1, reopenEvery: 200 }, links, log);
  const sim = await SimBus.open(pty.b);
  return { bus, links, seen, sim, stop: async () => { await bus.stop(); await sim.close(); } };
}

test('polls every reader, turns card reads into credentials, delivers door commands', { skip: SKIP_NO_SOCAT }, async () => {
  const { bus, links, seen, sim, stop } = await rig([{ address: 1 }, { address: 2, o: { crc: false } }]);
  const r1 = sim.add(1), r2 = sim.add(2);
  bus.start();
  try {
    await waitFor(() => links.every((l) => l.online), 3000, 'both readers online');
    // the first command after connecting was POLL with sequence 0, then osdp_ID
    assert.equal(r1.received[0]!.code, CMD.POLL);
    assert.equal(r1.received[1]!.code, CMD.ID);
    await waitFor(() => r1.polls > 5 && r2.polls > 5, 3000, 'polls to both');
    r1.card(67, 1000);
    r2.fmt('067:01000');
    r2.keypad('1234');
    await waitFor(() => seen.reads.length === 3, 3000, 'three reads');
    assert.deepEqual(seen.reads.sort(), ['67:1000', '67:1000', 'pin:1234'], 'RAW H10301 67/1000 and FMT "067:01000" are the same credential');
    links[0]!.enqueue(CMD.LED, ledData(0, COLOR_GREEN, 3), Date.now(), Date.now());
    links[0]!.enqueue(CMD.OUT, outPulseData(0, 3000), Date.now());
    bus.poke();
    await waitFor(() => r1.commands(CMD.OUT).length === 1, 3000, 'OUT at the reader');
    const led = r1.commands(CMD.LED)[0]!;
    assert.equal(led.data[5], COLOR_GREEN, 'temporary on colour green');
    assert.deepEqual([...r1.commands(CMD.OUT)[0]!.data], [0, 0x05, 30, 0], 'output 0 on for 30 × 100 ms');
    assert.equal(seen.acked, 2);
    assert.equal(r2.commands(CMD.LED).length, 0, 'commands go to their reader only');
  } finally { await stop(); }
});

test('a silent reader goes offline after the configured silence and comes back', { skip: SKIP_NO_SOCAT }, async () => {
  const { bus, links, seen, sim, stop } = await rig([{ address: 3 }, { address: 4 }]);
  const r3 = sim.add(3);
  sim.add(4);
  bus.start();
  try {
    await waitFor(() => links.every((l) => l.online), 3000, 'online');
    r3.silent = true;
    const t0 = Date.now();
    await waitFor(() => !links[0]!.online, 4000, 'reader 3 offline');
    const took = Date.now() - t0;
    assert.ok(took >= 1400 && took < 3500, `offline after ${took} ms (offlineAfter 1500)`);
    assert.ok(links[1]!.online, 'the other reader stays online');
    assert.ok(bus.counters.timeouts > 0 && bus.counters.retries > 0);
    r3.silent = false;
    await waitFor(() => links[0]!.online, 3000, 'reader 3 back');
    assert.deepEqual(seen.states.filter((s) => s.startsWith('pd3')).map((s) => s.split(':')[1]), ['online', 'offline', 'online']);
    // it came back through POLL with sequence 0
    const last0 = r3.received.map((r) => r.code).lastIndexOf(CMD.POLL);
    assert.ok(last0 >= 0);
  } finally { await stop(); }
});

test('secure channel in install mode: SCBK-D, osdp_KEYSET, then a session on the new key; reads and commands encrypted', { skip: SKIP_NO_SOCAT }, async () => {
  const { bus, links, seen, sim, stop } = await rig([{ address: 5, o: { secure: { scbk: KEY, install: true } } }]);
  const r = sim.add(5, { install: true, scbk: null });
  bus.start();
  try {
    await waitFor(() => links[0]!.online, 4000, 'secure reader online');
    assert.equal(seen.keySet, 1, 'the reader was given the configured key');
    assert.deepEqual([...r.scbk!], [...KEY]);
    assert.deepEqual(r.sessions, [0, 1], 'first session on SCBK-D, then on the new SCBK');
    assert.ok(links[0]!.secure);
    r.card(12, 345);
    await waitFor(() => seen.reads.length === 1, 3000, 'secure read');
    assert.equal(seen.reads[0], '12:345');
    links[0]!.enqueue(CMD.LED, ledData(0, COLOR_GREEN, 3), Date.now());
    bus.poke();
    await waitFor(() => r.commands(CMD.LED).length === 1, 3000, 'LED');
    assert.equal(r.commands(CMD.LED)[0]!.secure, true, 'the LED command came under the secure channel');
    assert.ok(r.commands(CMD.POLL).slice(-1)[0]!.secure, 'polls carry a MAC');
  } finally { await stop(); }
});

test('secure channel with a set SCBK; a wrong key never falls back to clear text', { skip: SKIP_NO_SOCAT }, async () => {
  const { bus, links, seen, sim, stop } = await rig([
    { address: 6, o: { secure: { scbk: KEY, install: false } } },
    { address: 7, o: { secure: { scbk: KEY, install: false } } },
  ]);
  const good = sim.add(6, { scbk: KEY });
  const wrong = sim.add(7, { scbk: Uint8Array.from({ length: 16 }, () => 0x11), install: true });
  bus.start();
  try {
    await waitFor(() => links[0]!.online, 4000, 'reader 6 online');
    assert.deepEqual(good.sessions, [1]);
    await waitFor(() => seen.problems.some((p) => p.includes('handshake failed')), 3000, 'handshake failure reported');
    assert.equal(links[1]!.online, false, 'reader 7 (other key) is not used');
    assert.deepEqual(wrong.sessions, [], 'no session; install mode is not tried when the bridge is not in install mode');
    assert.equal(wrong.commands(CMD.LED).length, 0);
  } finally { await stop(); }
});
