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
import type { Transport } from '../../src/bridge/acu/transport.js';
import { PdLink, type PdEvents, type PdSettings, type PlainReply } from '../../src/bridge/acu/pd-link.js';
import { CMD, REPLY } from '../../src/bridge/osdp/codes.js';
import { buzData, COLOR_GREEN, ledData, outPulseData } from '../../src/bridge/osdp/payloads.js';
import { crc16AugCcitt } from '../../src/adapters/osdp/crc.js';
import { decodeCardRead } from '../../src/adapters/osdp/replies.js';
import { buildFormatTable } from '../../src/adapters/wiegand/formats.js';
import { PtyPair, SimBus, SKIP_NO_SOCAT, waitFor, type Received } from './sim-pd.js';
import type { Capabilities } from '../../src/bridge/osdp/capabilities.js';

const log = pino({ level: 'silent' });
const KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

interface Seen { reads: string[]; states: string[]; problems: string[]; acked: number; inputs: boolean[][]; keySet: number; caps: [number, Capabilities | null, string[]][]; refused: string[] }

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
    capabilities: (pd, caps, warnings) => { seen.caps.push([pd.address, caps, warnings]); },
    refused: (pd, why) => { seen.refused.push(`${pd.name}:${why}`); },
  };
}

const settings = (address: number, o: Partial<PdSettings> = {}): PdSettings => ({
  address, crc: true, secure: null, readInputs: false, offlineAfter: 1500, probeEvery: 200, commandTtl: 5000, ...o,
});

let pty: PtyPair;
before(async () => { if (!SKIP_NO_SOCAT) pty = await PtyPair.open(); });
after(async () => { await pty?.close(); });

async function rig(pds: { address: number; o?: Partial<PdSettings> }[]): Promise<{ bus: Bus; links: PdLink[]; seen: Seen; sim: SimBus; stop(): Promise<void> }> {
  const seen: Seen = { reads: [], states: [], problems: [], acked: 0, inputs: [], keySet: 0, caps: [], refused: [] };
  const ev = events(seen);
  const links = pds.map((p) => new PdLink(settings(p.address, p.o), `pd${p.address}`, ev));
  const bus = new Bus({ path: pty.a, baud: 115200, pollInterval: 50, replyTimeout: 200, retries: 1, reopenMin: 100, reopenMax: 400 }, links, log);
  const sim = await SimBus.open(pty.b);
  return { bus, links, seen, sim, stop: async () => { await bus.stop(); await sim.close(); } };
}

test('polls every reader, turns card reads into credentials, delivers door commands', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
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
    // the reader's ACK of OUT travels back after the command arrived: wait for it, do not assume it
    await waitFor(() => seen.acked === 2, 3000, 'both commands acknowledged');
    assert.equal(seen.acked, 2);
    assert.equal(r2.commands(CMD.LED).length, 0, 'commands go to their reader only');
  } finally { await stop(); }
});

test('a silent reader goes offline after the configured silence and comes back', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
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

test('secure channel in install mode: SCBK-D, osdp_KEYSET, then a session on the new key; reads and commands encrypted', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
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

test('secure channel with a set SCBK; a wrong key never falls back to clear text', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
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

test('discovery asks osdp_CAP and reads the reader\'s capabilities byte for byte', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
  const { bus, links, seen, sim, stop } = await rig([{ address: 8, o: { heads: [0, 1] } }]);
  const r = sim.add(8, { inputs: 3 });
  bus.start();
  try {
    await waitFor(() => links[0]!.online, 3000, 'online');
    const codes = r.received.map((x) => x.code);
    assert.deepEqual(codes.slice(0, 3), [CMD.POLL, CMD.ID, CMD.CAP], 'POLL, ID, then CAP');
    assert.deepEqual([...r.commands(CMD.CAP)[0]!.data], [0x00], 'osdp_CAP reply type 0');
    const caps = links[0]!.capabilities!;
    // the reader's reply, entry by entry: [function, compliance, items]
    const wire = [...r.caps];
    const back = Object.values(caps).flatMap((c) => [c.code, c.compliance, c.items]);
    assert.deepEqual(back, wire);
    assert.deepEqual(caps.contact_status, { code: 1, compliance: 1, items: 3 });
    assert.deepEqual(caps.communication_security, { code: 9, compliance: 1, items: 1 });
    assert.deepEqual(caps.receive_buffer, { code: 10, compliance: 0xa0, items: 0x05 });
    assert.deepEqual(seen.caps[0]![2], ['reader number 1 configured, but the PD reports 1 reader head'], 'a head the PD does not have is flagged');
    assert.equal(links[0]!.refusal, null);
  } finally { await stop(); }
});

test('secure channel asked of a reader that reports none: refused, never used, said once', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
  const { bus, links, seen, sim, stop } = await rig([{ address: 9, o: { secure: { scbk: KEY, install: false }, probeEvery: 100 } }, { address: 10 }]);
  const r = sim.add(9, { secureCapable: false });
  sim.add(10, { caps: [] });
  bus.start();
  try {
    await waitFor(() => links[1]!.online, 3000, 'the other reader online');
    await waitFor(() => r.commands(CMD.CAP).length >= 3, 3000, 'rediscovered a few times');
    assert.equal(links[0]!.online, false);
    assert.match(links[0]!.refusal!, /reports no secure channel support/);
    assert.equal(seen.refused.length, 1, 'one refusal for many discoveries');
    assert.equal(r.commands(CMD.CHLNG).length, 0, 'no handshake is tried');
    assert.equal(r.commands(CMD.POLL).filter((x) => x.secure).length, 0);
    assert.deepEqual(links[1]!.capabilities, {}, 'an empty osdp_PDCAP is no capability at all, and no refusal for a clear reader');
  } finally { await stop(); }
});

test('serial port unplugged: its readers go offline, one error line, reopened with backoff; the other bus goes on', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
  const lines: any[] = [];
  const { Writable } = await import('node:stream');
  const cap = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { for (const l of String(c).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } }));
  const pty2 = await PtyPair.open();
  const seen: Seen = { reads: [], states: [], problems: [], acked: 0, inputs: [], keySet: 0, caps: [], refused: [] };
  const ev = events(seen);
  const l1 = new PdLink(settings(11), 'pd11', ev), l2 = new PdLink(settings(12), 'pd12', ev);
  const b1 = new Bus({ path: pty.a, baud: 115200, pollInterval: 50, replyTimeout: 200, retries: 1, reopenMin: 100, reopenMax: 400 }, [l1], cap);
  const b2 = new Bus({ path: pty2.a, baud: 115200, pollInterval: 50, replyTimeout: 200, retries: 1, reopenMin: 100, reopenMax: 400 }, [l2], cap);
  const s1 = await SimBus.open(pty.b);
  let s2 = await SimBus.open(pty2.b);
  const r1 = s1.add(11);
  s2.add(12);
  b1.start(); b2.start();
  try {
    await waitFor(() => l1.online && l2.online, 3000, 'both online');
    await pty2.unplug();
    await waitFor(() => !l2.online && !b2.portOpen, 3000, 'reader 12 offline with its port');
    assert.ok(l1.online, 'the other bus is unaffected');
    await waitFor(() => b2.counters.openFailures >= 4, 5000, 'a few reopen attempts');
    const errs = lines.filter((l) => l.level >= 50 && l.port === pty2.a);
    assert.deepEqual(errs.map((l) => l.msg), ['serial port lost; its readers are offline, reopening'], 'one error line for the outage');
    assert.ok(lines.filter((l) => l.msg === 'cannot open serial port; retrying').every((l) => l.level === 20), 'failed reopens at debug level');
    // the backoff: delays double from 100 ms to the 400 ms cap, each drawn from the upper half of its range
    const tries = lines.filter((l) => l.msg === 'cannot open serial port; retrying' && l.port === pty2.a).map((l) => l.time as number);
    assert.ok(tries[1]! - tries[0]! >= 99, `first gap ${tries[1]! - tries[0]!} ms (at least 100)`);
    assert.ok(tries[3]! - tries[2]! >= 199, `later gap ${tries[3]! - tries[2]!} ms (at least 200)`);
    const polls = r1.polls;
    r1.card(67, 1000);
    await waitFor(() => seen.reads.length === 1, 3000, 'a read on the other bus');
    assert.ok(r1.polls > polls);
    await pty2.replug();
    s2.close().catch(() => undefined);
    s2 = await SimBus.open(pty2.b);
    s2.add(12);
    await waitFor(() => l2.online && b2.portOpen, 5000, 'reader 12 back on the new device');
    assert.ok(lines.some((l) => l.msg === 'serial port back' && l.port === pty2.a));
    assert.deepEqual(seen.states.filter((s) => s.startsWith('pd12')).map((s) => s.split(':')[1]), ['online', 'offline', 'online']);
    assert.equal(b2.counters.closes, 1);
    assert.equal(seen.states.filter((s) => s.startsWith('pd11')).length, 1, 'reader 11 never went offline');
  } finally { await b1.stop(); await b2.stop(); await s1.close(); await s2.close(); await pty2.close(); }
});

test('a card read with a bad CRC is asked for again and arrives once; a reader that lost the sequence is restarted, not dropped', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
  const { bus, links, seen, sim, stop } = await rig([{ address: 13 }]);
  const r = sim.add(13);
  bus.start();
  try {
    await waitFor(() => links[0]!.online, 3000, 'online');
    r.corruptReads = 1;
    r.card(67, 1000);
    await waitFor(() => seen.reads.length === 1, 3000, 'the read');
    const polls = r.polls;
    await waitFor(() => r.polls > polls + 5, 3000, 'more polls');
    assert.deepEqual(seen.reads, ['67:1000'], 'once: the resent poll got the reader\'s repeat, not a second read');
    assert.equal(bus.counters.badChecks, 1, 'the damaged frame was counted');
    assert.ok(bus.counters.retries >= 1 && bus.counters.timeouts >= 1);

    const before = r.received.length;
    r.nakSequenceNext = true;
    r.card(67, 2000);
    await waitFor(() => seen.reads.length === 2, 3000, 'the read after the restart');
    assert.equal(seen.reads[1], '67:2000', 'the card waited in the reader');
    assert.ok(seen.problems.includes('reconnecting: reader lost the sequence'), seen.problems.join('; '));
    // the card may come with the answer to that first poll, before discovery is over
    await waitFor(() => r.received.slice(before).some((x) => x.code === CMD.CAP), 3000, 'discovery again');
    const after = r.received.slice(before);
    const restart = after.findIndex((x) => x.code === CMD.POLL && x.sqn === 0);
    assert.ok(restart >= 0, 'POLL with sequence 0');
    assert.deepEqual(after.slice(restart, restart + 3).map((x) => x.code), [CMD.POLL, CMD.ID, CMD.CAP], 'then discovery again');
    assert.deepEqual(seen.states, ['pd13:online:connected in clear text'], 'never reported offline');
  } finally { await stop(); }
});

test('door commands on the wire, byte for byte', { skip: SKIP_NO_SOCAT, timeout: 60_000 }, async () => {
  const { bus, links, sim, stop } = await rig([{ address: 14 }]);
  const r = sim.add(14);
  bus.start();
  try {
    await waitFor(() => links[0]!.online, 3000, 'online');
    links[0]!.enqueue(CMD.LED, ledData(1, COLOR_GREEN, 3), Date.now());
    links[0]!.enqueue(CMD.BUZ, buzData(1, 3, 2, 2), Date.now());
    links[0]!.enqueue(CMD.OUT, outPulseData(2, 1500), Date.now());
    bus.poke();
    await waitFor(() => r.commands(CMD.OUT).length === 1, 3000, 'the three commands');
    const wire = (code: number): Received => r.commands(code)[0]!;
    // SOM, address, LEN (LSB, MSB), CTRL (sequence | 0x04 CRC), code, data, CRC-16 (LSB, MSB)
    const expect = (x: Received, len: number, code: number, data: number[]): void => {
      const head = [0x53, 14, len, 0, x.sqn | 0x04, code, ...data];
      const crc = crc16AugCcitt(Uint8Array.from(head), 0, head.length);
      assert.deepEqual([...x.raw], [...head, crc & 0xff, crc >> 8], `0x${code.toString(16)}`);
    };
    // osdp_LED: reader 1, LED 0; temporary: set (2), on 1 × 100 ms, off 0, green, green, timer 30 × 100 ms; permanent: no change
    expect(wire(CMD.LED), 22, 0x69, [1, 0, 0x02, 1, 0, 2, 2, 30, 0, 0, 0, 0, 0, 0]);
    // osdp_BUZ: reader 1, default tone 2, on 3 × 100 ms, off 2 × 100 ms, 2 times
    expect(wire(CMD.BUZ), 13, 0x6a, [1, 2, 3, 2, 2]);
    // osdp_OUT: output 2, temporary on (5), 15 × 100 ms
    expect(wire(CMD.OUT), 12, 0x68, [2, 5, 15, 0]);
    const seq = [CMD.LED, CMD.BUZ, CMD.OUT].map((c) => wire(c).sqn);
    assert.deepEqual(seq.map((s, i) => (i ? (seq[i - 1]! % 3) + 1 === s : s >= 1)), [true, true, true], `sequence numbers advance 1, 2, 3, 1: ${seq}`);
  } finally { await stop(); }
});

test('a device that never takes a write: the port is dropped and reopened, and stop() still returns', { timeout: 60_000 }, async () => {
  const lines: any[] = [];
  const { Writable } = await import('node:stream');
  const cap = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { for (const l of String(c).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } }));
  let opens = 0, closes = 0;
  const hung = async (): Promise<Transport> => {
    opens++;
    return { write: () => new Promise<void>(() => undefined), onData: () => undefined, onClose: () => undefined, close: async () => { closes++; } };
  };
  const seen: Seen = { reads: [], states: [], problems: [], acked: 0, inputs: [], keySet: 0, caps: [], refused: [] };
  const l = new PdLink(settings(15), 'pd15', events(seen));
  const bus = new Bus({ path: '/dev/hung', baud: 9600, pollInterval: 50, replyTimeout: 200, retries: 1, reopenMin: 100, reopenMax: 400 }, [l], cap, hung);
  bus.start();
  await waitFor(() => bus.counters.closes >= 2, 10_000, 'two stuck writes detected');
  await bus.stop();
  assert.ok(opens >= 2 && closes >= 2, `opened ${opens}, closed ${closes}`);
  const lost = lines.filter((x) => x.msg === 'serial port lost; its readers are offline, reopening');
  assert.ok(lost.length >= 2);
  assert.match(lost[0].err, /not taken within 2000 ms \(device hangs\)/);
});
