/**
 * Card-read replies of a PD (SIA OSDP 2.2 section 7) and the credential each
 * becomes:
 *
 *   osdp_RAW     0x50  reader, format code, bit count (LSB, MSB), data…
 *                      → Wiegand-decoded with the site's formats: "<facility>:<card>"
 *   osdp_FMT     0x51  reader, read direction, char count, ASCII chars…
 *                      → digits only "0012345"      → "0:12345"
 *                        "<digits>:<digits>"        → "<facility>:<card>" (leading zeros dropped)
 *                        other printable ASCII      → the text as is
 *   osdp_KEYPPAD 0x53  reader, digit count, keys… ('0'-'9', 0x7F = '*', 0x0D = '#')
 *                      → "pin:<keys>" (a PIN never equals a card)
 */
import { ApbError } from '../../errors.js';
import { checkRaw, decodeRead } from '../wiegand/decode.js';
import type { FormatTable } from '../wiegand/formats.js';
import type { OsdpPacket } from './packet.js';

export const REPLY_RAW = 0x50, REPLY_FMT = 0x51, REPLY_KEYPPAD = 0x53;

/** names of the other reply codes, for messages */
const REPLY_NAMES: Record<number, string> = {
  0x40: 'osdp_ACK', 0x41: 'osdp_NAK', 0x45: 'osdp_PDID', 0x46: 'osdp_PDCAP', 0x48: 'osdp_LSTATR', 0x49: 'osdp_ISTATR',
  0x4a: 'osdp_OSTATR', 0x4b: 'osdp_RSTATR', 0x50: 'osdp_RAW', 0x51: 'osdp_FMT', 0x53: 'osdp_KEYPPAD', 0x54: 'osdp_COM',
  0x57: 'osdp_BIOREADR', 0x58: 'osdp_BIOMATCHR', 0x76: 'osdp_CCRYPT', 0x78: 'osdp_RMAC_I', 0x79: 'osdp_BUSY',
  0x7a: 'osdp_FTSTAT', 0x80: 'osdp_PIVDATAR', 0x81: 'osdp_GENAUTHR', 0x82: 'osdp_CRAUTHR', 0x83: 'osdp_MFGSTATR',
  0x84: 'osdp_MFGERRR', 0x90: 'osdp_MFGREP', 0xb1: 'osdp_XRD',
};

export interface CardRead { reader: number; cred: string; kind: 'raw' | 'fmt' | 'keypad' }

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0').toUpperCase();
const bad = (message: string): ApbError => new ApbError('bad_osdp', message);

export function codeName(code: number): string {
  return `${hex2(code)}${REPLY_NAMES[code] ? ` (${REPLY_NAMES[code]})` : ''}`;
}

function rawRead(d: Uint8Array, table: FormatTable): CardRead {
  if (d.length < 4) throw bad(`osdp_RAW: ${d.length} data bytes, the header needs 4 (reader, format, bit count)`);
  if (d[1]! > 1) throw bad(`osdp_RAW: format code ${hex2(d[1]!)} is neither 0x00 (raw bits) nor 0x01 (Wiegand)`);
  const bits = d[2]! | (d[3]! << 8);
  if (bits === 0) throw bad('osdp_RAW: bit count is 0');
  const raw = checkRaw(d.subarray(4), bits, 'bad_osdp', 'osdp_RAW ');
  try {
    return { reader: d[0]!, cred: decodeRead(raw, bits, table).cred, kind: 'raw' };
  } catch (e) {
    if (e instanceof ApbError) throw new ApbError(e.code, `osdp_RAW: ${e.message}`);
    throw e;
  }
}

function fmtRead(d: Uint8Array): CardRead {
  if (d.length < 3) throw bad(`osdp_FMT: ${d.length} data bytes, the header needs 3 (reader, direction, length)`);
  const n = d[2]!;
  if (n === 0) throw bad('osdp_FMT: character count is 0');
  if (d.length !== 3 + n) throw bad(`osdp_FMT: character count says ${n}, the packet carries ${d.length - 3}`);
  if (n > 64) throw bad(`osdp_FMT: ${n} characters, a credential holds at most 64`);
  let text = '';
  for (let i = 3; i < d.length; i++) {
    const c = d[i]!;
    if (c < 0x20 || c > 0x7e) throw bad(`osdp_FMT: byte ${hex2(c)} at character ${i - 3} is not printable ASCII`);
    text += String.fromCharCode(c);
  }
  let cred = text;
  let m: RegExpExecArray | null;
  if (/^[0-9]+$/.test(text)) cred = `0:${BigInt(text)}`;
  else if ((m = /^([0-9]+):([0-9]+)$/.exec(text))) cred = `${BigInt(m[1]!)}:${BigInt(m[2]!)}`;
  return { reader: d[0]!, cred, kind: 'fmt' };
}

function keypadRead(d: Uint8Array): CardRead {
  if (d.length < 2) throw bad(`osdp_KEYPPAD: ${d.length} data bytes, the header needs 2 (reader, count)`);
  const n = d[1]!;
  if (n === 0) throw bad('osdp_KEYPPAD: digit count is 0');
  if (d.length !== 2 + n) throw bad(`osdp_KEYPPAD: digit count says ${n}, the packet carries ${d.length - 2}`);
  if (n > 60) throw bad(`osdp_KEYPPAD: ${n} keys, at most 60 fit a credential`);
  let keys = '';
  for (let i = 2; i < d.length; i++) {
    const c = d[i]!;
    if (c >= 0x30 && c <= 0x39) keys += String.fromCharCode(c);
    else if (c === 0x7f) keys += '*';
    else if (c === 0x0d) keys += '#';
    else throw bad(`osdp_KEYPPAD: key byte ${hex2(c)} is not '0'-'9', 0x7F (*) or 0x0D (#)`);
  }
  return { reader: d[0]!, cred: `pin:${keys}`, kind: 'keypad' };
}

/** The card read a reply carries; bad_osdp (or the Wiegand codes) when it is not a valid one. */
export function decodeCardRead(pkt: OsdpPacket, table: FormatTable): CardRead {
  if (!pkt.reply) throw bad(`ADDR ${hex2(pkt.address)}: reply bit 0x80 is clear: this is a command from the CP, not a reader's reply`);
  if (pkt.address === 0x7f) throw bad('ADDR 0x7F: the broadcast address cannot send a reply');
  switch (pkt.code) {
    case REPLY_RAW: return rawRead(pkt.data, table);
    case REPLY_FMT: return fmtRead(pkt.data);
    case REPLY_KEYPPAD: return keypadRead(pkt.data);
    default: throw bad(`reply code ${codeName(pkt.code)} is not a card read (expected 0x50 osdp_RAW, 0x51 osdp_FMT or 0x53 osdp_KEYPPAD)`);
  }
}
