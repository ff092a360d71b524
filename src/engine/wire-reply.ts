/**
 * The reply of a decided native badge or passage, re-encoded from what the
 * journal holds (a compact record, src/store/compact-journal.ts) instead of
 * being stored as bytes: a resend of an old id gets exactly the bytes it was
 * first answered with. The map is built in the same key order as the hub's
 * general path (encodeResult, then `id`), and packed by the server's own
 * encoder (src/server/codec.ts), so the bytes are identical; the hub's
 * templates are held equal to this by test/server/fast-path.test.ts.
 */
import { encodeReply, wireInt } from '../server/codec.js';
import { REASONS } from './types.js';
import type { CompactRecord } from '../store/compact-journal.js';

export function compactReply(r: CompactRecord): Uint8Array {
  if (r.kind === 1) return encodeReply({ t: 'ack', id: wireInt(r.id) });
  // the reply names code, mode and area only: the facts (SPEC 13.3) are the event record's
  const violations = r.violations.map((v) => ({ code: v.code, mode: v.mode, area: v.area }));
  const body: Record<string, unknown> = r.granted
    ? { t: 'decision', grant: true, reason: REASONS[r.reason], violations, area: r.area }
    : { t: 'decision', grant: false, reason: REASONS[r.reason], violations };
  body.id = wireInt(r.id);
  return encodeReply(body);
}
