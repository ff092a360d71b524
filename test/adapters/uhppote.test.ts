/**
 * UHPPOTE: the event packet of the public uhppoted sources, round trips,
 * local time in the site's zone, mapping to canonical offline messages, and
 * a real UDP listener on 127.0.0.1 fed by a dgram client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import fc from 'fast-check';
import { decodeEventPacket, encodeEventPacket, TYPE_DOOR, TYPE_SWIPE, type UhppoteEvent } from '../../src/adapters/uhppote/packet.js';
import { localToUtc } from '../../src/adapters/uhppote/local-time.js';
import { cardToCred, mapEvent } from '../../src/adapters/uhppote/map.js';
import { startUhppoteListener } from '../../src/adapters/uhppote-listener.js';
import type { ApbError } from '../../src/errors.js';
import { adapterSite, apbError, hexBytes } from './util.js';

/** uhppote-core messages/events_test.go TestUnmarshalEvent */
const UHPPOTED_EVENT = hexBytes(`
  17 20 00 00 2d 55 39 19 39 00 00 00 01 00 03 01
  aa e8 5d 00 20 19 04 19 17 00 09 06 01 00 01 01
  00 00 01 01 09 14 37 02 11 00 00 00 21 00 00 00
  2b 04 01 19 04 20 00 00 93 26 04 88 08 92 00 00`);

test('the uhppoted event vector decodes field by field', () => {
  const ev = decodeEventPacket(UHPPOTED_EVENT);
  assert.deepEqual(ev, {
    som: 0x17, serial: 423187757, index: 57, type: TYPE_SWIPE, granted: false, door: 3, direction: 1, card: 6154410,
    time: { year: 2019, month: 4, day: 19, hour: 17, minute: 0, second: 9 }, reason: 6,
  });
  const v662 = Uint8Array.from(UHPPOTED_EVENT); v662[0] = 0x19;
  assert.equal(decodeEventPacket(v662).som, 0x19);
  // our encoder writes the same bytes for the fields it knows (0-27)
  assert.deepEqual([...encodeEventPacket(ev).subarray(0, 28)], [...UHPPOTED_EVENT.subarray(0, 28)]);
  assert.equal(cardToCred(ev.card), '61:54410');
});

const timeArb = fc.record({ year: fc.integer({ min: 2000, max: 2099 }), month: fc.integer({ min: 1, max: 12 }), day: fc.integer({ min: 1, max: 28 }),
  hour: fc.integer({ min: 0, max: 23 }), minute: fc.integer({ min: 0, max: 59 }), second: fc.integer({ min: 0, max: 59 }) });
const eventArb: fc.Arbitrary<UhppoteEvent> = fc.record({
  som: fc.constantFrom(0x17, 0x19), serial: fc.nat({ max: 0xffffffff }), index: fc.nat({ max: 0xffffffff }), type: fc.constant(TYPE_SWIPE),
  granted: fc.boolean(), door: fc.integer({ min: 1, max: 4 }), direction: fc.constantFrom(1, 2), card: fc.nat({ max: 0xffffffff }),
  time: timeArb, reason: fc.nat({ max: 255 }),
});

test('encode → decode round trip for any swipe event', () => {
  fc.assert(fc.property(eventArb, (ev) => { assert.deepEqual(decodeEventPacket(encodeEventPacket(ev)), { ...ev, time: { ...ev.time! } }); }), { numRuns: 500 });
});

test('malformed packets are refused with bad_uhppote naming the field', () => {
  const good = encodeEventPacket({ serial: 1, index: 1, type: TYPE_SWIPE, granted: true, door: 1, direction: 1, card: 1, time: { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 59 }, reason: 1 });
  const mut = (at: number, v: number) => { const b = Uint8Array.from(good); b[at] = v; return b; };
  const cases: [unknown, RegExp][] = [
    ['x', /^packet: not binary/],
    [good.subarray(0, 63), /^length: 63 bytes, an event packet is 64/],
    [Uint8Array.of(...good, 0), /^length: 65 bytes/],
    [mut(0, 0x18), /^SOM: 0x18/],
    [mut(1, 0x94), /^function code 0x94 is not an event/],
    [mut(13, 2), /^granted: byte 13 is 0x02/],
    [mut(14, 5), /^door: 5, expected 1-4/],
    [mut(15, 3), /^direction: 3/],
    [mut(22, 0x13), /^event time: month 13/],
    [mut(23, 0x30), /^event time: day 30 is not in 2024-02/],
    [mut(24, 0x2a), /^event time: byte 24 \(0x2a\) is not BCD/],
    [mut(25, 0x60), /^event time: time 23:60:59/],
  ];
  for (const [input, re] of cases) {
    const e = apbError(() => decodeEventPacket(input));
    assert.equal(e.code, 'bad_uhppote');
    assert.match(e.message, re);
  }
  // non-swipe events are not checked for door/time: they are ignored, not applied
  const door = mut(12, TYPE_DOOR); door[14] = 0; door[22] = 0;
  assert.equal(decodeEventPacket(door).time, null);
});

test('local time → UTC in the site zone, DST edges included', () => {
  assert.equal(localToUtc('UTC', 2019, 4, 19, 17, 0, 9), Date.UTC(2019, 3, 19, 17, 0, 9));
  assert.equal(localToUtc('Europe/London', 2019, 4, 19, 17, 0, 9), Date.UTC(2019, 3, 19, 16, 0, 9));
  assert.equal(localToUtc('America/New_York', 2024, 1, 15, 8, 0, 0), Date.UTC(2024, 0, 15, 13, 0, 0));
  // 01:30 happens twice on 2024-10-27 in London: the first (BST) is chosen
  assert.equal(localToUtc('Europe/London', 2024, 10, 27, 1, 30, 0), Date.UTC(2024, 9, 27, 0, 30, 0));
  // 01:30 does not exist on 2024-03-31: the first instant after the gap (01:00 UTC = 02:00 BST)
  assert.equal(localToUtc('Europe/London', 2024, 3, 31, 1, 30, 0), Date.UTC(2024, 2, 31, 1, 0, 0));
  assert.equal(localToUtc('Asia/Kolkata', 2024, 6, 1, 0, 0, 0), Date.UTC(2024, 4, 31, 18, 30, 0));
  assert.equal(apbError(() => localToUtc('Mars/Base', 2024, 1, 1, 0, 0, 0)).code, 'invalid_config');
});

const site = adapterSite({
  timezone: 'Europe/London',
  controllers: [{ id: 'uh-1', token: 't-long-test-token', protocol: 'uhppote', serial: 423187757 }, { id: 'native-1', token: 'n-long-test-token', protocol: 'native', serial: 5 }],
  readers: [
    { id: 'gate-in', from: 'outside', to: 'b', controller: 'uh-1', reuseLockout: 0, reuseMode: 'hard', uhppote: { door: 3, direction: 'in' } },
    { id: 'gate-out', from: 'b', to: 'outside', controller: 'uh-1', reuseLockout: 0, reuseMode: 'hard', uhppote: { door: 3, direction: 'out' } },
  ],
});

test('a swipe maps to a canonical offline message of the controller with that serial', () => {
  const ev = decodeEventPacket(UHPPOTED_EVENT);
  assert.deepEqual(mapEvent(ev, site), {
    controller: 'uh-1',
    msg: { t: 'offline', id: 57, cred: '61:54410', reader: 'gate-in', ts: Date.UTC(2019, 3, 19, 16, 0, 9), granted: false },
  });
  assert.equal(mapEvent({ ...ev, direction: 2, granted: true }, site)!.msg.reader, 'gate-out');
  assert.equal(mapEvent({ ...ev, door: 4 }, site)!.msg.reader, 'uhppote:423187757:4:in');
  assert.equal(mapEvent({ ...ev, type: TYPE_DOOR }, site), null);
  assert.match(apbError(() => mapEvent({ ...ev, serial: 5 }, site)).message, /no uhppote controller in the site has serial 5/);
});

test('UDP listener on 127.0.0.1: swipes reach onEvent, malformed packets reach onMalformed, others are ignored', async () => {
  const events: [string, Record<string, unknown>][] = [];
  const bad: [ApbError, string][] = [];
  let expected = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => { done = r; });
  const check = () => { if (events.length + bad.length >= expected) done(); };
  const listener = await startUhppoteListener({
    host: '127.0.0.1', port: 0, site: () => site,
    onEvent: (c, m) => { events.push([c, m]); check(); },
    onMalformed: (e, from) => { bad.push([e, from]); check(); },
  });
  assert.ok(listener.port > 0);
  const client = createSocket('udp4');
  try {
    const base = decodeEventPacket(UHPPOTED_EVENT);
    const packets = [
      UHPPOTED_EVENT,
      encodeEventPacket({ ...base, index: 58, direction: 2, granted: true }),
      encodeEventPacket({ ...base, index: 59, type: TYPE_DOOR }),          // ignored
      UHPPOTED_EVENT.subarray(0, 40),                                      // malformed
      encodeEventPacket({ ...base, index: 60, serial: 77 }),               // unknown controller
    ];
    expected = 4;
    for (const p of packets) await new Promise<void>((res, rej) => client.send(p, listener.port, '127.0.0.1', (err) => (err ? rej(err) : res())));
    const timer = setTimeout(done, 5000);
    await all;
    clearTimeout(timer);
    // the ignored packet may arrive after the others: wait until every datagram is counted (bounded)
    for (let i = 0; i < 100 && listener.stats().received < packets.length; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events.map(([c, m]) => [c, m.id, m.reader, m.cred, m.granted]), [['uh-1', 57, 'gate-in', '61:54410', false], ['uh-1', 58, 'gate-out', '61:54410', true]]);
    assert.deepEqual(bad.map(([e]) => [e.code, e.message.split(':')[0]]), [['bad_uhppote', 'length'], ['bad_uhppote', 'serial']]);
    assert.match(bad[0]![1], /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(listener.stats(), { received: 5, events: 2, ignored: 1, malformed: 2, rejected: 0 });
  } finally {
    client.close();
    await listener.close();
    await listener.close(); // idempotent
  }
});

test('cached local-time conversion equals the exact Zone conversion, transitions included', async () => {
  const { Zone } = await import('../../src/config/tz.js');
  const zones = ['Europe/London', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/Sao_Paulo', 'UTC'];
  const exact = new Map(zones.map((z) => [z, new Zone(z)]));
  // random wall times, plus every 5 minutes around this year's transitions
  const walls: [string, number][] = [];
  for (const z of zones) {
    for (const t of exact.get(z)!.transitions(Date.UTC(2024, 0, 1), Date.UTC(2025, 0, 1))) {
      const w = exact.get(z)!.wall(t);
      for (let d = -90; d <= 90; d += 5) walls.push([z, Math.floor((w + d * 60_000) / 1000) * 1000]);
    }
  }
  fc.assert(fc.property(fc.constantFrom(...zones), fc.integer({ min: Date.UTC(2020, 0, 1) / 1000, max: Date.UTC(2030, 0, 1) / 1000 }), (z, s) => {
    walls.push([z, s * 1000]);
  }), { numRuns: 300 });
  assert.ok(walls.length > 300);
  // twice: the first pass fills the caches, the second reads them
  for (let pass = 0; pass < 2; pass++) {
    for (const [z, w] of walls) {
      const d = new Date(w);
      const got = localToUtc(z, d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds());
      assert.equal(got, exact.get(z)!.instantOf(w), `${z} ${d.toISOString()} pass ${pass}`);
    }
  }
});
