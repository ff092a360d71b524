/**
 * osdp_CAP (0x62, data: one reply-type byte, 0x00) asks a PD what it can do;
 * osdp_PDCAP (0x46) answers with a list of 3-byte entries:
 *
 *   [function code][compliance level][number of items]   × N   (N ≥ 0, at most MAX_CAPS)
 *
 * Function codes (SIA OSDP 2.2, osdp_PDCAP): 1 contact status monitoring
 * (items: inputs), 2 output control (items: outputs), 3 card data format
 * (1 bits, 2 BCD characters, 3 either), 4 reader LED control (items: LEDs
 * per reader), 5 reader audible output (items: buzzers per reader), 6 text
 * output, 7 time keeping, 8 check character (compliance 1: CRC-16), 9
 * communication security (compliance bit 0: AES-128 secure channel; items
 * bit 0: accepts the default key SCBK-D), 10 receive buffer size and 11
 * largest combined message (compliance = size LSB, items = MSB), 12 smart
 * card, 13 readers (items: reader heads attached), 14 biometrics, 15 secure
 * PIN entry, 16 OSDP version (compliance 1 IEC 60839-11-5, 2 SIA 2.2).
 * Unknown codes are kept under their number; a code listed twice keeps its
 * last entry.
 */
import { ApbError } from '../../errors.js';

export const CAP_NAMES: Record<number, string> = {
  1: 'contact_status', 2: 'output_control', 3: 'card_data_format', 4: 'reader_led', 5: 'reader_audible',
  6: 'reader_text', 7: 'time_keeping', 8: 'check_character', 9: 'communication_security', 10: 'receive_buffer',
  11: 'largest_message', 12: 'smart_card', 13: 'readers', 14: 'biometrics', 15: 'secure_pin_entry', 16: 'osdp_version',
};

/** a PD lists a few dozen functions at most; more is a broken reply */
export const MAX_CAPS = 64;

export interface Capability { code: number; compliance: number; items: number }

/** function name (or `fn_<code>` for codes this list does not know) → its entry */
export type Capabilities = Record<string, Capability>;

export const capName = (code: number): string => CAP_NAMES[code] ?? `fn_${code}`;

/** osdp_CAP's data: reply type 0 (the only one defined) */
export const capRequest = (): Uint8Array => Uint8Array.of(0);

export function parsePdcap(d: Uint8Array): Capabilities {
  if (d.length % 3 !== 0) throw new ApbError('bad_osdp', `osdp_PDCAP: ${d.length} data bytes is not a multiple of 3 (function, compliance, items)`);
  if (d.length / 3 > MAX_CAPS) throw new ApbError('bad_osdp', `osdp_PDCAP: ${d.length / 3} entries, at most ${MAX_CAPS}`);
  const out: Capabilities = {};
  for (let i = 0; i < d.length; i += 3) out[capName(d[i]!)] = { code: d[i]!, compliance: d[i + 1]!, items: d[i + 2]! };
  return out;
}

/** the entries back in wire form, in code order (for the simulated reader and tests) */
export function encodePdcap(entries: Capability[]): Uint8Array {
  return Uint8Array.from(entries.flatMap((c) => [c.code, c.compliance, c.items]));
}

/** whether the PD says it speaks the Secure Channel (an absent entry counts as no) */
export const supportsSecureChannel = (c: Capabilities): boolean => ((c.communication_security?.compliance ?? 0) & 1) === 1;
/** whether it says it accepts SCBK-D (install mode) */
export const acceptsDefaultKey = (c: Capabilities): boolean => ((c.communication_security?.items ?? 0) & 1) === 1;
/** reader heads on the PD, when it says (function 13) */
export const readerHeads = (c: Capabilities): number | null => c.readers?.items ?? null;
