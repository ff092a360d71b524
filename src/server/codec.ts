/**
 * Plain MessagePack on the wire (PROTOCOL.md): no records, no extensions.
 * Integers beyond 2^53 decode as BigInt ('auto'), so a 64-bit `id` or
 * `cred` survives exactly; smaller ones stay numbers.
 *
 * Replies are encoded once per message and kept as bytes: the idempotency
 * store resends them verbatim, and a batch reply is an array header followed
 * by the already-encoded elements (no re-encoding).
 */
import { isUtf8 } from 'node:buffer';
import { Packr, Unpackr } from 'msgpackr';
import { ApbError } from '../errors.js';

// 'auto' is supported at runtime by msgpackr 2.x but missing from its typings
const INT64 = 'auto' as unknown as 'bigint';
export const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: INT64 });
export const unpackr = new Unpackr({ useRecords: false, moreTypes: false, int64AsType: INT64, mapsAsObjects: true });

/**
 * msgpackr writes integers beyond 32 bits held in a JS number as float64;
 * PROTOCOL.md integers (`id`, `now`) must stay integers on the wire, so
 * such values are handed to it as BigInt (int64/uint64).
 */
export function wireInt(n: number | bigint): number | bigint {
  return typeof n === 'number' && (n > 0xffffffff || n < -0x80000000) && Number.isInteger(n) ? BigInt(n) : n;
}

/**
 * Any value (HTTP bodies: event lists, action results with `at`...): every
 * integer beyond 32 bits goes out as int64/uint64, never float64. Walks the
 * value; the decision path, whose integers are already wireInt'ed, uses
 * encodeReply instead.
 */
export function encode(v: unknown): Uint8Array {
  return packr.pack(wireInts(v));
}

/** packr.pack for maps whose integers beyond 32 bits are already BigInt (wireInt): no walk. */
export function encodeReply(v: unknown): Uint8Array {
  return packr.pack(v);
}

/** v with every integer number beyond 32 bits as BigInt; objects are copied only where something changed. */
function wireInts(v: unknown): unknown {
  if (typeof v === 'number') return wireInt(v);
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = v[i], y = wireInts(x);
      if (y !== x) { out ??= v.slice(); out[i] = y; }
    }
    return out ?? v;
  }
  const p = Object.getPrototypeOf(v);
  if (p !== Object.prototype && p !== null) return v;
  let out: Record<string, unknown> | null = null;
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k], y = wireInts(x);
    if (y !== x) { out ??= { ...(v as Record<string, unknown>) }; out[k] = y; }
  }
  return out ?? v;
}

/*
 * The last frame decodeFrame decoded, so that the hub, which receives the
 * decoded value synchronously after it, can look at the bytes when a
 * string is suspect (frameHasInvalidUtf8). Two references, no allocation.
 */
let lastValue: unknown = undefined;
let lastBytes: Uint8Array | null = null;

/** Decodes one frame; bad_frame when it is not MessagePack. */
export function decodeFrame(bytes: Uint8Array): unknown {
  let v: unknown;
  try {
    v = unpackr.unpack(bytes);
  } catch (e) {
    throw new ApbError('bad_frame', `not MessagePack: ${(e as Error).message}`);
  }
  // msgpackr turns the never-used byte 0xc1 into a marker object instead of failing
  if (v !== null && typeof v === 'object' && (v as object).constructor?.name === 'C1Type') throw new ApbError('bad_frame', 'not MessagePack: byte 0xc1 is never used');
  lastValue = v;
  lastBytes = bytes;
  return v;
}

/** Drops the reference decodeFrame kept (the socket's buffer is only valid inside its callback). */
export function forgetFrame(): void {
  lastValue = undefined;
  lastBytes = null;
}

/**
 * msgpackr decodes invalid UTF-8 in a str to U+FFFD, so two different byte
 * strings would read as one. Called only when a credential or reader holds
 * U+FFFD (rare: the hot path never gets here): true when `frame` came from
 * decodeFrame and one of its str payloads is not valid UTF-8; false when
 * every str is valid (the U+FFFD was sent as such, EF BF BD) or the value
 * did not come from a MessagePack frame. One pass over the frame's bytes.
 */
export function frameHasInvalidUtf8(frame: unknown): boolean {
  if (frame !== lastValue || lastBytes === null) return false;
  try { return scanStrs(lastBytes); } catch { return true; } // a frame it cannot walk: treat U+FFFD as suspect
}

function scanStrs(b: Uint8Array): boolean {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  let pending = 1; // values still to read (containers add their elements)
  while (pending > 0 && p < b.length) {
    pending--;
    const t = b[p++]!;
    let str = -1;
    let skip = 0;
    if (t <= 0x7f || t >= 0xe0) continue;               // fixint
    if (t <= 0x8f) { pending += 2 * (t & 0x0f); continue; } // fixmap
    if (t <= 0x9f) { pending += t & 0x0f; continue; }       // fixarray
    if (t <= 0xbf) str = t & 0x1f;                           // fixstr
    else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: continue;
        case 0xc4: skip = b[p]!; p += 1; break;
        case 0xc5: skip = dv.getUint16(p); p += 2; break;
        case 0xc6: skip = dv.getUint32(p); p += 4; break;
        case 0xc7: skip = b[p]! + 1; p += 1; break;
        case 0xc8: skip = dv.getUint16(p) + 1; p += 2; break;
        case 0xc9: skip = dv.getUint32(p) + 1; p += 4; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xd9: str = b[p]!; p += 1; break;
        case 0xda: str = dv.getUint16(p); p += 2; break;
        case 0xdb: str = dv.getUint32(p); p += 4; break;
        case 0xdc: pending += dv.getUint16(p); p += 2; continue;
        case 0xdd: pending += dv.getUint32(p); p += 4; continue;
        case 0xde: pending += 2 * dv.getUint16(p); p += 2; continue;
        case 0xdf: pending += 2 * dv.getUint32(p); p += 4; continue;
        default: return false; // 0xc1: decodeFrame refused such frames
      }
    }
    if (str >= 0) {
      if (!isUtf8(b.subarray(p, p + str))) return true;
      p += str;
    } else p += skip;
  }
  return false;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A JSON body as text; bad_frame when it is not UTF-8 (RFC 8259), instead of U+FFFD in its strings. */
export function jsonText(body: Uint8Array): string {
  try { return strictUtf8.decode(body); } catch { throw new ApbError('bad_frame', 'not valid UTF-8 (JSON text must be UTF-8)'); }
}

/** A decoded map (not an array, binary, or an extension object). */
export function isPlainMap(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** msgpack array header for n elements (fixarray / array16 / array32). */
export function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >> 8, n & 0xff);
  return Uint8Array.of(0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** One msgpack array made of already-encoded elements. */
export function concatArray(parts: Uint8Array[]): Uint8Array {
  const head = arrayHeader(parts.length);
  let len = head.length;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  out.set(head, 0);
  let o = head.length;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** JSON that keeps BigInt exact (as bare digits) and writes bytes as {"hex": "..."}. */
export function toJson(v: unknown): string {
  let big = false;
  const s = JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') { big = true; return `\u0000big:${x.toString()}`; }
    if (x instanceof Uint8Array) return { hex: Buffer.from(x).toString('hex') };
    if (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) {
      return { hex: Buffer.from((x as { data: number[] }).data).toString('hex') };
    }
    return x;
  });
  return big ? s.replace(/"\\u0000big:(-?\d+)"/g, '$1') : s;
}
