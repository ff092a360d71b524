/**
 * OSDP framing on the bridge side: every public packet vector decodes to
 * its documented fields and re-encodes to the same bytes; the invalid ones
 * are refused with the reason; the stream deframer finds frames in any
 * split, behind marks, garbage, a stray SOM and a corrupt frame; the
 * sequence numbers run 0, 1, 2, 3, 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deframer, decodeFrame, encodeFrame, nextSqn, MAX_FRAME } from '../../src/bridge/osdp/frame.js';
import { parseInputs, parsePdid, outPulseData, keysetData, parseKeyset, ledData, buzData, COLOR_RED } from '../../src/bridge/osdp/payloads.js';
import { CMD_BUZ, CMD_LED, decisionCommands } from '../../src/adapters/osdp/commands.js';
import { decodeCardRead } from '../../src/adapters/osdp/replies.js';
import { buildFormatTable } from '../../src/adapters/wiegand/formats.js';
import { ApbError } from '../../src/errors.js';
import { hex, loadVectors, toHex } from './util.js';

const V = loadVectors('osdp');

test('every valid vector: fields, and the same bytes when encoded again', () => {
  assert.ok(V.valid.length >= 6);
  for (const v of V.valid) {
    const bytes = hex(v.hex);
    const f = decodeFrame(bytes);
    assert.equal(f.address, v.addr, v.hex);
    assert.equal(f.reply, v.reply, v.hex);
    assert.equal(f.sqn, v.seq, v.hex);
    assert.equal(f.crc, v.check === 'crc', v.hex);
    assert.equal(f.code, parseInt(v.code, 16), v.hex);
    assert.equal(f.scb, null);
    if (v.data) assert.equal(toHex(f.data), v.data);
    const again = encodeFrame({ address: f.address, reply: f.reply, sqn: f.sqn, crc: f.crc, code: f.code, data: f.data });
    assert.equal(toHex(again), toHex(bytes[0] === 0xff ? bytes.subarray(1) : bytes), v.hex);
    if (v.raw) assert.equal(decodeCardRead(f, buildFormatTable()).cred, `${v.raw.wiegand.facility}:${v.raw.wiegand.card}`);
  }
});

test('invalid vectors and malformed frames are refused with the reason', () => {
  for (const v of V.invalid) {
    assert.throws(() => decodeFrame(hex(v.hex)), (e: ApbError) => e.code === 'bad_osdp' && /^CRC: frame has 0x0000, expected 0x/.test(e.message), v.why);
  }
  const poll = hex('53 00 08 00 06 60 89 CC');
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /empty/],
    [hex('54 00 08 00 06 60 89 CC'), /SOM: expected 0x53, got 0x54/],
    [poll.subarray(0, 6), /at least 7/],
    [Uint8Array.from([...poll, 0]), /LEN says 8 bytes, the frame has 9/],
    [hex('53 00 07 00 02 60 45'), /checksum: frame has 0x45, expected 0x44/],
  ];
  for (const [b, re] of cases) assert.throws(() => decodeFrame(b), (e: ApbError) => e.code === 'bad_osdp' && re.test(e.message), re.source);
  // a security block shorter than its own header
  const scb1 = encodeFrame({ address: 1, sqn: 1, crc: true, code: 0x60, scb: Uint8Array.of(1) });
  assert.throws(() => decodeFrame(scb1), /SEC_BLK_LEN 1 is below 2/);
});

test('secure-channel frames: the security block, the MAC and what it covers', () => {
  const f = encodeFrame({ address: 5, sqn: 2, crc: true, code: 0x69, scb: Uint8Array.of(2, 0x17), data: hex('00112233445566778899AABBCCDDEEFF'), mac: () => hex('DEADBEEF00000000') });
  const d = decodeFrame(f);
  assert.deepEqual([...d.scb!], [2, 0x17]);
  assert.equal(toHex(d.mac!), 'DEADBEEF');
  assert.equal(d.data.length, 16);
  assert.equal(d.macInput.length, 5 + 2 + 1 + 16, 'SOM..last data byte');
  assert.equal(f[4]! & 0x08, 0x08, 'CTRL bit 3');
  // handshake blocks (type 0x11-0x14) carry no MAC
  const h = decodeFrame(encodeFrame({ address: 5, sqn: 1, crc: false, code: 0x76, scb: Uint8Array.of(3, 0x11, 0), data: hex('B0B1B2B3B4B5B6B7') }));
  assert.equal(h.mac, null);
  assert.equal(toHex(h.data), 'B0B1B2B3B4B5B6B7');
  assert.throws(() => encodeFrame({ address: 1, sqn: 1, crc: true, code: 0x60, scb: Uint8Array.of(2, 0x15) }), /needs a MAC/);
  assert.throws(() => encodeFrame({ address: 1, sqn: 1, crc: true, code: 0x60, data: new Uint8Array(MAX_FRAME) }), /longer than/);
});

test('the deframer: any split, marks, garbage, a stray SOM and a corrupt frame', () => {
  const frames = V.valid.map((v: { hex: string }) => hex(v.hex)).map((b: Uint8Array) => (b[0] === 0xff ? b.subarray(1) : b));
  const corrupt = Uint8Array.from(frames[0]!); corrupt[corrupt.length - 1]! ^= 0xff;
  const stream = Uint8Array.from([0x00, 0x12, 0x53, 0x01, ...[...frames[0]!], 0xff, 0xff, ...corrupt, ...frames.slice(1).flatMap((f: Uint8Array) => [0xff, ...f])]);
  for (const chunk of [1, 2, 3, 7, 64, stream.length]) {
    const d = new Deframer();
    const got: string[] = [];
    for (let i = 0; i < stream.length; i += chunk) for (const f of d.push(stream.subarray(i, i + chunk))) got.push(toHex(f));
    assert.deepEqual(got, frames.map(toHex), `chunks of ${chunk}`);
    assert.ok(d.badChecks >= 1 && d.skipped >= 3, `the corrupt frame and the garbage were counted (chunks of ${chunk})`);
    assert.equal(d.pending, 0);
  }
  const d = new Deframer();
  assert.deepEqual(d.push(frames[0]!.subarray(0, 5)), []);
  assert.equal(d.pending, 5);
  d.reset();
  assert.deepEqual(d.push(frames[0]!.subarray(5)), [], 'the tail of a dropped frame is not a frame');
});

test('sequence numbers: 0 restarts, then 1, 2, 3, 1', () => {
  const seq = [0];
  for (let i = 0; i < 5; i++) seq.push(nextSqn(seq[seq.length - 1]!));
  assert.deepEqual(seq, [0, 1, 2, 3, 1, 2]);
});

test('command and reply payloads', () => {
  // the LED/BUZ data are the engine adapter's, so both paths show a decision alike
  const [led, buz] = decisionCommands(1, 0, 0, true, false);
  assert.equal(toHex(ledData(0, COLOR_RED, 3)), toHex(decodeFrame(led!).data));
  assert.equal(decodeFrame(led!).code, CMD_LED);
  assert.equal(toHex(buzData(0, 3, 2, 2)), toHex(decodeFrame(buz!).data));
  assert.equal(decodeFrame(buz!).code, CMD_BUZ);
  assert.deepEqual([...outPulseData(1, 2500)], [1, 0x05, 25, 0]);
  assert.deepEqual([...outPulseData(0, 60_000)], [0, 0x05, 0x58, 0x02]);
  const key = hex('00112233445566778899AABBCCDDEEFF');
  assert.equal(toHex(parseKeyset(keysetData(key))), toHex(key));
  assert.throws(() => parseKeyset(hex('0110')), /key type 1, length 16/);
  assert.deepEqual(parseInputs(hex('000100')), [false, true, false]);
  assert.throws(() => parseInputs(hex('02')), /neither 0 nor 1/);
  assert.deepEqual(parsePdid(hex('5A3100 07 01 04030201 010203')), { vendor: '5a3100', model: 7, version: 1, serial: 0x01020304, firmware: '1.2.3' });
  assert.throws(() => parsePdid(hex('00')), /expected 12/);
});
