/**
 * Wiegand: the public vectors, encode→decode round trips for every format
 * (built-in and custom, property tests), an independent oracle for the
 * layouts Proxmark3 packs with 64-bit arithmetic, and the adapter's errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bitStringToBytes, bytesToBitString } from '../../src/adapters/wiegand/bits.js';
import { BUILTIN_FORMATS, buildFormatTable, checkWiegandFormats, findFormat, type WiegandFormat } from '../../src/adapters/wiegand/formats.js';
import { decodeRead, decodeWithFormat } from '../../src/adapters/wiegand/decode.js';
import { encodeRead } from '../../src/adapters/wiegand/encode.js';
import { adapterFor } from '../../src/adapters/index.js';
import type { WiegandFormatConfig } from '../../src/config/types.js';
import { adapterSite, apbError, hexBytes, loadVectors } from './util.js';

const V = loadVectors('wiegand');
const T = buildFormatTable();

function vectorRead(v: any): { raw: Uint8Array; bits: number } {
  return v.bits ? { raw: bitStringToBytes(v.bits), bits: v.bits.length } : { raw: hexBytes(v.hex), bits: v.bitCount };
}

test('every valid public vector decodes to its facility and card, by name and by bit count', () => {
  assert.ok(V.valid.length >= 10);
  for (const v of V.valid) {
    const { raw, bits } = vectorRead(v);
    const named = decodeRead(raw, bits, T, v.format);
    assert.equal(named.format.name, v.format);
    assert.equal(named.cred, `${v.facility ?? 0}:${v.card}`, JSON.stringify(v));
    const byBits = decodeRead(raw, bits, T);
    // 37-bit reads: H10304 is tried first; with facility bits 0 it names the same card as H10302
    assert.equal(byBits.cred, named.cred, JSON.stringify(v));
    const again = encodeRead(named.format, named.facility, named.card);
    assert.deepEqual(again.raw, raw, `re-encoding ${JSON.stringify(v)}`);
  }
});

test('every invalid public vector is refused with bad_parity naming the parity bit', () => {
  assert.ok(V.invalid.length >= 2, 'the invalid vectors are loaded');
  for (const v of V.invalid) {
    const { raw, bits } = vectorRead(v);
    const e = apbError(() => decodeRead(raw, bits, T, v.format));
    assert.equal(e.code, 'bad_parity');
    assert.match(e.message, /parity bit (0|25)/);
    assert.equal(apbError(() => decodeRead(raw, bits, T)).code, 'bad_parity');
  }
  const lead = apbError(() => decodeRead(bitStringToBytes(V.invalid[0].bits), 26, T));
  assert.match(lead.message, /even parity bit 0 \(over bits 1-12\)/);
  const trail = apbError(() => decodeRead(bitStringToBytes(V.invalid[1].bits), 26, T));
  assert.match(trail.message, /odd parity bit 25 \(over bits 13-24\)/);
});

// --- independent oracle: Proxmark3's Bot/Mid arithmetic (bit 0 of Bot = last bit sent) ---
const par = (x: bigint): number => { let n = 0; for (let v = x; v; v >>= 1n) n += Number(v & 1n); return n & 1; };
const even = (x: bigint): bigint => BigInt(par(x));
const odd = (x: bigint): bigint => BigInt(par(x) ^ 1);
function oracle(name: string, f: bigint, c: bigint): { bits: string } {
  let bot = 0n, mid = 0n, len = 0;
  switch (name) {
    case 'H10301': len = 26; bot = (c << 1n) | (f << 17n); bot |= odd((bot >> 1n) & 0xfffn); bot |= even((bot >> 13n) & 0xfffn) << 25n; break;
    case 'H10306': len = 34; bot = ((c & 0xffffn) << 1n) | ((f & 0x7fffn) << 17n); mid = (f & 0x8000n) >> 15n;
      mid |= even((mid & 1n) ^ (bot & 0xfffe0000n)) << 1n; bot |= odd(bot & 0x1fffen); break;
    case 'C1000-35': len = 35; bot = ((c & 0xfffffn) << 1n) | ((f & 0x7ffn) << 21n); mid = (f & 0x800n) >> 11n;
      mid |= even((mid & 1n) ^ (bot & 0xb6db6db6n)) << 1n; bot |= odd((mid & 3n) ^ (bot & 0x6db6db6cn)); mid |= odd((mid & 3n) ^ bot) << 2n; break;
    case 'C1000-48': len = 48; bot = ((c & 0x7fffffn) << 1n) | ((f & 0xffn) << 24n); mid = (f & 0x3fff00n) >> 8n;
      mid |= even((mid & 0x1b6dn) ^ (bot & 0xb6db6db6n)) << 14n; bot |= odd((mid & 0x36dbn) ^ (bot & 0x6db6db6cn)); mid |= odd((mid & 0x7fffn) ^ bot) << 15n; break;
    default: throw new Error(name);
  }
  const v = (mid << 32n) | bot;
  let bits = '';
  for (let p = 0; p < len; p++) bits += (v >> BigInt(len - 1 - p)) & 1n ? '1' : '0';
  return { bits };
}

test('H10301, H10306 and Corporate 1000 35/48 agree with Proxmark3\'s packing arithmetic', () => {
  for (const name of ['H10301', 'H10306', 'C1000-35', 'C1000-48']) {
    const f = findFormat(T, name);
    fc.assert(fc.property(fc.bigInt(0n, (1n << BigInt(f.facility!.length)) - 1n), fc.bigInt(0n, (1n << BigInt(f.card.length)) - 1n), (fac, card) => {
      const want = oracle(name, fac, card).bits;
      const ours = encodeRead(f, fac, card);
      assert.equal(bytesToBitString(ours.raw, ours.bits), want);
      assert.equal(decodeRead(bitStringToBytes(want), want.length, T).cred, `${fac}:${card}`);
    }), { numRuns: 300 });
  }
});

const cardArb = (f: WiegandFormat) => fc.record({
  facility: f.facility ? fc.bigInt(0n, (1n << BigInt(f.facility.length)) - 1n) : fc.constant(0n),
  card: fc.bigInt(0n, (1n << BigInt(f.card.length)) - 1n),
});

test('round trip and single-bit-error detection for every built-in format', () => {
  assert.deepEqual(BUILTIN_FORMATS.map((f) => f.name).sort(), ['C1000-35', 'C1000-48', 'H10301', 'H10302', 'H10304', 'H10306', 'P10001']);
  for (const f of BUILTIN_FORMATS) {
    fc.assert(fc.property(cardArb(f), fc.nat(f.bits - 1), ({ facility, card }, flip) => {
      const { raw, bits } = encodeRead(f, facility, card);
      const read = decodeWithFormat(f, raw, bits);
      assert.equal(read.cred, `${facility}:${card}`);
      assert.equal(decodeRead(raw, bits, T, f.name).cred, read.cred);
      // every bit of these layouts is a parity/checksum bit or covered by one: one flipped bit never passes
      const bad = Uint8Array.from(raw);
      bad[flip >> 3]! ^= 0x80 >> (flip & 7);
      const e = apbError(() => decodeWithFormat(f, bad, bits));
      assert.ok(e.code === 'bad_parity' || e.code === 'unknown_format', e.code);
    }), { numRuns: 200 });
  }
});

/** random valid custom layouts: [P] [filler] [facility] [card] [P], parity ranges inside the data bits */
const customArb = fc.record({
  pre: fc.nat(3), facLen: fc.integer({ min: 0, max: 20 }), cardLen: fc.integer({ min: 1, max: 40 }), post: fc.nat(3),
  kinds: fc.tuple(fc.constantFrom('even' as const, 'odd' as const), fc.constantFrom('even' as const, 'odd' as const)),
  cuts: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
}).map(({ pre, facLen, cardLen, post, kinds, cuts }) => {
  const first = 1, last = pre + facLen + cardLen + post; // data bits 1..last
  const bits = last + 2;
  const mid = first + Math.floor(cuts[0] * (last - first));
  const f: WiegandFormatConfig = {
    name: 'custom-' + bits, bits,
    ...(facLen ? { facility: { start: 1 + pre, length: facLen } } : {}),
    card: { start: 1 + pre + facLen, length: cardLen },
    parity: [
      { bit: 0, covers: [first, mid], kind: kinds[0] },
      { bit: bits - 1, covers: [Math.min(last, mid + Math.floor(cuts[1] * (last - mid))), last], kind: kinds[1] },
    ],
  };
  return f;
});

test('custom formats: valid layouts pass checkWiegandFormats and round trip, bit-count selection finds them', () => {
  fc.assert(fc.property(customArb, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (cfg, a, b) => {
    assert.deepEqual(checkWiegandFormats([cfg]), []);
    const table = buildFormatTable([cfg]);
    const f = findFormat(table, cfg.name);
    const facility = f.facility ? BigInt(Math.floor(a * (2 ** Math.min(f.facility.length, 52) - 1))) : 0n;
    const card = BigInt(Math.floor(b * (2 ** Math.min(f.card.length, 52) - 1)));
    const { raw, bits } = encodeRead(f, facility, card);
    const read = decodeRead(raw, bits, table);
    assert.equal(read.format.name, cfg.name, 'custom formats are tried before built-ins of the same size');
    assert.equal(read.cred, `${facility}:${card}`);
    // flipping a parity bit is always caught
    const bad = Uint8Array.from(raw);
    bad[0]! ^= 0x80;
    assert.equal(apbError(() => decodeWithFormat(f, bad, bits)).code, 'bad_parity');
  }), { numRuns: 300 });
});

test('checkWiegandFormats names each geometry error by path', () => {
  const base: WiegandFormatConfig = { name: 'x', bits: 10, card: { start: 1, length: 8 }, parity: [{ bit: 0, covers: [1, 4], kind: 'even' }] };
  assert.deepEqual(checkWiegandFormats([base]), []);
  const cases: [WiegandFormatConfig, RegExp, string][] = [
    [{ ...base, name: 'H10301' }, /built-in/, 'wiegandFormats[0].name'],
    [{ ...base, bits: 0 }, /1-256/, 'wiegandFormats[0].bits'],
    [{ ...base, card: { start: 5, length: 8 } }, /run past/, 'wiegandFormats[0].card'],
    [{ ...base, facility: { start: 1, length: 2 } }, /already the facility field/, 'wiegandFormats[0].card'],
    [{ ...base, parity: [{ bit: 12, covers: [1, 4], kind: 'even' }] }, /bit position 0-9/, 'wiegandFormats[0].parity[0].bit'],
    [{ ...base, parity: [{ bit: 0, covers: [4, 1], kind: 'even' }] }, /first <= last/, 'wiegandFormats[0].parity[0].covers'],
    [{ ...base, parity: [{ bit: 2, covers: [1, 4], kind: 'even' }] }, /inside the range/, 'wiegandFormats[0].parity[0].covers'],
  ];
  for (const [cfg, re, path] of cases) {
    const issues = checkWiegandFormats([cfg]);
    assert.ok(issues.some((i) => i.path === path && re.test(i.message)), `${JSON.stringify(cfg)} → ${JSON.stringify(issues)}`);
  }
  assert.match(checkWiegandFormats([base, { ...base, name: 'X' }])[0]!.message, /duplicate/);
});

const wiegand = adapterFor('wiegand');
const site = adapterSite({ wiegandFormats: [{ name: 'site16', bits: 16, card: { start: 1, length: 14 }, parity: [{ bit: 15, covers: [1, 14], kind: 'odd' }] }] });
const ctx = { site, controller: 'w1' };
const h10301 = hexBytes('a181f440'); // 67:1000

test('adapter: badge/passage/offline become canonical messages with the "<facility>:<card>" credential', () => {
  assert.deepEqual(wiegand.toCanonical({ t: 'badge', id: 7, reader: 'r1', raw: h10301, bits: 26 }, ctx), { t: 'badge', id: 7, reader: 'r1', cred: '67:1000' });
  assert.deepEqual(wiegand.toCanonical({ t: 'passage', id: 8, reader: 'r1', raw: h10301, bits: 26, format: 'h10301', ts: 5 }, ctx),
    { t: 'passage', id: 8, reader: 'r1', cred: '67:1000', ts: 5 });
  assert.deepEqual(wiegand.toCanonical({ t: 'offline', id: 9, reader: 'r1', raw: { hex: 'a181f440' }, bits: 26, ts: 5, granted: false }, ctx),
    { t: 'offline', id: 9, reader: 'r1', cred: '67:1000', ts: 5, granted: false });
  const custom = encodeRead(findFormat(buildFormatTable(site.config.wiegandFormats), 'site16'), 0, 1234);
  assert.equal(wiegand.toCanonical({ t: 'badge', id: 1, reader: 'r', raw: custom.raw, bits: 16 }, ctx).cred, '0:1234');
  const ping = { t: 'ping', id: 3 };
  assert.equal(wiegand.toCanonical(ping, ctx), ping);
});

test('adapter: every malformed read is refused with a typed, precise error', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ t: 'badge', id: 1, reader: 'r', bits: 26 }, 'bad_message', /^raw: missing/],
    [{ t: 'badge', id: 1, reader: 'r', cred: 5, raw: h10301, bits: 26 }, 'bad_message', /^cred:/],
    [{ t: 'badge', id: 1, reader: 'r', raw: 'a181f440', bits: 26 }, 'bad_message', /^raw: must be binary/],
    [{ t: 'badge', id: 1, reader: 'r', raw: h10301, bits: 26.5 }, 'bad_message', /^bits:/],
    [{ t: 'badge', id: 1, reader: 'r', raw: h10301, bits: 40 }, 'bad_message', /40 bits take 5 bytes, raw has 4/],
    [{ t: 'badge', id: 1, reader: 'r', raw: hexBytes('a181f441'), bits: 26 }, 'bad_message', /padding bits after bit 25 must be zero/],
    [{ t: 'badge', id: 1, reader: 'r', raw: h10301, bits: 26, format: 7 }, 'bad_message', /^format:/],
    [{ t: 'badge', id: 1, reader: 'r', raw: h10301, bits: 26, format: 'H10999' }, 'unknown_format', /no Wiegand format named "H10999"/],
    [{ t: 'badge', id: 1, reader: 'r', raw: h10301, bits: 26, format: 'H10304' }, 'unknown_format', /H10304 reads are 37 bits, this read has 26/],
    [{ t: 'badge', id: 1, reader: 'r', raw: hexBytes('a181f4'), bits: 24 }, 'unknown_format', /no Wiegand format reads 24 bits \(this site decodes 16, 26/],
    [{ t: 'badge', id: 1, reader: 'r', raw: hexBytes('2181f440'), bits: 26 }, 'bad_parity', /H10301: even parity bit 0/],
    [{ t: 'badge', id: 1, reader: 'r', raw: hexBytes('037f45ca03'), bits: 40 }, 'unknown_format', /P10001: bits 0-3 must be 0x0f, read has 0x00/],
    [{ t: 'badge', id: 1, reader: 'r', raw: hexBytes('f37f45ca04'), bits: 40 }, 'bad_parity', /P10001: checksum bits 32-39 are 0x04, the XOR of the bytes before is 0x03/],
  ];
  for (const [msg, code, re] of cases) {
    const e = apbError(() => wiegand.toCanonical(msg, ctx));
    assert.equal(e.code, code, `${JSON.stringify(msg, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}: ${e.message}`);
    assert.match(e.message, re);
  }
});

test('37-bit reads: H10304 and H10302 share size and parity; H10304 is chosen unless `format` says otherwise', () => {
  const h10302 = findFormat(T, 'H10302');
  const { raw, bits } = encodeRead(h10302, 0, 2n ** 34n + 5n); // high bits land in H10304's facility field
  assert.equal(decodeRead(raw, bits, T).format.name, 'H10304');
  assert.equal(decodeRead(raw, bits, T, 'H10302').cred, `0:${2n ** 34n + 5n}`);
  assert.equal(apbError(() => encodeRead(h10302, 1, 5)).code, 'bad_message');
  assert.equal(apbError(() => encodeRead(findFormat(T, 'H10301'), 256, 5)).code, 'bad_message');
});

test('a site whose custom format slipped past validation: reads get invalid_config naming it; a built-in name is overridden', () => {
  const broken = adapterSite({ wiegandFormats: [{ name: 'bad', bits: 8, card: { start: 1, length: 6 }, parity: [{ bit: 3, covers: [1, 6], kind: 'even' }] }] });
  const e = apbError(() => wiegand.toCanonical({ t: 'badge', id: 1, reader: 'r', raw: h10301, bits: 26 }, { site: broken, controller: 'w' }));
  assert.equal(e.code, 'invalid_config');
  assert.match(e.message, /Wiegand format "bad": parity\[0\]\.covers: parity bit 3 lies inside/);
  const t = buildFormatTable([{ name: 'h10301', bits: 26, card: { start: 0, length: 26 }, parity: [] }]);
  assert.equal(findFormat(t, 'H10301').builtin, false);
  assert.equal(decodeRead(h10301, 26, t, 'H10301').cred, `0:${0xa181f440 >>> 6}`);
});
