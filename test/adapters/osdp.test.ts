/**
 * OSDP: every public packet vector, the CRC/checksum known values, card-read
 * replies (RAW through the Wiegand formats, FMT, KEYPPAD), reader matching,
 * the LED/BUZ command packets and every refusal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checksum8, crc16AugCcitt } from '../../src/adapters/osdp/crc.js';
import { buildPacket, parsePacket } from '../../src/adapters/osdp/packet.js';
import { decodeCardRead } from '../../src/adapters/osdp/replies.js';
import { CMD_BUZ, CMD_LED, decisionCommands, nextSqn, resequence } from '../../src/adapters/osdp/commands.js';
import { buildFormatTable } from '../../src/adapters/wiegand/formats.js';
import { bitStringToBytes, bytesToBitString } from '../../src/adapters/wiegand/bits.js';
import { adapterFor } from '../../src/adapters/index.js';
import { adapterSite, apbError, hexBytes, loadVectors, toHex } from './util.js';

const V = loadVectors('osdp');
const T = buildFormatTable();

test('CRC-16/AUG-CCITT and the checksum: known values', () => {
  assert.equal(crc16AugCcitt(new TextEncoder().encode('123456789')), 0xe5cc);
  assert.equal(crc16AugCcitt(new Uint8Array(0)), 0x1d0f);
  // from the vectors: POLL to 0x65 (libosdp) and to 0 (OSDP.Net), CRC sent low byte first
  assert.equal(crc16AugCcitt(hexBytes('53 65 08 00 04 60')), 0x9060);
  assert.equal(crc16AugCcitt(hexBytes('53 00 08 00 06 60')), 0xcc89);
  assert.equal(checksum8(hexBytes('53 00 07 00 02 60')), 0x44);
  const b = hexBytes('53 00 07 00 02 60 44');
  assert.equal(b.reduce((s, x) => s + x, 0) & 0xff, 0, 'a packet with its checksum sums to 0 mod 256');
});

test('every valid public vector parses to its address, direction, sequence, check and code', () => {
  assert.ok(V.valid.length >= 6);
  for (const v of V.valid) {
    const p = parsePacket(hexBytes(v.hex));
    assert.equal(p.address, v.addr, v.hex);
    assert.equal(p.reply, v.reply, v.hex);
    assert.equal(p.sqn, v.seq, v.hex);
    assert.equal(p.crc, v.check === 'crc', v.hex);
    assert.equal(p.code, parseInt(v.code.split(' ')[0], 16), v.hex);
    if (v.data) assert.equal(toHex(p.data), v.data.toLowerCase().replace(/\s/g, ''));
    // building the same fields gives back the same bytes (mark byte aside)
    const rebuilt = buildPacket({ address: p.address, reply: p.reply, sqn: p.sqn, crc: p.crc, code: p.code, data: p.data });
    assert.equal(toHex(rebuilt), toHex(hexBytes(v.hex)).replace(/^(ff)+/, ''));
    if (v.raw) {
      const read = decodeCardRead(p, T);
      assert.equal(read.reader, v.raw.reader);
      assert.equal(read.cred, `${v.raw.wiegand.facility}:${v.raw.wiegand.card}`);
      assert.equal(p.data[1], v.raw.format);
      assert.equal(p.data[2]! | (p.data[3]! << 8), v.raw.bitCount);
      assert.equal(toHex(p.data.subarray(4)), v.raw.data.toLowerCase());
    } else if (v.reply) {
      const e = apbError(() => decodeCardRead(p, T));
      assert.equal(e.code, 'bad_osdp');
      assert.match(e.message, /reply code 0x40 \(osdp_ACK\) is not a card read/);
    } else {
      const e = apbError(() => decodeCardRead(p, T));
      assert.equal(e.code, 'bad_osdp');
      assert.match(e.message, /reply bit 0x80 is clear/);
    }
  }
});

test('every invalid public vector is refused with bad_osdp naming the CRC', () => {
  assert.ok(V.invalid.length >= 2, 'the invalid vectors are loaded');
  for (const v of V.invalid) {
    const e = apbError(() => parsePacket(hexBytes(v.hex)));
    assert.equal(e.code, 'bad_osdp');
    assert.match(e.message, /^CRC: packet has 0x0000, expected 0x[0-9A-F]{4}$/);
  }
});

test('the public osdp_RAW payload: reader 5, 16 raw bits; decoded only with a 16-bit format', () => {
  assert.ok(V.payloads.length >= 1, 'the payload vectors are loaded');
  for (const v of V.payloads) {
    const pkt = parsePacket(buildPacket({ address: 3, reply: true, sqn: 1, crc: true, code: 0x50, data: hexBytes(v.hex) }));
    assert.equal(pkt.data[0], v.reader);
    assert.equal(pkt.data[1], v.format);
    const bits = pkt.data[2]! | (pkt.data[3]! << 8);
    assert.equal(bits, v.bitCount);
    assert.equal(bytesToBitString(pkt.data.subarray(4), bits), v.bits);
    const e = apbError(() => decodeCardRead(pkt, T));
    assert.equal(e.code, 'unknown_format');
    assert.match(e.message, /^osdp_RAW: bits: no Wiegand format reads 16 bits/);
    // a site format of 16 bits (no parity) reads it: card = the 16 bits
    const table = buildFormatTable([{ name: 'raw16', bits: 16, card: { start: 0, length: 16 }, parity: [] }]);
    assert.deepEqual(decodeCardRead(pkt, table), { reader: 5, cred: `0:${parseInt(v.bits, 2)}`, kind: 'raw' });
  }
});

const reply = (code: number, data: Uint8Array, opts: { address?: number; sqn?: number; crc?: boolean } = {}) =>
  buildPacket({ address: opts.address ?? 1, reply: true, sqn: opts.sqn ?? 1, crc: opts.crc ?? true, code, data });
const ascii = (s: string) => new TextEncoder().encode(s);

test('osdp_FMT and osdp_KEYPPAD credentials', () => {
  const fmt = (s: string) => decodeCardRead(parsePacket(reply(0x51, Uint8Array.of(0, 0, s.length, ...ascii(s)))), T).cred;
  assert.equal(fmt('0001000'), '0:1000');
  assert.equal(fmt('067:01000'), '67:1000');
  assert.equal(fmt('TICKET-42'), 'TICKET-42');
  const kp = decodeCardRead(parsePacket(reply(0x53, Uint8Array.of(2, 6, 0x31, 0x32, 0x33, 0x34, 0x7f, 0x0d))), T);
  assert.deepEqual(kp, { reader: 2, cred: 'pin:1234*#', kind: 'keypad' });
});

test('malformed packets and replies: each refusal says what is wrong', () => {
  const good = reply(0x50, hexBytes('00 01 1a 00 a1 81 f4 40'));
  const withCrcFix = (b: Uint8Array) => { const c = crc16AugCcitt(b, 0, b.length - 2); b[b.length - 2] = c & 0xff; b[b.length - 1] = c >> 8; return b; };
  const cases: [Uint8Array | unknown, string, RegExp][] = [
    ['53', 'bad_message', /^packet: must be binary/],
    [new Uint8Array(0), 'bad_osdp', /^packet: empty/],
    [hexBytes('ff ff'), 'bad_osdp', /only 0xFF mark bytes/],
    [hexBytes('54 81 08 00 05 40 00 00'), 'bad_osdp', /^SOM: expected 0x53, got 0x54/],
    [hexBytes('53 81 08'), 'bad_osdp', /shorter than the 5-byte header/],
    [good.subarray(0, good.length - 1), 'bad_osdp', /^length: LEN says 16 bytes, the packet has 15/],
    [Uint8Array.of(...good, 0), 'bad_osdp', /^length: LEN says 16 bytes, the packet has 17/],
    [hexBytes('53 81 07 00 05 40 00'), 'bad_osdp', /too short .* 2-byte CRC \(8 at least\)/],
    [Uint8Array.of(...good.subarray(0, 15), good[15]! ^ 1), 'bad_osdp', /^CRC: packet has 0x[0-9A-F]{4}, expected 0x[0-9A-F]{4}$/],
    [hexBytes('53 00 07 00 02 60 45'), 'bad_osdp', /^checksum: packet has 0x45, expected 0x44$/],
    [withCrcFix(hexBytes('53 81 0c 00 0d 02 01 50 00 00 00 00')), 'unsupported_secure_channel', /security block type 0x01 present: OSDP secure channel \(SCP\) is not supported/],
    [withCrcFix(hexBytes('53 81 09 00 0d 01 50 00 00')), 'bad_osdp', /SEC_BLK_LEN 1 is below 2/],
  ];
  for (const [input, code, re] of cases) {
    const e = apbError(() => parsePacket(input));
    assert.equal(e.code, code, `${input instanceof Uint8Array ? toHex(input) : String(input)}: ${e.message}`);
    assert.match(e.message, re);
  }
  const reads: [Uint8Array, string, RegExp][] = [
    [reply(0x50, hexBytes('00 01 1a')), 'bad_osdp', /^osdp_RAW: 3 data bytes, the header needs 4/],
    [reply(0x50, hexBytes('00 01 00 00')), 'bad_osdp', /^osdp_RAW: bit count is 0/],
    [reply(0x50, hexBytes('00 07 1a 00 a1 81 f4 40')), 'bad_osdp', /format code 0x07 is neither/],
    [reply(0x50, hexBytes('00 01 1a 00 a1 81 f4')), 'bad_osdp', /^osdp_RAW raw: 26 bits take 4 bytes, raw has 3/],
    [reply(0x50, hexBytes('00 01 1a 00 a1 81 f4 41')), 'bad_osdp', /^osdp_RAW raw: the 6 padding bits after bit 25 must be zero/],
    [reply(0x50, hexBytes('00 01 1a 00 21 81 f4 40')), 'bad_parity', /^osdp_RAW: H10301: even parity bit 0/],
    [reply(0x51, Uint8Array.of(0, 0, 3, 0x31, 0x32)), 'bad_osdp', /^osdp_FMT: character count says 3, the packet carries 2/],
    [reply(0x51, Uint8Array.of(0, 0, 2, 0x31, 0x07)), 'bad_osdp', /byte 0x07 at character 1 is not printable ASCII/],
    [reply(0x51, Uint8Array.of(0, 0, 0)), 'bad_osdp', /character count is 0/],
    [reply(0x53, Uint8Array.of(0, 2, 0x31, 0x41)), 'bad_osdp', /key byte 0x41 is not/],
    [reply(0x53, Uint8Array.of(0, 3, 0x31)), 'bad_osdp', /digit count says 3, the packet carries 1/],
    [reply(0x48, Uint8Array.of(0)), 'bad_osdp', /^reply code 0x48 \(osdp_LSTATR\) is not a card read/],
    [buildPacket({ address: 0x7f, reply: true, sqn: 0, crc: true, code: 0x50, data: hexBytes('00 01 1a 00 a1 81 f4 40') }), 'bad_osdp', /broadcast address/],
  ];
  for (const [packet, code, re] of reads) {
    const e = apbError(() => decodeCardRead(parsePacket(packet), T));
    assert.equal(e.code, code, `${toHex(packet)}: ${e.message}`);
    assert.match(e.message, re);
  }
});

test('decision commands: LED green on grant, LED red + buzzer on deny, next sequence numbers, valid checks', () => {
  assert.deepEqual([0, 1, 2, 3].map(nextSqn), [1, 2, 3, 1]);
  for (const crc of [true, false]) {
    const [led] = decisionCommands(0x21, 1, 3, crc, true);
    const p = parsePacket(led);
    assert.deepEqual([p.address, p.reply, p.sqn, p.crc, p.code], [0x21, false, 1, crc, CMD_LED]);
    assert.equal(p.data.length, 14);
    assert.deepEqual([...p.data.subarray(0, 9)], [1, 0, 0x02, 1, 0, 2, 2, 30, 0]);
    const deny = decisionCommands(0x21, 0, 1, crc, false);
    assert.equal(deny.length, 2);
    const [l, b] = deny.map(parsePacket);
    assert.deepEqual([l!.sqn, l!.code, l!.data[5]], [2, CMD_LED, 1]);
    assert.deepEqual([b!.sqn, b!.code, ...b!.data], [3, CMD_BUZ, 0, 0x02, 3, 2, 2]);
    const moved = parsePacket(resequence(led, 2));
    assert.deepEqual([moved.sqn, moved.code, toHex(moved.data)], [2, CMD_LED, toHex(p.data)]);
  }
});

const site = adapterSite({
  controllers: [{ id: 'bus-a', token: 't-long-test-token', protocol: 'osdp' }, { id: 'bus-b', token: 'u-long-test-token', protocol: 'osdp' }],
  readers: [
    { id: 'door-1', from: 'outside', to: 'b', controller: 'bus-a', reuseLockout: 0, reuseMode: 'hard', osdp: { address: 1, reader: 0 } },
    { id: 'door-1b', from: 'b', to: 'outside', controller: 'bus-a', reuseLockout: 0, reuseMode: 'hard', osdp: { address: 1, reader: 1 } },
    { id: 'other', from: 'outside', to: 'b', controller: 'bus-b', reuseLockout: 0, reuseMode: 'hard', osdp: { address: 2, reader: 0 } },
  ],
});
const osdp = adapterFor('osdp');

test('adapter: a card read becomes a badge at the matching reader; the decision gains the command packets', () => {
  const packet = hexBytes(V.valid.find((v: any) => v.raw).hex);
  const msg = { t: 'osdp', id: 11, packet, ts: 99 };
  const ctx = { site, controller: 'bus-a' };
  assert.deepEqual(osdp.toCanonical(msg, ctx), { t: 'badge', id: 11, cred: '67:1000', reader: 'door-1', ts: 99 });
  const granted: Record<string, unknown> = { t: 'decision', grant: true, reason: 'ok', violations: [] };
  osdp.decorateDecision!(granted, msg, ctx);
  const cmds = granted.osdp as Uint8Array[];
  assert.equal(cmds.length, 1);
  assert.deepEqual(toHex(cmds[0]!), toHex(decisionCommands(1, 0, 1, true, true)[0]!));
  // a copy of the message (not the object toCanonical saw) still gets its commands
  const denied: Record<string, unknown> = { t: 'decision', grant: false, reason: 'reentry', violations: [] };
  osdp.decorateDecision!(denied, { ...msg }, ctx);
  assert.equal((denied.osdp as Uint8Array[]).length, 2);
  const ack: Record<string, unknown> = { t: 'ack' };
  osdp.decorateDecision!(ack, msg, ctx);
  assert.equal(ack.osdp, undefined);
  // reader number 1 on the same PD; the same PD address on another bus is not ours
  const r1 = reply(0x51, Uint8Array.of(1, 0, 4, ...ascii('1000')));
  assert.equal(osdp.toCanonical({ t: 'osdp', id: 12, packet: r1 }, ctx).reader, 'door-1b');
  const p2 = reply(0x51, Uint8Array.of(0, 0, 4, ...ascii('1000')), { address: 2 });
  assert.equal(osdp.toCanonical({ t: 'osdp', id: 13, packet: p2 }, ctx).reader, 'osdp:2:0', 'unknown here: decided as unknown_reader');
  assert.equal(osdp.toCanonical({ t: 'osdp', id: 13, packet: p2 }, { site, controller: 'bus-b' }).reader, 'other');
  assert.equal(osdp.toCanonical({ t: 'osdp', id: 14, packet: { hex: toHex(p2) } }, { site, controller: 'bus-b' }).cred, '0:1000');
  const ping = { t: 'ping', id: 1 };
  assert.equal(osdp.toCanonical(ping, ctx), ping);
  assert.match(apbError(() => osdp.toCanonical({ t: 'osdp', id: 1 }, ctx)).message, /^packet: missing/);
  assert.equal(apbError(() => osdp.toCanonical({ t: 'osdp', id: 1, packet: hexBytes(V.invalid[0].hex) }, ctx)).code, 'bad_osdp');
});

test('mark bytes before SOM are skipped; a Wiegand read via osdp_RAW equals the same read via the wiegand adapter', () => {
  const bits = '10101101100000100110010111';
  const raw = bitStringToBytes(bits);
  const pkt = Uint8Array.of(0xff, 0xff, ...reply(0x50, Uint8Array.of(0, 1, 26, 0, ...raw)));
  const viaOsdp = osdp.toCanonical({ t: 'osdp', id: 1, packet: pkt }, { site, controller: 'bus-a' });
  const viaWiegand = adapterFor('wiegand').toCanonical({ t: 'badge', id: 1, reader: 'door-1', raw, bits: 26 }, { site, controller: 'bus-a' });
  assert.equal(viaOsdp.cred, '91:1227');
  assert.equal(viaOsdp.cred, viaWiegand.cred);
});
