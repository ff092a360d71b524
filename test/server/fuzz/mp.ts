/**
 * A tiny MessagePack encoder and strict decoder for the fuzz test (not the
 * server's msgpackr, not @msgpack/msgpack): the encoder can write what a
 * normal library refuses to (strings of arbitrary bytes, floats holding
 * integers, extension types, lying length headers come from byte mutation);
 * the decoder reports what PROTOCOL.md forbids in a reply (floats,
 * extension types, strings that are not UTF-8, trailing bytes).
 */

/** a str whose bytes are written as given (invalid UTF-8 on purpose) */
export class RawStr { constructor(readonly bytes: Uint8Array) {} }
/** a float64 even when the value is an integer */
export class F64 { constructor(readonly value: number) {} }
/** `depth` nested one-element arrays around `inner`, written without recursion */
export class Deep { constructor(readonly depth: number, readonly inner: unknown) {} }
/** an extension type */
export class Ext { constructor(readonly type: number, readonly data: Uint8Array) {} }

class Out {
  buf = new Uint8Array(256);
  n = 0;
  need(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  byte(...bs: number[]): void { this.need(bs.length); for (const b of bs) this.buf[this.n++] = b & 0xff; }
  bytes(b: Uint8Array): void { this.need(b.length); this.buf.set(b, this.n); this.n += b.length; }
  u16(v: number): void { this.byte(v >> 8, v); }
  u32(v: number): void { this.byte(v >>> 24, v >>> 16, v >>> 8, v); }
  u64(v: bigint): void { for (let s = 56n; s >= 0n; s -= 8n) this.byte(Number((v >> s) & 0xffn)); }
  f64(v: number): void { const d = new DataView(new ArrayBuffer(8)); d.setFloat64(0, v); this.bytes(new Uint8Array(d.buffer)); }
}

function head(o: Out, n: number, fix: number | null, fixMax: number, c8: number | null, c16: number, c32: number): void {
  if (fix !== null && n <= fixMax) o.byte(fix | n);
  else if (c8 !== null && n < 0x100) o.byte(c8, n);
  else if (n < 0x10000) { o.byte(c16); o.u16(n); } else { o.byte(c32); o.u32(n); }
}

function str(o: Out, b: Uint8Array): void { head(o, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb); o.bytes(b); }

function int(o: Out, v: bigint): void {
  if (v >= 0n) {
    if (v < 128n) o.byte(Number(v));
    else if (v < 0x100n) o.byte(0xcc, Number(v));
    else if (v < 0x10000n) { o.byte(0xcd); o.u16(Number(v)); }
    else if (v < 0x100000000n) { o.byte(0xce); o.u32(Number(v)); }
    else if (v < 1n << 64n) { o.byte(0xcf); o.u64(v); }
    else throw new Error(`cannot encode ${v} as a msgpack integer`);
  } else {
    if (v >= -32n) o.byte(Number(v) & 0xff);
    else if (v >= -128n) o.byte(0xd0, Number(v));
    else if (v >= -32768n) { o.byte(0xd1); o.u16(Number(v) & 0xffff); }
    else if (v >= -(1n << 31n)) { o.byte(0xd2); o.u32(Number(v) >>> 0); }
    else if (v >= -(1n << 63n)) { o.byte(0xd3); o.u64(BigInt.asUintN(64, v)); }
    else throw new Error(`cannot encode ${v} as a msgpack integer`);
  }
}

function enc(o: Out, v: unknown, depth: number): void {
  if (depth > 100_000) throw new Error('too deep');
  if (v === null || v === undefined) o.byte(0xc0);
  else if (v === false) o.byte(0xc2);
  else if (v === true) o.byte(0xc3);
  else if (typeof v === 'bigint') int(o, v);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) int(o, BigInt(v)); else { o.byte(0xcb); o.f64(v); }
  } else if (typeof v === 'string') str(o, Buffer.from(v, 'utf8'));
  else if (v instanceof RawStr) str(o, v.bytes);
  else if (v instanceof F64) { o.byte(0xcb); o.f64(v.value); }
  else if (v instanceof Deep) { o.need(v.depth); o.buf.fill(0x91, o.n, o.n + v.depth); o.n += v.depth; enc(o, v.inner, depth + 1); }
  else if (v instanceof Ext) {
    const n = v.data.length;
    const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
    if (fixed[n] !== undefined) o.byte(fixed[n]!, v.type);
    else { head(o, n, null, 0, 0xc7, 0xc8, 0xc9); o.byte(v.type); }
    o.bytes(v.data);
  } else if (v instanceof Uint8Array) { head(o, v.length, null, 0, 0xc4, 0xc5, 0xc6); o.bytes(v); }
  else if (Array.isArray(v)) { head(o, v.length, 0x90, 15, null, 0xdc, 0xdd); for (const x of v) enc(o, x, depth + 1); }
  else if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    head(o, entries.length, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, x] of entries) { str(o, Buffer.from(k, 'utf8')); enc(o, x, depth + 1); }
  } else throw new Error(`cannot encode ${typeof v}`);
}

/** Encodes a value (deep nesting is written iteratively enough for the depths the fuzzer uses). */
export function encode(v: unknown): Uint8Array {
  const o = new Out();
  enc(o, v, 0);
  return o.buf.slice(0, o.n);
}

/** `[[[...x...]]]` of `depth` levels, written directly (no recursion). */
export function deepArray(depth: number, inner: Uint8Array = Uint8Array.of(0xc0)): Uint8Array {
  const b = new Uint8Array(depth + inner.length);
  b.fill(0x91, 0, depth);
  b.set(inner, depth);
  return b;
}

export interface StrictResult {
  value: unknown;
  /** what PROTOCOL.md forbids in a frame the engine sends */
  problems: string[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes exactly one value; throws on malformed input; lists forbidden
 * constructs in `problems`. `lenient`: the never-used byte 0xc1 inside a
 * frame reads as a marker value (as msgpackr reads it) instead of failing.
 */
export function decodeStrict(b: Uint8Array, lenient = false): StrictResult {
  let p = 0;
  const problems: string[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const take = (n: number): number => { if (p + n > b.length) throw new Error(`truncated at byte ${p}`); const at = p; p += n; return at; };
  const u8 = (): number => b[take(1)]!;
  const u16 = (): number => dv.getUint16(take(2));
  const u32 = (): number => dv.getUint32(take(4));
  const num = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const s = (n: number): string => {
    const at = take(n);
    try { return utf8.decode(b.subarray(at, at + n)); } catch { problems.push(`string at byte ${at} is not UTF-8`); return Buffer.from(b.subarray(at, at + n)).toString('utf8'); }
  };
  const bin = (n: number): Uint8Array => { const at = take(n); return b.slice(at, at + n); };
  const arr = (n: number): unknown[] => { const a: unknown[] = []; for (let i = 0; i < n; i++) a.push(val()); return a; };
  const map = (n: number): Record<string, unknown> => {
    const m: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) { const k = val(); if (typeof k !== 'string') problems.push('map key is not a string'); m[String(k)] = val(); }
    return m;
  };
  const ext = (n: number): unknown => { const t = u8(); problems.push(`extension type ${t}`); return { ext: t, data: bin(n) }; };
  function val(): unknown {
    const c = u8();
    if (c < 0x80) return c;
    if (c < 0x90) return map(c & 0x0f);
    if (c < 0xa0) return arr(c & 0x0f);
    if (c < 0xc0) return s(c & 0x1f);
    if (c >= 0xe0) return c - 0x100;
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: return bin(u16());
      case 0xc6: return bin(u32());
      case 0xc7: return ext(u8());
      case 0xc8: return ext(u16());
      case 0xc9: return ext(u32());
      case 0xca: problems.push(`float32 at byte ${p - 1}`); return dv.getFloat32(take(4));
      case 0xcb: problems.push(`float64 at byte ${p - 1}`); return dv.getFloat64(take(8));
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: return num(dv.getBigUint64(take(8)));
      case 0xd0: return dv.getInt8(take(1));
      case 0xd1: return dv.getInt16(take(2));
      case 0xd2: return dv.getInt32(take(4));
      case 0xd3: return num(dv.getBigInt64(take(8)));
      case 0xd4: return ext(1);
      case 0xd5: return ext(2);
      case 0xd6: return ext(4);
      case 0xd7: return ext(8);
      case 0xd8: return ext(16);
      case 0xd9: return s(u8());
      case 0xda: return s(u16());
      case 0xdb: return s(u32());
      case 0xdc: return arr(u16());
      case 0xdd: return arr(u32());
      case 0xde: return map(u16());
      case 0xdf: return map(u32());
      default:
        if (!lenient) throw new Error(`byte 0x${c.toString(16)} at ${p - 1} is never used`);
        problems.push(`byte 0xc1 at ${p - 1}`);
        return { c1: true };
    }
  }
  const value = val();
  if (p !== b.length) problems.push(`${b.length - p} trailing bytes`);
  return { value, problems };
}

/** The top-level shape of a frame as a conforming decoder sees it: 'map', array length, 'other', or 'invalid'. */
export function frameShape(b: Uint8Array): { kind: 'map' } | { kind: 'array'; length: number } | { kind: 'other' } | { kind: 'invalid' } {
  try {
    const { value } = decodeStrict(b, true);
    if (value !== null && typeof value === 'object' && 'c1' in value) return { kind: 'invalid' };
    if (Array.isArray(value)) return { kind: 'array', length: value.length };
    if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !('ext' in (value as object) && Object.keys(value as object).length === 2)) return { kind: 'map' };
    return { kind: 'other' };
  } catch { return { kind: 'invalid' }; }
}
