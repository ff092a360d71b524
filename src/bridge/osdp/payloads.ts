/**
 * Data blocks of the commands the bridge sends and of the replies it reads
 * besides card reads (card reads are decoded by the engine's own adapter,
 * src/adapters/osdp/replies.ts, so a read means the same credential on
 * both paths).
 *
 *   osdp_LED  0x69  the adapter's 14-byte record (reader, LED 0, temporary on/off/colours/timer, permanent: no change)
 *   osdp_BUZ  0x6A  reader, tone 2, on ×100 ms, off ×100 ms, count
 *   osdp_OUT  0x68  output, control 0x05 (temporary on, then back to the permanent state), timer LSB, MSB (×100 ms)
 *   osdp_KEYSET 0x75  key type 1 (SCBK), length 16, key[16]
 *   osdp_ISTATR 0x49  one byte per input: 0 inactive, 1 active
 *   osdp_PDID 0x45  vendor[3], model, version, serial[4] LE, firmware[3]
 *   osdp_NAK  0x41  error code, [details]
 */
import { ApbError } from '../../errors.js';
import { buzzerCommand, ledCommand } from '../../adapters/osdp/commands.js';

export { COLOR_AMBER, COLOR_BLACK, COLOR_GREEN, COLOR_RED } from '../../adapters/osdp/commands.js';

/** the data of a CRC packet built by the adapter: after CODE (offset 5), before the 2 CRC bytes */
const dataOf = (pkt: Uint8Array): Uint8Array => pkt.slice(6, pkt.length - 2);

export function ledData(reader: number, color: number, seconds: number): Uint8Array {
  return dataOf(ledCommand({ address: 0, reader, sqn: 0, crc: true }, color, seconds));
}

export function buzData(reader: number, onTenths: number, offTenths: number, count: number): Uint8Array {
  return dataOf(buzzerCommand({ address: 0, reader, sqn: 0, crc: true }, onTenths, offTenths, count));
}

export const OUT_TEMP_ON = 0x05;

export function outPulseData(output: number, ms: number): Uint8Array {
  const tenths = Math.max(1, Math.min(0xffff, Math.round(ms / 100)));
  return Uint8Array.of(output, OUT_TEMP_ON, tenths & 0xff, tenths >> 8);
}

export function keysetData(scbk: Uint8Array): Uint8Array {
  const d = new Uint8Array(18);
  d[0] = 1; d[1] = 16; d.set(scbk, 2);
  return d;
}

export function parseKeyset(d: Uint8Array): Uint8Array {
  if (d.length !== 18 || d[0] !== 1 || d[1] !== 16) throw new ApbError('bad_osdp', `osdp_KEYSET: expected key type 1, length 16 and 16 key bytes, got ${d.length} bytes`);
  return d.slice(2);
}

export function parseInputs(d: Uint8Array): boolean[] {
  const out: boolean[] = [];
  for (const b of d) {
    if (b > 1) throw new ApbError('bad_osdp', `osdp_ISTATR: input status byte 0x${b.toString(16)} is neither 0 nor 1`);
    out.push(b === 1);
  }
  return out;
}

export interface PdIdentity { vendor: string; model: number; version: number; serial: number; firmware: string }

export function parsePdid(d: Uint8Array): PdIdentity {
  if (d.length < 12) throw new ApbError('bad_osdp', `osdp_PDID: ${d.length} bytes, expected 12`);
  const hex = (a: Uint8Array): string => Buffer.from(a).toString('hex');
  return {
    vendor: hex(d.subarray(0, 3)), model: d[3]!, version: d[4]!,
    serial: (d[5]! | (d[6]! << 8) | (d[7]! << 16) | (d[8]! << 24)) >>> 0, firmware: `${d[9]}.${d[10]}.${d[11]}`,
  };
}

const NAK_TEXT: Record<number, string> = {
  1: 'message check error', 2: 'command length error', 3: 'unknown command', 4: 'unexpected sequence number',
  5: 'secure channel not supported', 6: 'secure channel condition not met', 7: 'biometric type not supported', 8: 'biometric format not supported', 9: 'unable to process record',
};

export function nakText(d: Uint8Array): string {
  const c = d[0] ?? 0;
  return `NAK ${c}${NAK_TEXT[c] ? ` (${NAK_TEXT[c]})` : ''}`;
}
