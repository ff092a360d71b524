/**
 * Fuzzing every decoder with random and mutated inputs: nothing but an
 * ApbError with an expected code ever escapes, and every input is either a
 * well-formed result or a typed refusal. Mutations of valid OSDP packets
 * (any single bit flip, truncation, extension) must always be refused: the
 * CRC and checksum catch every single-bit error and LEN every size change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApbError } from '../../src/errors.js';
import { adapterFor } from '../../src/adapters/index.js';
import { buildPacket, parsePacket } from '../../src/adapters/osdp/packet.js';
import { decodeCardRead } from '../../src/adapters/osdp/replies.js';
import { buildFormatTable, BUILTIN_FORMATS } from '../../src/adapters/wiegand/formats.js';
import { encodeRead } from '../../src/adapters/wiegand/encode.js';
import { decodeEventPacket, encodeEventPacket, TYPE_SWIPE } from '../../src/adapters/uhppote/packet.js';
import { mapEvent } from '../../src/adapters/uhppote/map.js';
import { adapterSite } from './util.js';

const RUNS = 2000;
const site = adapterSite({
  timezone: 'Europe/Paris',
  wiegandFormats: [{ name: 'site30', bits: 30, facility: { start: 1, length: 12 }, card: { start: 13, length: 16 }, parity: [{ bit: 0, covers: [1, 14], kind: 'even' }, { bit: 29, covers: [15, 28], kind: 'odd' }] }],
  controllers: [{ id: 'c', token: 't-long-test-token', protocol: 'uhppote', serial: 1234 }],
  readers: [{ id: 'r', from: 'outside', to: 'a', controller: 'c', reuseLockout: 0, reuseMode: 'hard', osdp: { address: 1, reader: 0 }, uhppote: { door: 1, direction: 'in' } }],
});
const ctx = { site, controller: 'c' };
const table = buildFormatTable(site.config.wiegandFormats);

/** runs f: returns its value, or the ApbError's code; any other throw fails the property */
function outcome<T>(f: () => T, allowed: string[]): T | string {
  try { return f(); } catch (e) {
    if (!(e instanceof ApbError)) throw new Error(`non-ApbError escaped: ${e instanceof Error ? e.stack : String(e)}`);
    assert.ok(allowed.includes(e.code), `unexpected code ${e.code}: ${e.message}`);
    assert.ok(e.message.length > 5, 'the message says what is wrong');
    return e.code;
  }
}

const WIEGAND_CODES = ['bad_message', 'bad_parity', 'unknown_format'];
const OSDP_CODES = ['bad_message', 'bad_osdp', 'unsupported_secure_channel', 'bad_parity', 'unknown_format'];

test('wiegand adapter: random messages', () => {
  const wiegand = adapterFor('wiegand');
  const names = [...BUILTIN_FORMATS.map((f) => f.name), 'site30', 'nope'];
  const msg = fc.record({
    t: fc.constantFrom('badge', 'passage', 'offline'),
    raw: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.anything(), fc.record({ hex: fc.string() })),
    bits: fc.oneof(fc.integer({ min: -5, max: 300 }), fc.anything()),
    format: fc.option(fc.oneof(fc.constantFrom(...names), fc.anything()), { nil: undefined }),
  }, { requiredKeys: ['t'] });
  fc.assert(fc.property(msg, (m) => {
    const r = outcome(() => wiegand.toCanonical({ id: 1, reader: 'r', ...m } as Record<string, unknown>, ctx), WIEGAND_CODES);
    if (typeof r !== 'string') assert.match(String(r.cred), /^\d+:\d+$/);
  }), { numRuns: RUNS });
});

test('wiegand decode: valid reads with random bit flips, truncation and extension', () => {
  const wiegand = adapterFor('wiegand');
  const formats = [...table.all];
  fc.assert(fc.property(fc.nat(formats.length - 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }),
    fc.array(fc.nat(300), { maxLength: 4 }), fc.integer({ min: -16, max: 16 }), (fi, a, b, flips, resize) => {
      const f = formats[fi]!;
      const fac = f.facility ? Math.floor(a * (2 ** Math.min(f.facility.length, 40) - 1)) : 0;
      const { raw } = encodeRead(f, fac, Math.floor(b * (2 ** Math.min(f.card.length, 40) - 1)));
      const bad = Uint8Array.from(raw);
      for (const p of flips) if (p < f.bits) bad[p >> 3]! ^= 0x80 >> (p & 7);
      const bits = Math.max(0, f.bits + resize);
      const sized = new Uint8Array((bits + 7) >> 3);
      sized.set(bad.subarray(0, sized.length));
      outcome(() => wiegand.toCanonical({ t: 'badge', id: 1, reader: 'r', raw: sized, bits }, ctx), WIEGAND_CODES);
      outcome(() => wiegand.toCanonical({ t: 'badge', id: 1, reader: 'r', raw: bad, bits: f.bits, format: f.name }, ctx), WIEGAND_CODES);
    }), { numRuns: RUNS });
});

test('osdp: random bytes and random packets', () => {
  const osdp = adapterFor('osdp');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
    outcome(() => osdp.toCanonical({ t: 'osdp', id: 1, packet: bytes }, ctx), OSDP_CODES);
    // the same bytes framed as a valid reply: only the reply's content can be wrong
    const code = [0x50, 0x51, 0x53, 0x40, bytes[0] ?? 0][bytes.length % 5]!;
    const pkt = buildPacket({ address: bytes.length & 0x7f, reply: true, sqn: bytes.length & 3, crc: (bytes.length & 1) === 0, code, data: bytes });
    const r = outcome(() => osdp.toCanonical({ t: 'osdp', id: 1, packet: pkt }, ctx), OSDP_CODES);
    if (typeof r === 'string') assert.notEqual(r, 'unsupported_secure_channel');
    else assert.equal(r.t, 'badge');
  }), { numRuns: RUNS });
  outcome(() => osdp.toCanonical({ t: 'osdp', id: 1, packet: 5 }, ctx), ['bad_message']);
});

test('osdp: every single-bit flip, truncation or extension of a valid packet is refused', () => {
  const reads = [
    Uint8Array.of(0, 1, 26, 0, ...encodeRead(table.byName.get('h10301')!, 67, 1000).raw),
    Uint8Array.of(0, 0, 5, 0x31, 0x32, 0x33, 0x34, 0x35),
    Uint8Array.of(0, 4, 0x31, 0x32, 0x33, 0x34),
  ];
  fc.assert(fc.property(fc.nat(2), fc.boolean(), fc.nat(3), fc.nat(1000), fc.integer({ min: 1, max: 8 }), fc.uint8Array({ minLength: 1, maxLength: 8 }),
    (ri, crc, sqn, where, cut, extra) => {
      const pkt = buildPacket({ address: 1, reply: true, sqn, crc, code: [0x50, 0x51, 0x53][ri]!, data: reads[ri]! });
      const ok = adapterFor('osdp').toCanonical({ t: 'osdp', id: 1, packet: pkt }, ctx);
      assert.equal(ok.reader, 'r');
      const bit = where % (pkt.length * 8);
      const flipped = Uint8Array.from(pkt); flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
      assert.equal(typeof outcome(() => parsePacket(flipped), OSDP_CODES), 'string', `flip of bit ${bit} went through`);
      assert.equal(outcome(() => parsePacket(pkt.subarray(0, Math.max(0, pkt.length - cut))), OSDP_CODES), 'bad_osdp');
      assert.equal(outcome(() => parsePacket(Uint8Array.of(...pkt, ...extra)), OSDP_CODES), 'bad_osdp');
      // leading mark bytes are legal
      assert.equal(decodeCardRead(parsePacket(Uint8Array.of(0xff, ...pkt)), table).reader, 0);
    }), { numRuns: RUNS });
});

test('uhppote: random and mutated packets', () => {
  const base = encodeEventPacket({ serial: 1234, index: 9, type: TYPE_SWIPE, granted: true, door: 1, direction: 1, card: 6154410, time: { year: 2025, month: 3, day: 30, hour: 2, minute: 30, second: 0 }, reason: 1 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.array(fc.tuple(fc.nat(63), fc.nat(255)), { maxLength: 6 }), (bytes, muts) => {
    outcome(() => mapEvent(decodeEventPacket(bytes), site), ['bad_uhppote']);
    const m = Uint8Array.from(base);
    for (const [at, v] of muts) m[at] = v;
    const r = outcome(() => mapEvent(decodeEventPacket(m), site), ['bad_uhppote']);
    if (r !== null && typeof r !== 'string') {
      assert.equal(r.controller, 'c');
      assert.equal(r.msg.t, 'offline');
      assert.ok(Number.isSafeInteger(r.msg.ts));
      assert.match(String(r.msg.cred), /^\d+:\d+$/);
    }
  }), { numRuns: RUNS });
});
