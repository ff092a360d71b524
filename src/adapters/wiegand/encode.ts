/**
 * Encoding a card into a Wiegand read: the inverse of decode.ts, for round
 * trip tests, the simulator and bridges written against this engine.
 * Order: fixed bits, fields, XOR checksums, then parity bits in declared
 * order (a later parity bit may cover an earlier one, as in Corporate 1000).
 */
import { ApbError } from '../../errors.js';
import { bitAt, bytesFor, readField, setBit, writeField } from './bits.js';
import type { WiegandFormat } from './formats.js';

export interface WiegandEncoded { raw: Uint8Array; bits: number }

function fits(v: number | bigint, length: number): boolean {
  const b = BigInt(v);
  return b >= 0n && b < (1n << BigInt(length));
}

export function encodeRead(f: WiegandFormat, facility: number | bigint, card: number | bigint): WiegandEncoded {
  if (typeof facility === 'number' && !Number.isSafeInteger(facility)) throw new ApbError('bad_message', `facility: must be an unsigned integer`);
  if (typeof card === 'number' && !Number.isSafeInteger(card)) throw new ApbError('bad_message', `card: must be an unsigned integer`);
  if (f.facility) {
    if (!fits(facility, f.facility.length)) throw new ApbError('bad_message', `facility: ${facility} does not fit the ${f.facility.length}-bit facility field of ${f.name}`);
  } else if (BigInt(facility) !== 0n) throw new ApbError('bad_message', `facility: ${f.name} has no facility field, facility must be 0`);
  if (!fits(card, f.card.length)) throw new ApbError('bad_message', `card: ${card} does not fit the ${f.card.length}-bit card field of ${f.name}`);
  const raw = new Uint8Array(bytesFor(f.bits));
  for (const fx of f.fixed) writeField(raw, fx.start, fx.length, fx.value);
  if (f.facility) writeField(raw, f.facility.start, f.facility.length, facility);
  writeField(raw, f.card.start, f.card.length, card);
  for (const x of f.xor) {
    let v = 0;
    for (const s of x.over) v ^= readField(raw, s, 8) as number;
    writeField(raw, x.start, 8, v);
  }
  for (const r of f.parity) {
    let ones = 0;
    for (const p of r.covers) ones += bitAt(raw, p);
    setBit(raw, r.bit, (ones & 1) ^ (r.kind === 'odd' ? 1 : 0));
  }
  return { raw, bits: f.bits };
}
