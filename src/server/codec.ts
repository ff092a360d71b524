/**
 * Plain MessagePack on the wire (PROTOCOL.md): no records, no extensions.
 * Integers beyond 2^53 decode as BigInt ('auto'), so a 64-bit `id` or
 * `cred` survives exactly; smaller ones stay numbers.
 *
 * Replies are encoded once per message and kept as bytes: the idempotency
 * store resends them verbatim, and a batch reply is an array header followed
 * by the already-encoded elements (no re-encoding).
 */
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

export function encode(v: unknown): Uint8Array {
  return packr.pack(v);
}

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
  return v;
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
