/**
 * protocol: wiegand. A bridge sends the native messages with the raw read in
 * place of `cred`:
 *   {t: "badge" | "passage" | "offline", id, reader, raw, bits, format?, ts?, granted?}
 * `raw` is binary (or {hex: "…"} in a JSON body); the result is the same
 * message with cred "<facility>:<card>". Other types (ping, …) pass through
 * for the hub to answer.
 */
import { ApbError } from '../../errors.js';
import type { Adapter, AdapterContext, CanonicalMessage } from '../types.js';
import { passThrough } from '../pass.js';
import { checkRaw, decodeRead } from './decode.js';
import { formatTableFor } from './formats.js';

/** binary, or {hex} as JSON bodies and replay lines spell binary */
export function binaryField(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const hex = (v as { hex?: unknown }).hex;
    if (typeof hex === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(hex)) return Uint8Array.from(Buffer.from(hex, 'hex'));
  }
  return v;
}

/** Copies the native fields other than cred, leaving absent ones absent. */
export function withCred(msg: Record<string, unknown>, t: string, cred: string): CanonicalMessage {
  const out: CanonicalMessage = { t, cred };
  if (msg.id !== undefined) out.id = msg.id;
  if (msg.reader !== undefined) out.reader = msg.reader;
  if (msg.ts !== undefined) out.ts = msg.ts;
  if (msg.granted !== undefined) out.granted = msg.granted;
  return out;
}

export const wiegandAdapter: Adapter = {
  protocol: 'wiegand',
  toCanonical(msg: Record<string, unknown>, ctx: AdapterContext): CanonicalMessage {
    const t = msg.t;
    if (t !== 'badge' && t !== 'passage' && t !== 'offline') return passThrough(msg);
    if (msg.cred !== undefined) throw new ApbError('bad_message', 'cred: a wiegand controller sends raw and bits, not cred');
    if (msg.raw === undefined) throw new ApbError('bad_message', 'raw: missing (a wiegand controller sends raw and bits in place of cred)');
    const raw = checkRaw(binaryField(msg.raw), msg.bits, 'bad_message');
    const format = msg.format;
    if (format !== undefined && (typeof format !== 'string' || format.length === 0)) throw new ApbError('bad_message', 'format: must be a format name (string)');
    const read = decodeRead(raw, msg.bits as number, formatTableFor(ctx.site), format as string | undefined);
    return withCred(msg, t, read.cred);
  },
};
