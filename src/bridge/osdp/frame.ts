/**
 * OSDP frames as they travel on the bus, with the Secure Channel parts the
 * engine's adapter (src/adapters/osdp/packet.ts) refuses. The CRC and the
 * checksum are the adapter's (src/adapters/osdp/crc.ts).
 *
 *   [0xFF]  SOM   ADDR         LEN_LSB LEN_MSB  CTRL   [SCB…]             CODE  DATA…  [MAC×4]   CKSUM | CRC_LSB CRC_MSB
 *   mark    0x53  bit 7=reply  LEN = SOM..check        SEC_BLK_LEN (counts    (ciphertext           low byte first
 *                              (mark excluded)         itself), TYPE, DATA…    with SCS_17/18)
 *
 *   CTRL: bits 0-1 sequence, bit 2 CRC-16 (else 8-bit checksum), bit 3 SCB present.
 *   MAC: present when the SCB type is 0x15-0x18; the first 4 bytes of the
 *   AES MAC over SOM..last data byte (secure.ts).
 */
import { ApbError } from '../../errors.js';
import { checksum8, crc16AugCcitt } from '../../adapters/osdp/crc.js';

import { SOM, MARK } from '../../adapters/osdp/packet.js';
export { SOM, MARK }; // one definition of the framing bytes for the adapter and the bridge
/** the smallest frame: SOM ADDR LEN LEN CTRL CODE CKSUM */
export const MIN_FRAME = 7;
/** the bridge refuses longer frames (OSDP readers send far less; a typical PD buffer is 128-1440 bytes) */
export const MAX_FRAME = 1440;

export interface Frame {
  address: number;           // 0-0x7F, reply bit removed
  reply: boolean;            // ADDR bit 7: sent by a PD
  sqn: number;               // 0-3
  crc: boolean;              // CRC-16 (true) or checksum
  /** the whole security block (SEC_BLK_LEN, TYPE, DATA…), or null */
  scb: Uint8Array | null;
  code: number;
  /** as on the wire: ciphertext when the SCB type is 0x17/0x18 */
  data: Uint8Array;
  /** the 4 MAC bytes (SCB types 0x15-0x18), else null */
  mac: Uint8Array | null;
  /** SOM..last data byte: what the MAC covers */
  macInput: Uint8Array;
}

export interface FrameSpec {
  address: number; reply?: boolean; sqn: number; crc: boolean;
  scb?: Uint8Array | null; code: number; data?: Uint8Array;
  /** the MAC of SOM..data (called after LEN is final); required when the SCB type is 0x15-0x18 */
  mac?: (covered: Uint8Array) => Uint8Array;
}

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0').toUpperCase();
const hex4 = (v: number): string => '0x' + v.toString(16).padStart(4, '0').toUpperCase();
const bad = (message: string): ApbError => new ApbError('bad_osdp', message);

export const hasMac = (scb: Uint8Array | null): boolean => scb !== null && scb.length >= 2 && scb[1]! >= 0x15 && scb[1]! <= 0x18;

/** One frame, no mark byte (the sender adds it). */
export function encodeFrame(f: FrameSpec): Uint8Array {
  const data = f.data ?? new Uint8Array(0);
  const scb = f.scb ?? null;
  const macLen = hasMac(scb) ? 4 : 0;
  if (macLen && !f.mac) throw new ApbError('internal', 'encodeFrame: a secure block of type 0x15-0x18 needs a MAC function');
  const checkLen = f.crc ? 2 : 1;
  const body = 5 + (scb?.length ?? 0) + 1 + data.length;
  const len = body + macLen + checkLen;
  if (len > MAX_FRAME) throw bad(`frame of ${len} bytes is longer than ${MAX_FRAME}`);
  const p = new Uint8Array(len);
  p[0] = SOM;
  p[1] = (f.address & 0x7f) | (f.reply ? 0x80 : 0);
  p[2] = len & 0xff;
  p[3] = len >> 8;
  p[4] = (f.sqn & 0x03) | (f.crc ? 0x04 : 0) | (scb ? 0x08 : 0);
  let at = 5;
  if (scb) { p.set(scb, at); at += scb.length; }
  p[at++] = f.code;
  p.set(data, at);
  at += data.length;
  if (macLen) { p.set(f.mac!(p.subarray(0, body)).subarray(0, 4), at); at += 4; }
  if (f.crc) {
    const c = crc16AugCcitt(p, 0, at);
    p[at] = c & 0xff;
    p[at + 1] = c >> 8;
  } else p[at] = checksum8(p, 0, at);
  return p;
}

/** The check (CRC or checksum) of a complete frame without mark bytes; null when it holds, else why not. */
export function checkError(p: Uint8Array): string | null {
  const crc = (p[4]! & 0x04) !== 0;
  const body = p.length - (crc ? 2 : 1);
  if (crc) {
    const want = crc16AugCcitt(p, 0, body), got = p[body]! | (p[body + 1]! << 8);
    return got === want ? null : `CRC: frame has ${hex4(got)}, expected ${hex4(want)}`;
  }
  const want = checksum8(p, 0, body), got = p[body]!;
  return got === want ? null : `checksum: frame has ${hex2(got)}, expected ${hex2(want)}`;
}

/** Parses one complete frame (leading marks allowed); bad_osdp says exactly what is wrong. */
export function decodeFrame(input: Uint8Array): Frame {
  let i = 0;
  while (i < input.length && input[i] === MARK) i++;
  const p = input.subarray(i);
  if (p.length === 0) throw bad('frame: empty');
  if (p[0] !== SOM) throw bad(`SOM: expected 0x53, got ${hex2(p[0]!)}`);
  if (p.length < MIN_FRAME) throw bad(`length: ${p.length} bytes, a frame has at least ${MIN_FRAME}`);
  const len = p[2]! | (p[3]! << 8);
  if (len !== p.length) throw bad(`length: LEN says ${len} bytes, the frame has ${p.length}`);
  const ctrl = p[4]!;
  const crc = (ctrl & 0x04) !== 0;
  const checkLen = crc ? 2 : 1;
  let codeAt = 5;
  let scb: Uint8Array | null = null;
  if (ctrl & 0x08) {
    const sbl = p[5]!;
    if (sbl < 2) throw bad(`security block: SEC_BLK_LEN ${sbl} is below 2`);
    scb = p.subarray(5, 5 + sbl);
    codeAt += sbl;
  }
  const macLen = hasMac(scb) ? 4 : 0;
  const min = codeAt + 1 + macLen + checkLen;
  if (len < min) throw bad(`length: ${len} bytes is too short for the header${scb ? ', security block' : ''}, a code${macLen ? ', a MAC' : ''} and the ${crc ? 'CRC' : 'checksum'} (${min} at least)`);
  const err = checkError(p);
  if (err) throw bad(err);
  const end = len - checkLen - macLen;
  return {
    address: p[1]! & 0x7f, reply: (p[1]! & 0x80) !== 0, sqn: ctrl & 0x03, crc, scb, code: p[codeAt]!,
    data: p.subarray(codeAt + 1, end), mac: macLen ? p.subarray(end, end + 4) : null, macInput: p.subarray(0, end),
  };
}

/**
 * Cuts a byte stream (serial port chunks, arriving in any split) into
 * frames. A SOM whose LEN is impossible or whose check fails is taken for a
 * stray 0x53 and the scan moves one byte on, so one corrupt frame never
 * hides the next good one. Bytes that belong to no frame are counted.
 */
export class Deframer {
  private buf = new Uint8Array(0);
  /** bytes skipped (neither a mark nor part of a valid frame) */
  skipped = 0;
  /** frames whose LEN was plausible but whose check failed */
  badChecks = 0;

  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < joined.length) {
      if (joined[i] !== SOM) { if (joined[i] !== MARK) this.skipped++; i++; continue; }
      if (joined.length - i < 4) break; // LEN not here yet
      const len = joined[i + 2]! | (joined[i + 3]! << 8);
      if (len < MIN_FRAME || len > MAX_FRAME) { this.skipped++; i++; continue; }
      if (joined.length - i < len) break; // the rest is still on the wire
      const p = joined.slice(i, i + len);
      if (checkError(p) !== null) { this.badChecks++; this.skipped++; i++; continue; }
      out.push(p);
      i += len;
    }
    this.buf = joined.slice(i);
    return out;
  }

  /** drops a partial frame (after a reply timeout: what is left can never complete) */
  reset(): void { this.skipped += this.buf.length; this.buf = new Uint8Array(0); }
  get pending(): number { return this.buf.length; }
}

export const nextSqn = (s: number): number => (s >= 3 ? 1 : s + 1);
