/**
 * Credentials. On the wire a credential is an unsigned integer (up to
 * 2^64-1), a string (1-64 UTF-8 bytes) or binary (1-32 bytes); 123 and "123"
 * are different credentials (PROTOCOL.md). Inside the host they are a `Cred`;
 * their text form (also the `{cred}` path form of the HTTP API) is:
 *   integer -> decimal digits        "1000042"
 *   string  -> "s:" + URL-encoded    "s:ticket%2042"
 *   binary  -> "x:" + lowercase hex  "x:04a1b2"
 * The text form is a bijection, so it is also a safe exact map key.
 */
import { ApbError } from '../errors.js';

export type Cred =
  | { kind: 'int'; value: bigint }
  | { kind: 'str'; value: string; bytes: Uint8Array }
  | { kind: 'bin'; value: Uint8Array };

export const MAX_U64 = (1n << 64n) - 1n;
export const MAX_STR_BYTES = 64;
export const MAX_BIN_BYTES = 32;
const enc = new TextEncoder();

/**
 * UTF-8 bytes of s. Short ASCII strings (nearly every badge) are copied by a
 * plain loop: several times faster than TextEncoder.encode for them. Any
 * string longer than MAX_STR_BYTES UTF-16 units has more than MAX_STR_BYTES
 * UTF-8 bytes, so those go to the encoder only to be rejected by the caller.
 */
function utf8(s: string): Uint8Array {
  const n = s.length;
  if (n <= MAX_STR_BYTES) {
    const b = new Uint8Array(n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[i] = c;
    }
    if (i === n) return b;
  }
  return enc.encode(s);
}

/** 2^53: the one integer beyond Number.MAX_SAFE_INTEGER a number holds exactly (msgpackr decodes a uint64 2^53 to it) */
export const TWO_53 = 2 ** 53;

/** false for a string holding a lone UTF-16 surrogate (JSON "\ud800"): it has no UTF-8 form, so no credential or id can be one */
export function wellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** Validates a decoded wire value (number, bigint, string, Uint8Array) into a Cred. */
export function parseCred(v: unknown, field = 'cred'): Cred {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) {
      if (v === TWO_53) return { kind: 'int', value: 1n << 53n };
      throw new ApbError('bad_message', `${field}: must be an unsigned integer up to 2^64-1, a string or binary`);
    }
    return { kind: 'int', value: BigInt(v) };
  }
  if (typeof v === 'bigint') {
    if (v < 0n || v > MAX_U64) throw new ApbError('bad_message', `${field}: integer out of range 0..2^64-1`);
    return { kind: 'int', value: v };
  }
  if (typeof v === 'string') {
    // more UTF-16 units than MAX_STR_BYTES is more UTF-8 bytes too: refused before any encoding
    const bytes = v.length > MAX_STR_BYTES ? null : utf8(v);
    if (bytes === null || bytes.length < 1 || bytes.length > MAX_STR_BYTES) throw new ApbError('bad_message', `${field}: string must be 1-${MAX_STR_BYTES} UTF-8 bytes`);
    // TextEncoder turns a lone surrogate into U+FFFD: two strings would become one credential
    if (bytes.length !== v.length && !wellFormed(v)) throw new ApbError('bad_message', `${field}: not valid Unicode (a lone UTF-16 surrogate)`);
    return { kind: 'str', value: v, bytes };
  }
  if (v instanceof Uint8Array) {
    if (v.length < 1 || v.length > MAX_BIN_BYTES) throw new ApbError('bad_message', `${field}: binary must be 1-${MAX_BIN_BYTES} bytes`);
    return { kind: 'bin', value: Uint8Array.from(v) };
  }
  throw new ApbError('bad_message', `${field}: must be an unsigned integer, a string or binary`);
}

export function credToText(c: Cred): string {
  switch (c.kind) {
    case 'int': return c.value.toString(10);
    case 'str': return 's:' + encodeURIComponent(c.value);
    case 'bin': return 'x:' + Buffer.from(c.value).toString('hex');
  }
}

/** Parses the text/path form back; throws bad_message naming `field`. */
export function credFromText(s: string, field = 'cred'): Cred {
  if (/^[0-9]+$/.test(s)) return parseCred(BigInt(s), field);
  if (s.startsWith('s:')) {
    let text: string;
    try { text = decodeURIComponent(s.slice(2)); } catch { throw new ApbError('bad_message', `${field}: bad URL encoding`); }
    return parseCred(text, field);
  }
  if (s.startsWith('x:')) {
    const hex = s.slice(2);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new ApbError('bad_message', `${field}: "x:" must be followed by an even number of hex digits`);
    return parseCred(Uint8Array.from(Buffer.from(hex, 'hex')), field);
  }
  throw new ApbError('bad_message', `${field}: expected decimal digits, "s:<url-encoded text>" or "x:<hex>"`);
}

/** The wire value of a credential (for replies, exports, replay files). */
export function credToWire(c: Cred): number | bigint | string | Uint8Array {
  if (c.kind === 'int') return c.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(c.value) : c.value;
  return c.value;
}
