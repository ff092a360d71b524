/**
 * Frames for the server fuzz test: valid controller messages of each
 * protocol (native, wiegand, osdp), structural mutations (wrong types, huge
 * or invalid strings, ids at the integer edges, replay-only types, junk),
 * byte mutations of whole encoded frames, and junk frames. Every message
 * carries an optional expectation that the reply must meet (only where the
 * issue or PROTOCOL.md fixes the answer); everything else must merely be a
 * well-formed reply.
 */
import { RawStr, F64, Ext, Deep, encode, deepArray } from './mp.js';
import { BUILTIN_FORMATS } from '../../../src/adapters/wiegand/formats.js';
import { encodeRead } from '../../../src/adapters/wiegand/encode.js';
import { buildPacket } from '../../../src/adapters/osdp/packet.js';

/** A seeded PRNG (mulberry32): the same seed gives the same frames. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(a: readonly T[]): T { return a[Math.floor(this.next() * a.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
  bytes(n: number): Uint8Array { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = this.int(0, 255); return b; }
}

export type Protocol = 'native' | 'wiegand' | 'osdp';
export interface Ctl { id: string; token: string; protocol: Protocol; readers: string[]; foreign: string[] }
export type Enc = 'msgpack' | 'json';

/**
 * What the reply of one message must be:
 *  ok: that reply type (decision, ack, pong), its id echoed;
 *  accepted: not an error, its id echoed (a reused id may get another message's stored reply);
 *  error: an error with one of `codes` (any code when absent);
 *  undefined: any well-formed reply.
 */
export type Expect = { kind: 'ok'; t: 'decision' | 'ack' | 'pong'; reason?: string } | { kind: 'accepted' } | { kind: 'error'; codes?: string[] };

export interface Msg {
  value: unknown;
  /** what was done to it: valid, or the mutation */
  tag: string;
  expect?: Expect;
  /** the issue item an expectation comes from, for the report */
  item?: string;
  /** path form of the credential, when it is one the server must hold state for */
  credPath?: string;
}

const H10301 = BUILTIN_FORMATS.find((f) => f.name === 'H10301')!;
const TYPES = ['badge', 'badge', 'badge', 'badge', 'passage', 'offline', 'ping'] as const;
export const U53 = 2n ** 53n;
export const U64MAX = 2n ** 64n - 1n;
/** a string of `n` UTF-8 bytes */
const longStr = (r: Rng, n: number, c = 'r'): string => c.repeat(n - 8) + r.int(10_000_000, 99_999_999);
export const credPath = (c: unknown): string | undefined => {
  if (typeof c === 'number' && Number.isSafeInteger(c) && c >= 0) return String(c);
  if (typeof c === 'bigint' && c >= 0n && c <= U64MAX) return c.toString();
  if (typeof c === 'string') { try { return 's:' + encodeURIComponent(c); } catch { return undefined; } }
  if (c instanceof Uint8Array && c.length >= 1 && c.length <= 32) return 'x:' + Buffer.from(c).toString('hex');
  return undefined;
};

/** A card of the shared pool: the same "F:C" credential reaches every protocol. */
function card(r: Rng): { facility: number; card: number; text: string } {
  const facility = r.int(1, 3);
  const c = r.int(1, 24);
  return { facility, card: c, text: `${facility}:${c}` };
}

function nativeCred(r: Rng): unknown {
  const x = r.next();
  if (x < 0.5) return 1000 + r.int(0, 59);
  if (x < 0.75) return `s-${r.int(0, 19)}`;
  return card(r).text;
}

/** osdp_RAW of an H10301 read from PD address 5, reader number `rd` */
export function osdpRaw(r: Rng, rd: number, data?: Uint8Array, bits = 26): { packet: Uint8Array; cred: string } {
  const c = card(r);
  const raw = data ?? encodeRead(H10301, c.facility, c.card).raw;
  return { packet: buildPacket({ address: 5, reply: true, sqn: r.int(0, 3), crc: r.chance(0.7), code: 0x50, data: Uint8Array.of(rd, 1, bits & 0xff, bits >> 8, ...raw) }), cred: c.text };
}

/** One valid message of a controller, with what its reply must be. */
export function validMsg(r: Rng, ctl: Ctl, id: number, plain = false): Msg {
  const t = r.pick(TYPES);
  const reply = t === 'badge' ? 'decision' : t === 'ping' ? 'pong' : 'ack';
  if (t === 'ping') return { value: { t, id }, tag: 'valid.ping', expect: { kind: 'ok', t: 'pong' } };
  let reader = r.pick(ctl.readers);
  let expect: Expect = { kind: 'ok', t: reply };
  let tag = `valid.${t}`;
  const x = plain ? 1 : r.next();
  if (x < 0.04) { reader = r.pick(ctl.foreign); expect = { kind: 'error', codes: ['forbidden_reader'] }; tag += '.foreignReader'; }
  else if (x < 0.07) { reader = `nowhere-${r.int(0, 9)}`; tag += '.unknownReader'; if (t === 'badge') expect = { kind: 'ok', t: 'decision', reason: 'unknown_reader' }; }
  const extra: Record<string, unknown> = {};
  if (t === 'offline') { extra.ts = Date.now() - r.int(0, 3_600_000); extra.granted = r.chance(0.8); }
  else if (r.chance(0.2)) extra.ts = Date.now() - r.int(0, 10_000);
  if (ctl.protocol === 'native' || (ctl.protocol === 'osdp' && t !== 'badge')) {
    // osdp bridges pass native messages through unchanged
    const cred = nativeCred(r);
    return { value: { t, id, cred, reader, ...extra }, tag, expect, credPath: credPath(cred)! };
  }
  if (ctl.protocol === 'wiegand') {
    const c = card(r);
    const { raw, bits } = encodeRead(H10301, c.facility, c.card);
    return { value: { t, id, reader, raw, bits, ...extra }, tag, expect, credPath: credPath(c.text)! };
  }
  // osdp card read: the reader comes from the packet's address and reader number
  const k = r.next();
  if (k < 0.6) {
    const rd = plain || r.chance(0.9) ? r.int(0, 1) : r.int(2, 9);
    const { packet, cred } = osdpRaw(r, rd);
    const m: Msg = { value: { t: 'osdp', id, packet, ...(extra.ts ? { ts: extra.ts } : {}) }, tag: 'valid.osdp.raw', expect: { kind: 'ok', t: 'decision' }, credPath: credPath(cred)! };
    if (rd > 1) { m.tag += '.unknownReader'; m.expect = { kind: 'ok', t: 'decision', reason: 'unknown_reader' }; }
    return m;
  }
  if (k < 0.85) {
    const text = r.chance(0.5) ? card(r).text : `TICKET-${r.int(0, 9)}`;
    const data = Uint8Array.of(r.int(0, 1), 0, text.length, ...Buffer.from(text, 'latin1'));
    const packet = buildPacket({ address: 5, reply: true, sqn: r.int(0, 3), crc: true, code: 0x51, data });
    return { value: { t: 'osdp', id, packet }, tag: 'valid.osdp.fmt', expect: { kind: 'ok', t: 'decision' }, credPath: credPath(text)! };
  }
  const keys = String(r.int(1000, 1019));
  const packet = buildPacket({ address: 5, reply: true, sqn: 1, crc: true, code: 0x53, data: Uint8Array.of(0, keys.length, ...Buffer.from(keys)) });
  return { value: { t: 'osdp', id, packet }, tag: 'valid.osdp.keypad', expect: { kind: 'ok', t: 'decision' }, credPath: credPath(`pin:${keys}`)! };
}

/** Invalid UTF-8 byte sequences (lone continuation, truncated, overlong, CESU surrogate, 0xff). */
const BAD_UTF8: Uint8Array[] = [
  Uint8Array.of(0x41, 0xff, 0x42), Uint8Array.of(0x80), Uint8Array.of(0x31, 0xc3), Uint8Array.of(0xc0, 0xaf),
  Uint8Array.of(0xed, 0xa0, 0x80, 0x78, 0x31), Uint8Array.of(0xf8, 0x88, 0x80, 0x80, 0x80), Uint8Array.of(0x61, 0xe2, 0x82),
];

function junk(r: Rng, depth = 0): unknown {
  const x = r.int(0, depth > 3 ? 6 : 9);
  switch (x) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.int(-1000, 1000);
    case 3: return r.next() * 1e6;
    case 4: return 'j'.repeat(r.int(0, 40));
    case 5: return r.bytes(r.int(0, 40));
    case 6: return new Ext(r.int(-128, 127), r.bytes(r.pick([1, 2, 4, 8, 16, 3])));
    case 7: return Array.from({ length: r.int(0, 5) }, () => junk(r, depth + 1));
    case 8: return Object.fromEntries(Array.from({ length: r.int(0, 5) }, (_, i) => [`k${i}`, junk(r, depth + 1)]));
    default: return { ['__proto__']: { polluted: true }, constructor: 'x', toString: 1 };
  }
}

type Mut = (m: Record<string, unknown>, r: Rng, enc: Enc, ctl: Ctl) => { tag: string; expect?: Expect; item?: string; credPath?: string | null } | null;
const err = (...codes: string[]): Expect => ({ kind: 'error', codes });
const BAD = err('bad_message');

/** Structural mutations: each rewrites the message in place and says what the reply must be. */
const MUTATIONS: Record<string, Mut> = {
  'id.2^53': (m) => { m.id = U53; return { tag: 'id.2^53', expect: { kind: 'accepted' }, item: '6' }; },
  'id.2^53+1': (m) => { m.id = U53 + 1n; return { tag: 'id.2^53+1', expect: { kind: 'accepted' } }; },
  'id.2^53-1': (m) => { m.id = U53 - 1n; return { tag: 'id.2^53-1', expect: { kind: 'accepted' } }; },
  'id.2^64-1': (m) => { m.id = U64MAX; return { tag: 'id.2^64-1', expect: { kind: 'accepted' } }; },
  'id.2^64': (m, _r, enc) => { m.id = enc === 'json' ? U64MAX + 1n : new F64(2 ** 64); return { tag: 'id.2^64', expect: BAD }; },
  'id.negative': (m, r) => { m.id = r.pick([-1, -(2 ** 31), -(2n ** 63n)]); return { tag: 'id.negative', expect: BAD }; },
  'id.fraction': (m) => { m.id = 1.5; return { tag: 'id.fraction', expect: BAD }; },
  'id.string': (m) => { m.id = '12'; return { tag: 'id.string', expect: BAD }; },
  'id.missing': (m) => { delete m.id; return { tag: 'id.missing', expect: BAD }; },
  'id.junk': (m, r) => { m.id = junk(r); return { tag: 'id.junk' }; },
  'cred.huge': (m, r) => { if (!('cred' in m)) return null; m.cred = longStr(r, r.int(2000, 8000), 'c'); return { tag: 'cred.huge', expect: BAD, item: '1', credPath: null }; },
  'cred.65': (m, r) => { if (!('cred' in m)) return null; m.cred = longStr(r, 65, 'c'); return { tag: 'cred.65', expect: BAD, credPath: null }; },
  'cred.64': (m, r) => { if (!('cred' in m)) return null; m.cred = longStr(r, 64, 'q').replace(/.{8}$/, String(r.int(10_000_000, 10_000_003))); return { tag: 'cred.64', expect: { kind: 'accepted' }, credPath: credPath(m.cred) }; },
  'cred.empty': (m) => { if (!('cred' in m)) return null; m.cred = ''; return { tag: 'cred.empty', expect: BAD, credPath: null }; },
  'cred.surrogate': (m, r, enc) => {
    if (!('cred' in m)) return null;
    m.cred = r.pick(['\ud800x1', 'a\udfff', '\udc00', 'x\ud83d']);
    // over MessagePack the encoder writes U+FFFD for a lone surrogate: a valid string then
    return enc === 'json' ? { tag: 'cred.surrogate', expect: BAD, item: '2', credPath: null } : { tag: 'cred.surrogate(msgpack: U+FFFD)', credPath: credPath(Buffer.from(m.cred as string, 'utf8').toString('utf8')) };
  },
  'cred.badUtf8': (m, r, enc) => {
    if (!('cred' in m)) return null;
    m.cred = new RawStr(r.pick(BAD_UTF8));
    return { tag: 'cred.badUtf8', expect: enc === 'json' ? err('bad_message', 'bad_frame') : BAD, item: enc === 'json' ? '5 (JSON)' : '5', credPath: null };
  },
  'cred.2^53': (m) => { if (!('cred' in m)) return null; m.cred = U53; return { tag: 'cred.2^53', expect: { kind: 'accepted' }, item: '6', credPath: U53.toString() }; },
  'cred.2^64-1': (m) => { if (!('cred' in m)) return null; m.cred = U64MAX; return { tag: 'cred.2^64-1', expect: { kind: 'accepted' }, credPath: U64MAX.toString() }; },
  'cred.2^64': (m, _r, enc) => { if (!('cred' in m)) return null; m.cred = enc === 'json' ? U64MAX + 1n : new F64(2 ** 64); return { tag: 'cred.2^64', expect: BAD, credPath: null }; },
  'cred.negative': (m, r) => { if (!('cred' in m)) return null; m.cred = r.pick([-1, -(2n ** 63n)]); return { tag: 'cred.negative', expect: BAD, credPath: null }; },
  'cred.fraction': (m) => { if (!('cred' in m)) return null; m.cred = 1000.5; return { tag: 'cred.fraction', expect: BAD, credPath: null }; },
  'cred.bin': (m, r, enc) => { if (!('cred' in m)) return null; m.cred = r.bytes(r.int(1, 32)); return { tag: 'cred.bin', expect: enc === 'msgpack' ? { kind: 'accepted' } : undefined, credPath: credPath(m.cred) }; },
  'cred.bin33': (m, r) => { if (!('cred' in m)) return null; m.cred = r.bytes(r.pick([0, 33, 300])); return { tag: 'cred.bin0/33+', expect: BAD, credPath: null }; },
  'cred.junk': (m, r) => { if (!('cred' in m)) return null; m.cred = r.pick([null, true, [], {}, [1000], { a: 1 }, new Ext(1, Uint8Array.of(1))]); return { tag: 'cred.junk', expect: BAD, credPath: null }; },
  'cred.deep': (m) => { if (!('cred' in m)) return null; m.cred = nest(3000); return { tag: 'cred.deep(3000)', expect: BAD, credPath: null }; },
  'reader.huge': (m, r) => { if (!('reader' in m)) return null; m.reader = longStr(r, r.int(1979, 8000)); return { tag: 'reader.huge', expect: BAD, item: '1' }; },
  'reader.long': (m, r) => { if (!('reader' in m)) return null; m.reader = longStr(r, r.int(65, 1978)); return { tag: 'reader.65..1978', expect: BAD, item: '1 (bound)' }; },
  'reader.badUtf8': (m, r) => { if (!('reader' in m)) return null; m.reader = new RawStr(r.pick(BAD_UTF8)); return { tag: 'reader.badUtf8' }; },
  'reader.surrogate': (m, r) => { if (!('reader' in m)) return null; m.reader = r.pick(['\ud800', 'n1-in\udfff']); return { tag: 'reader.surrogate' }; },
  'reader.notString': (m, r) => { if (!('reader' in m)) return null; m.reader = r.pick([null, 7, true, [], { id: 'n1-in' }, Uint8Array.of(1)]); return { tag: 'reader.notString', expect: BAD }; },
  'reader.missing': (m) => { if (!('reader' in m)) return null; delete m.reader; return { tag: 'reader.missing', expect: BAD }; },
  'reader.proto': (m, r, _e, ctl) => {
    if (!('reader' in m) || ctl.protocol === 'osdp' && m.t === 'osdp') return null;
    m.reader = r.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype']);
    return { tag: 'reader.proto', expect: m.t === 'badge' ? { kind: 'ok', t: 'decision', reason: 'unknown_reader' } : { kind: 'accepted' } };
  },
  't.unknown': (m, r) => { m.t = r.pick(['zap', '', 'BADGE', 'badge ', 'osdp2']); return { tag: 't.unknown', expect: err('unknown_type') }; },
  // replay-only operations must never be accepted from a controller
  't.replayOnly': (m, r) => { m.t = r.pick(['forgive', 'reset', 'exempt', 'setLocation', 'resetArea', 'config', 'tick']); m.on = true; m.area = 'hall'; m.text = 'site: x'; return { tag: `t.replayOnly(${m.t})`, expect: err('unknown_type', 'bad_message') }; },
  't.notString': (m, r) => { m.t = r.pick([1, null, ['badge'], { t: 'badge' }, true]); return { tag: 't.notString', expect: BAD }; },
  't.missing': (m) => { delete m.t; return { tag: 't.missing', expect: BAD }; },
  'ts.future': (m, r) => {
    if (m.t !== 'offline') return null;
    m.ts = Date.now() + r.pick([400 * 86_400_000, 10 * 365 * 86_400_000]);
    return { tag: 'ts.future(offline)', expect: err(), item: '13' };
  },
  'ts.bad': (m, r) => { m.ts = r.pick([-1, 1.5, '1700000000000', U64MAX, new F64(1e300), null]); return { tag: 'ts.bad', expect: BAD }; },
  'granted.bad': (m, r) => { if (m.t !== 'offline') return null; m.granted = r.pick([1, 'true', null, []]); return { tag: 'granted.bad', expect: BAD }; },
  'extra.junk': (m, r) => { m[r.pick(['x', 'zz', 'constructor', 'toString', 'valueOf'])] = junk(r); if (r.chance(0.3)) Object.defineProperty(m, '__proto__', { value: junk(r), enumerable: true, writable: true, configurable: true }); return { tag: 'extra.junk' }; },
  'field.huge': (m, r) => { m[r.pick(['note', 'x'])] = 'h'.repeat(r.int(2000, 20000)); return { tag: 'extra.hugeString' }; },
  // adapters
  'wiegand.raw': (m, r, _e, ctl) => {
    if (ctl.protocol !== 'wiegand' || !(m.raw instanceof Uint8Array) || m.raw.length === 0) return null;
    const raw = m.raw;
    const k = r.int(0, 5);
    if (k === 0) { const b = Uint8Array.from(raw); b[r.int(0, b.length - 1)]! ^= 1 << r.int(0, 7); m.raw = b; return { tag: 'wiegand.bitflip', expect: err('bad_parity', 'bad_message', 'unknown_format') }; }
    if (k === 1) { m.raw = raw.subarray(0, r.int(0, raw.length - 1)); return { tag: 'wiegand.short', expect: BAD }; }
    if (k === 2) { m.raw = r.bytes(r.pick([5, 40, 100_000])); return { tag: 'wiegand.longRaw', expect: err() }; }
    if (k === 3) { m.raw = r.pick(['a181f440', 12, null, [1, 2], { hex: 'zz' }]); return { tag: 'wiegand.rawType', expect: err() }; }
    if (k === 4) { m.bits = r.pick([0, 257, -1, 26.5, '26', 2 ** 40, null]); return { tag: 'wiegand.bits', expect: err() }; }
    m.bits = r.pick([24, 34, 35, 37, 40, 48, 200]); m.raw = r.bytes(Math.ceil((m.bits as number) / 8)); return { tag: 'wiegand.randomRead' };
  },
  'wiegand.format': (m, r, _e, ctl) => {
    if (ctl.protocol !== 'wiegand' || !('raw' in m)) return null;
    m.format = r.pick(['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'H10302', 'h10301', '', 'f'.repeat(5000), 7, null]);
    return { tag: `wiegand.format(${String(m.format).slice(0, 20)})`, expect: m.format === 'h10301' ? undefined : err() };
  },
  'wiegand.cred': (m, _r, _e, ctl) => { if (ctl.protocol !== 'wiegand' || !('raw' in m)) return null; m.cred = 1000; return { tag: 'wiegand.cred', expect: BAD }; },
  'osdp.packet': (m, r, _e, ctl) => {
    // an earlier mutation may already have replaced the packet with another type
    if (ctl.protocol !== 'osdp' || m.t !== 'osdp' || !(m.packet instanceof Uint8Array)) return null;
    const p = m.packet;
    const k = r.int(0, 8);
    if (k === 0) { const b = Uint8Array.from(p); const at = r.int(0, b.length - 1); b[at] = (b[at]! + r.int(1, 255)) & 0xff; m.packet = b; return { tag: 'osdp.byteSet', expect: err('bad_osdp', 'unsupported_secure_channel', 'bad_parity', 'unknown_format') }; }
    if (k === 1) { m.packet = p.subarray(0, r.int(0, p.length - 1)); return { tag: 'osdp.truncated', expect: err('bad_osdp', 'bad_message') }; }
    if (k === 2) { m.packet = r.pick(['53', 5, null, [0x53], { hex: '5' }]); return { tag: 'osdp.packetType', expect: err() }; }
    if (k === 3) {
      // a well-formed packet (valid CRC) around random contents: the reply decoders get exercised
      const code = r.pick([0x50, 0x51, 0x53, 0x40, 0x45, 0x76, r.int(0, 255)]);
      const data = r.bytes(r.pick([0, 1, 2, 3, 4, 8, 70, 300, 4000]));
      if (code === 0x51 && data.length >= 3 && r.chance(0.5)) data[2] = data.length - 3;
      if (code === 0x50 && data.length >= 4 && r.chance(0.5)) { data[1] = r.int(0, 1); const bits = (data.length - 4) * 8 - r.int(0, 7); data[2] = bits & 0xff; data[3] = bits >> 8; }
      m.packet = buildPacket({ address: r.int(0, 127), reply: r.chance(0.9), sqn: r.int(0, 3), crc: r.chance(0.8), code, data });
      return { tag: `osdp.wellFormed(0x${code.toString(16)})` };
    }
    if (k === 4) { const b = Uint8Array.from(p); b[4]! |= 0x08; m.packet = b; return { tag: 'osdp.secureBit', expect: err('unsupported_secure_channel', 'bad_osdp') }; }
    if (k === 5) { m.packet = Uint8Array.of(...new Array(r.int(1, 2000)).fill(0xff), ...p); return { tag: 'osdp.marks' }; }
    if (k === 6) {
      const text = Array.from({ length: r.int(1, 70) }, () => String.fromCharCode(r.chance(0.9) ? r.int(0x20, 0x7e) : r.int(0, 255))).join('');
      m.packet = buildPacket({ address: 5, reply: true, sqn: 1, crc: true, code: 0x51, data: Uint8Array.of(0, 0, text.length, ...Buffer.from(text, 'latin1')) });
      return { tag: 'osdp.fmtText', credPath: null };
    }
    if (k === 7) { m.packet = buildPacket({ address: 5, reply: true, sqn: 1, crc: true, code: 0x50, data: r.bytes(r.int(60_000, 65_400)) }); return { tag: 'osdp.huge', expect: err() }; }
    const keys = Uint8Array.from({ length: r.int(1, 70) }, () => r.pick([0x30, 0x39, 0x7f, 0x0d, r.int(0, 255)]));
    m.packet = buildPacket({ address: 5, reply: true, sqn: 1, crc: true, code: 0x53, data: Uint8Array.of(0, keys.length, ...keys) });
    return { tag: 'osdp.keypad', credPath: null };
  },
  'osdp.native': (m, _r, _e, ctl) => {
    // a native badge from an osdp bridge: passes through (the bridge may speak native messages)
    if (ctl.protocol !== 'osdp' || m.t !== 'osdp') return null;
    delete m.packet; m.t = 'badge'; m.cred = 1000; m.reader = 'o-in';
    return { tag: 'osdp.nativeBadge', credPath: '1000' };
  },
};
const MUTATION_NAMES = Object.keys(MUTATIONS);

/** `[[[...1000...]]]` `depth` levels deep */
const nest = (depth: number): Deep => new Deep(depth, 1000);

export interface GenOptions { skip: Set<string> }

/** A valid message, then 1-2 structural mutations (the last expectation wins, an unexpected combination drops it). */
export function mutatedMsg(r: Rng, ctl: Ctl, id: number, enc: Enc, o: GenOptions): Msg {
  const base = validMsg(r, ctl, id, true);
  const m = base.value as Record<string, unknown>;
  const n = r.chance(0.85) ? 1 : 2;
  const tags: string[] = [];
  let expect: Expect | undefined;
  let item: string | undefined;
  let path: string | undefined | null = base.credPath;
  for (let k = 0; k < n; k++) {
    for (let tries = 0; tries < 8; tries++) {
      const name = r.pick(MUTATION_NAMES);
      if (o.skip.has(name) || o.skip.has(name.split('.')[0]!)) continue;
      const out = MUTATIONS[name]!(m, r, enc, ctl);
      if (!out) continue;
      tags.push(out.tag);
      expect = out.expect; item = out.item;
      if (out.credPath !== undefined) path = out.credPath;
      break;
    }
  }
  if (tags.length === 0) return base;
  // two mutations: their effects may combine (e.g. a bad id and a huge reader): require only well-formedness
  const msg: Msg = { value: m, tag: tags.join('+') };
  if (tags.length === 1 && expect) msg.expect = expect;
  if (tags.length === 1 && item) msg.item = item;
  if (path) msg.credPath = path;
  return msg;
}

/** Byte mutations of an encoded frame: flip, set, insert, delete, truncate, duplicate a slice. */
export function mutateBytes(r: Rng, b: Uint8Array): { bytes: Uint8Array; how: string[] } {
  let out = Uint8Array.from(b);
  const how: string[] = [];
  for (let k = r.int(1, 3); k > 0; k--) {
    const n = out.length;
    const at = n === 0 ? 0 : r.int(0, n - 1);
    switch (r.int(0, 5)) {
      case 0: if (n) { const bit = r.int(0, 7); out[at]! ^= 1 << bit; how.push(`flip ${at}.${bit}`); } break;
      case 1: if (n) { const v = r.pick([0x00, 0xff, 0xc1, 0xdd, 0xdf, 0xdb, 0xc6, 0xcf, 0xd3, 0x7f, 0x80, r.int(0, 255)]); out[at] = v; how.push(`set ${at}=${v.toString(16)}`); } break;
      case 2: { const ins = r.bytes(r.int(1, 4)); out = Uint8Array.from([...out.subarray(0, at), ...ins, ...out.subarray(at)]); how.push(`insert ${at}:${Buffer.from(ins).toString('hex')}`); break; }
      case 3: if (n) { const len = r.int(1, Math.min(4, n - at)); out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + len)]); how.push(`delete ${at}+${len}`); } break;
      case 4: { const len = r.int(0, n); out = out.slice(0, len); how.push(`truncate ${len}`); break; }
      default: if (n) { const len = r.int(1, Math.min(16, n - at)); out = Uint8Array.from([...out.subarray(0, at + len), ...out.subarray(at, at + len), ...out.subarray(at + len)]); how.push(`dup ${at}+${len}`); }
    }
  }
  return { bytes: out, how };
}

/** Junk frames: not MessagePack, not a map or array, empty, deep, the never-used byte. */
export function junkFrame(r: Rng): { bytes: Uint8Array; tag: string } {
  switch (r.int(0, 9)) {
    case 0: return { bytes: r.bytes(r.int(1, 64)), tag: 'junk.random' };
    case 1: return { bytes: new Uint8Array(0), tag: 'junk.empty' };
    case 2: return { bytes: encode(r.pick([7, 'badge', null, true, -1, 1.5, U64MAX])), tag: 'junk.scalar' };
    case 3: return { bytes: encode(r.bytes(10)), tag: 'junk.bin' };
    case 4: return { bytes: Uint8Array.of(0xc1), tag: 'junk.c1' };
    case 5: return { bytes: deepArray(r.pick([1000, 100_000, 500_000])), tag: 'junk.deepArray' };
    case 6: return { bytes: encode(new Ext(-1, r.bytes(r.pick([4, 8, 12])))), tag: 'junk.timestampExt' };
    case 7: return { bytes: Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), tag: 'junk.hugeArrayHeader' };
    case 8: return { bytes: Uint8Array.of(0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x74), tag: 'junk.hugeMapHeader' };
    default: return { bytes: Uint8Array.of(0x81, 0xa1, 0x74, 0xdb, 0xff, 0xff, 0xff, 0xf0), tag: 'junk.hugeStrHeader' };
  }
}

/** JSON with bigints as digits, binary as {"hex"}, RawStr bytes inserted raw (invalid UTF-8 on purpose). */
export function jsonBytes(v: unknown): Buffer {
  const parts: Buffer[] = [];
  const w = (s: string): void => { parts.push(Buffer.from(s, 'utf8')); };
  const walk = (x: unknown): void => {
    if (x === undefined || x === null || x instanceof Ext) w('null');
    else if (typeof x === 'bigint') w(x.toString());
    else if (x instanceof F64) w(String(x.value));
    else if (x instanceof Deep) { w('['.repeat(x.depth)); walk(x.inner); w(']'.repeat(x.depth)); }
    else if (x instanceof RawStr) { w('"'); parts.push(Buffer.from(x.bytes)); w('"'); }
    else if (x instanceof Uint8Array) w(`{"hex":"${Buffer.from(x).toString('hex')}"}`);
    else if (Array.isArray(x)) { w('['); x.forEach((y, i) => { if (i) w(','); walk(y); }); w(']'); }
    else if (typeof x === 'object') {
      w('{');
      let first = true;
      for (const [k, y] of Object.entries(x as Record<string, unknown>)) { if (y === undefined) continue; if (!first) w(','); first = false; w(JSON.stringify(k) + ':'); walk(y); }
      w('}');
    } else w(JSON.stringify(x));
  };
  walk(v);
  return Buffer.concat(parts);
}

/** A short readable form of a value for failure messages. */
export function show(v: unknown, max = 400): string {
  const s = JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return `${x}n`;
    if (x instanceof Uint8Array) return `<bin ${x.length}: ${Buffer.from(x.subarray(0, 48)).toString('hex')}${x.length > 48 ? '…' : ''}>`;
    if (x instanceof RawStr) return `<raw str ${Buffer.from(x.bytes).toString('hex')}>`;
    if (x instanceof F64) return `<float64 ${x.value}>`;
    if (x instanceof Deep) return `<${x.depth} nested arrays around ${String(x.inner)}>`;
    if (x instanceof Ext) return `<ext ${x.type}: ${Buffer.from(x.data).toString('hex')}>`;
    if (typeof x === 'string' && x.length > 80) return `${x.slice(0, 40)}…<${x.length} chars>…${x.slice(-12)}`;
    return x;
  }) ?? String(v);
  return s.length > max ? s.slice(0, max) + `…(${s.length} chars)` : s;
}

export const hex = (b: Uint8Array, max = 160): string => Buffer.from(b.subarray(0, max)).toString('hex') + (b.length > max ? `…(${b.length} bytes)` : '');
