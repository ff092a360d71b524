/**
 * OSDP packet framing (SIA OSDP 2.2 section 5), as an RS-485 bridge forwards
 * it whole:
 *
 *   [0xFF…]  SOM   ADDR        LEN_LSB LEN_MSB  CTRL         [SCB…]   CODE  DATA…  CKSUM | CRC_LSB CRC_MSB
 *   mark     0x53  bit7=reply  LEN = SOM..check (marks excluded)       reply/command code
 *
 *   CTRL: bits 0-1 sequence number, bit 2 = 16-bit CRC (else 8-bit
 *   checksum), bit 3 = security control block present, bits 4-7 ignored.
 *   SCB: SEC_BLK_LEN (counts itself), SEC_BLK_TYPE, SEC_BLK_DATA…
 *
 * We do not implement the Secure Channel Protocol (SCP, AES-128): a packet
 * with a security block is refused with unsupported_secure_channel.
 */
import { ApbError } from '../../errors.js';
import { checksum8, crc16AugCcitt } from './crc.js';

export const SOM = 0x53;
export const MARK = 0xff;

export interface OsdpPacket {
  address: number;          // 0-0x7F, reply bit removed
  reply: boolean;           // ADDR bit 7: sent by a PD
  sqn: number;              // 0-3
  crc: boolean;             // true: CRC-16, false: checksum
  code: number;             // command or reply code
  data: Uint8Array;         // view into the input
}

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0').toUpperCase();
const hex4 = (v: number): string => '0x' + v.toString(16).padStart(4, '0').toUpperCase();
const bad = (message: string): ApbError => new ApbError('bad_osdp', message);

export function parsePacket(input: unknown): OsdpPacket {
  if (!(input instanceof Uint8Array)) throw new ApbError('bad_message', 'packet: must be binary (one OSDP packet as received on the bus)');
  let i = 0;
  while (i < input.length && input[i] === MARK) i++;
  if (i === input.length) throw bad(input.length ? 'packet: only 0xFF mark bytes, no SOM' : 'packet: empty');
  const p = input.subarray(i);
  if (p[0] !== SOM) throw bad(`SOM: expected 0x53, got ${hex2(p[0]!)}`);
  if (p.length < 5) throw bad(`length: ${p.length} bytes, shorter than the 5-byte header (SOM, ADDR, LEN, CTRL)`);
  const len = p[2]! | (p[3]! << 8);
  if (len !== p.length) throw bad(`length: LEN says ${len} bytes, the packet has ${p.length} (mark bytes excluded)`);
  const ctrl = p[4]!;
  const crc = (ctrl & 0x04) !== 0;
  const scb = (ctrl & 0x08) !== 0;
  const checkLen = crc ? 2 : 1;
  let codeAt = 5;
  if (scb) {
    if (p.length < 6) throw bad('length: the security block length byte is missing');
    const sbl = p[5]!;
    if (sbl < 2) throw bad(`security block: SEC_BLK_LEN ${sbl} is below 2`);
    codeAt += sbl;
  }
  const min = codeAt + 1 + checkLen;
  if (len < min) throw bad(`length: ${len} bytes is too short for the header${scb ? ', security block' : ''}, a code and a ${crc ? '2-byte CRC' : '1-byte checksum'} (${min} at least)`);
  const body = len - checkLen;
  if (crc) {
    const want = crc16AugCcitt(p, 0, body);
    const got = p[body]! | (p[body + 1]! << 8);
    if (got !== want) throw bad(`CRC: packet has ${hex4(got)}, expected ${hex4(want)}`);
  } else {
    const want = checksum8(p, 0, body);
    const got = p[body]!;
    if (got !== want) throw bad(`checksum: packet has ${hex2(got)}, expected ${hex2(want)}`);
  }
  if (scb) throw new ApbError('unsupported_secure_channel', `security block type ${hex2(p[6]!)} present: OSDP secure channel (SCP) is not supported; run the reader in clear text or end the secure channel in the bridge`);
  return { address: p[1]! & 0x7f, reply: (p[1]! & 0x80) !== 0, sqn: ctrl & 0x03, crc, code: p[codeAt]!, data: p.subarray(codeAt + 1, body) };
}

/** Builds a packet (no mark byte) with a CRC or a checksum. */
export function buildPacket(opts: { address: number; reply?: boolean; sqn: number; crc: boolean; code: number; data?: Uint8Array }): Uint8Array {
  const data = opts.data ?? new Uint8Array(0);
  const len = 6 + data.length + (opts.crc ? 2 : 1);
  const p = new Uint8Array(len);
  p[0] = SOM;
  p[1] = (opts.address & 0x7f) | (opts.reply ? 0x80 : 0);
  p[2] = len & 0xff;
  p[3] = len >> 8;
  p[4] = (opts.sqn & 0x03) | (opts.crc ? 0x04 : 0);
  p[5] = opts.code;
  p.set(data, 6);
  const body = 6 + data.length;
  if (opts.crc) {
    const c = crc16AugCcitt(p, 0, body);
    p[body] = c & 0xff;
    p[body + 1] = c >> 8;
  } else p[body] = checksum8(p, 0, body);
  return p;
}
