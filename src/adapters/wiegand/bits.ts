/**
 * Bit access on a Wiegand read as the bridges send it:
 *
 *   raw byte:      0         1         2         3
 *   bit order:  01234567  89......  ........  ........
 *               ^ first bit transmitted = most significant bit of byte 0
 *
 * Position p lives in byte p >> 3 at mask 0x80 >> (p & 7). The read is
 * left-aligned and zero-padded: a 26-bit read fills 3 bytes and the top two
 * bits of the 4th. Fields are read MSB first (the first transmitted bit of a
 * field is its most significant bit), as every HID layout defines them.
 */

/** bit p (0 = first transmitted) */
export function bitAt(raw: Uint8Array, p: number): number {
  return (raw[p >> 3]! >> (7 - (p & 7))) & 1;
}

export function setBit(raw: Uint8Array, p: number, v: number): void {
  const m = 0x80 >> (p & 7);
  if (v) raw[p >> 3]! |= m;
  else raw[p >> 3]! &= ~m;
}

/** Unsigned field of `length` bits from `start`: a number up to 53 bits, a bigint beyond. */
export function readField(raw: Uint8Array, start: number, length: number): number | bigint {
  if (length <= 53) {
    let v = 0;
    for (let p = start, end = start + length; p < end; p++) v = v * 2 + ((raw[p >> 3]! >> (7 - (p & 7))) & 1);
    return v;
  }
  let v = 0n;
  for (let p = start, end = start + length; p < end; p++) v = (v << 1n) | BigInt(bitAt(raw, p));
  return v;
}

/** Writes the low `length` bits of `value` MSB first from `start` (value must fit; callers check). */
export function writeField(raw: Uint8Array, start: number, length: number, value: number | bigint): void {
  let v = BigInt(value);
  for (let p = start + length - 1; p >= start; p--) { setBit(raw, p, Number(v & 1n)); v >>= 1n; }
}

/** Number of bytes a read of `bits` bits occupies. */
export const bytesFor = (bits: number): number => (bits + 7) >> 3;

/** "0110..." (first transmitted first) → left-aligned bytes. For tests and vectors. */
export function bitStringToBytes(s: string): Uint8Array {
  const raw = new Uint8Array(bytesFor(s.length));
  for (let i = 0; i < s.length; i++) if (s[i] === '1') setBit(raw, i, 1);
  return raw;
}

export function bytesToBitString(raw: Uint8Array, bits: number): string {
  let s = '';
  for (let i = 0; i < bits; i++) s += bitAt(raw, i) ? '1' : '0';
  return s;
}
