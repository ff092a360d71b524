/**
 * One message of a site's stream: one or more consecutive journal batches, each exactly as the
 * leader's write-ahead log holds it (store/wal.ts payload), concatenated (little-endian):
 *
 *   offset  size  field
 *   ------  ----  ---------------------------------------------
 *        0  f64   s: journal seq of the batch's first record
 *        8  f64   e: journal seq of its last record
 *       16  u32   L: payload bytes
 *       20  L     payload: the journal batch (msgpack)
 *     20+L        the next batch, or the end of the message
 *
 * Header `Apb-Seq: <s of the first>-<e of the last>`. A leader puts the batches of one event-loop
 * turn into one message (node.ts publishBatch); each message expects the previous one's stream seq
 * and message id.
 */
import { ApbError } from '../errors.js';

export const ENTRY_HEADER_BYTES = 20;
/** a message stops growing past this many bytes (NATS refuses payloads over its max_payload, 1 MiB by default) */
export const MESSAGE_TARGET_BYTES = 512 * 1024;

export interface JournalEntry { s: number; e: number; payload: Uint8Array }

export function encodeEntries(entries: JournalEntry[]): Uint8Array {
  let size = 0;
  for (const x of entries) size += ENTRY_HEADER_BYTES + x.payload.length;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const x of entries) {
    out.writeDoubleLE(x.s, off);
    out.writeDoubleLE(x.e, off + 8);
    out.writeUInt32LE(x.payload.length, off + 16);
    out.set(x.payload, off + ENTRY_HEADER_BYTES);
    off += ENTRY_HEADER_BYTES + x.payload.length;
  }
  return out;
}

export function decodeEntries(data: Uint8Array): JournalEntry[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: JournalEntry[] = [];
  for (let off = 0; off < b.length;) {
    if (off + ENTRY_HEADER_BYTES > b.length) throw new ApbError('internal', `journal message: entry header cut at byte ${off}`);
    const s = b.readDoubleLE(off), e = b.readDoubleLE(off + 8), len = b.readUInt32LE(off + 16);
    if (off + ENTRY_HEADER_BYTES + len > b.length) throw new ApbError('internal', `journal message: entry ${s}-${e} cut at byte ${off}`);
    out.push({ s, e, payload: b.subarray(off + ENTRY_HEADER_BYTES, off + ENTRY_HEADER_BYTES + len) });
    off += ENTRY_HEADER_BYTES + len;
  }
  return out;
}
