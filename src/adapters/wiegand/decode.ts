/**
 * Decoding a Wiegand read (left-aligned bytes + bit count) into a card:
 * fixed bits, XOR checksums and parity bits are checked, then the facility
 * and card fields become the credential "<facility>:<card>" (decimal,
 * facility 0 when the format has none).
 *
 * Without a format name the bit count picks the candidates (the site's
 * custom formats in file order, then the built-ins): the first one whose
 * checks all pass wins. A read no candidate accepts is `bad_parity` when a
 * candidate's layout matched but a parity/checksum failed, else
 * `unknown_format`.
 */
import { ApbError } from '../../errors.js';
import { bitAt, bytesFor, readField } from './bits.js';
import { findFormat, MAX_READ_BITS, type FormatTable, type WiegandFormat } from './formats.js';

export interface WiegandRead {
  format: WiegandFormat;
  facility: number | bigint;
  card: number | bigint;
  /** "<facility>:<card>" */
  cred: string;
}

interface Failure { code: 'bad_parity' | 'unknown_format'; message: string }

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0');

/** null when `raw` passes every check of `f`. */
function failureOf(f: WiegandFormat, raw: Uint8Array): Failure | null {
  for (const fx of f.fixed) {
    const v = readField(raw, fx.start, fx.length) as number;
    if (v !== fx.value) return { code: 'unknown_format', message: `${f.name}: bits ${fx.start}-${fx.start + fx.length - 1} must be ${hex2(fx.value)}, read has ${hex2(v)}` };
  }
  for (const x of f.xor) {
    let want = 0;
    for (const s of x.over) want ^= readField(raw, s, 8) as number;
    const got = readField(raw, x.start, 8) as number;
    if (got !== want) return { code: 'bad_parity', message: `${f.name}: checksum bits ${x.start}-${x.start + 7} are ${hex2(got)}, the XOR of the bytes before is ${hex2(want)}` };
  }
  for (const r of f.parity) {
    let ones = 0;
    for (const p of r.covers) ones += bitAt(raw, p);
    const got = bitAt(raw, r.bit);
    const want = (ones & 1) ^ (r.kind === 'odd' ? 1 : 0);
    if (got !== want) return { code: 'bad_parity', message: `${f.name}: ${r.kind} parity bit ${r.bit} (over bits ${r.coverText}) is ${got}, expected ${want}` };
  }
  return null;
}

function fields(f: WiegandFormat, raw: Uint8Array): WiegandRead {
  const facility = f.facility ? readField(raw, f.facility.start, f.facility.length) : 0;
  const card = readField(raw, f.card.start, f.card.length);
  return { format: f, facility, card, cred: `${facility}:${card}` };
}

/** Decodes with one given format (its bit count must match). */
export function decodeWithFormat(f: WiegandFormat, raw: Uint8Array, bits: number): WiegandRead {
  if (bits !== f.bits) throw new ApbError('unknown_format', `format: ${f.name} reads are ${f.bits} bits, this read has ${bits}`);
  const fail = failureOf(f, raw);
  if (fail) throw new ApbError(fail.code, fail.message);
  return fields(f, raw);
}

/** Decodes a read already checked by checkRaw: by name when given, else by bit count. */
export function decodeRead(raw: Uint8Array, bits: number, table: FormatTable, formatName?: string): WiegandRead {
  if (formatName !== undefined) return decodeWithFormat(findFormat(table, formatName), raw, bits);
  const candidates = table.byBits.get(bits);
  if (!candidates) {
    const sizes = [...table.byBits.keys()].sort((a, b) => a - b).join(', ');
    throw new ApbError('unknown_format', `bits: no Wiegand format reads ${bits} bits (this site decodes ${sizes})`);
  }
  let failures: Failure[] | null = null;
  for (const f of candidates) {
    const fail = failureOf(f, raw);
    if (!fail) return fields(f, raw);
    (failures ??= []).push(fail);
  }
  const parity = failures!.filter((x) => x.code === 'bad_parity');
  if (parity.length) throw new ApbError('bad_parity', parity.map((x) => x.message).join('; '));
  throw new ApbError('unknown_format', failures!.map((x) => x.message).join('; '));
}

/**
 * Checks the shape of a read before decoding: `raw` binary of exactly
 * ceil(bits/8) bytes with zero padding, `bits` an integer 1-256. Errors use
 * `code` (bad_message for a controller's message, bad_osdp inside an OSDP
 * packet) and name the field with `prefix`.
 */
export function checkRaw(raw: unknown, bits: unknown, code: 'bad_message' | 'bad_osdp', prefix = ''): Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new ApbError(code, `${prefix}raw: must be binary (the read's bits, first bit = most significant bit of the first byte)`);
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 1 || bits > MAX_READ_BITS) throw new ApbError(code, `${prefix}bits: must be an integer 1-${MAX_READ_BITS}`);
  const need = bytesFor(bits);
  if (raw.length !== need) throw new ApbError(code, `${prefix}raw: ${bits} bits take ${need} byte${need === 1 ? '' : 's'}, raw has ${raw.length}`);
  const pad = need * 8 - bits;
  if (pad && (raw[need - 1]! & ((1 << pad) - 1)) !== 0) throw new ApbError(code, `${prefix}raw: the ${pad} padding bit${pad === 1 ? '' : 's'} after bit ${bits - 1} must be zero`);
  return raw;
}
