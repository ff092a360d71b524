/**
 * The values of the journal (`log` sub-database of D/data.mdb), shared by the
 * store (main thread) and the indexer (index-worker.ts).
 *
 * One value per event-loop turn of appends: either general (`e`: event
 * records with their seqs, `i`: the idempotency replies the general path
 * sends, adapters' decorations included) or compact (`k`: the compact groups
 * of every appendCompact() call of the turn, compact-journal.ts, in call
 * order; their records take seqs s .. s+n-1 by position and carry no reply
 * bytes: compactReply re-encodes them). Values written before groups were
 * gathered per turn hold one group in `k`, not an array; both are read.
 * Keys are the seq of the first record, so the journal only ever grows at
 * its right edge.
 *
 * Why per turn: with one message per frame, a value per frame cost a WAL
 * record, an LMDB value, a promise and a msgpack encode per message, and the
 * indexer and snapshot replica decoded each value apart.
 */
import { compactRecords, f64At, groupEvents, groupsOf, recordLength, type CompactGroup } from './compact-journal.js';
import { compactReply } from '../engine/wire-reply.js';
import type { EventRecord } from './types.js';

export interface Batch {
  s: number;                 // seq of the first record (= the key)
  n: number;                 // number of records
  a0: number;                // `at` of the first record (0 when none)
  a1: number;                // largest `at` in the batch
  z?: number;                // seq of the last record (a batch of replies only: its own seq)
  e?: EventRecord[];         // general records, seq included
  i?: [string, number | string, Uint8Array][]; // idempotency: controller, id, reply bytes
  k?: CompactGroup | CompactGroup[]; // compact groups (then no `e`, no `i`); one group: an older value
}


export function batchEnd(b: Batch): number { return b.z ?? b.s + Math.max(b.n, 1) - 1; }

/** The event records of a batch, oldest first (a compact group materialised, seqs by position). */
export function batchEvents(b: Batch): EventRecord[] {
  if (b.k) {
    const out: EventRecord[] = [];
    let seq = b.s;
    for (const g of groupsOf(b.k)) { for (const e of groupEvents(g, seq)) out.push(e); seq += g.n; }
    return out;
  }
  return Array.isArray(b.e) ? b.e : [];
}

/** The reply this batch holds for (controller, id), or undefined. */
export function replyIn(b: Batch | undefined, controller: string, id: number | string): Uint8Array | undefined {
  if (!b) return undefined;
  if (b.k) {
    if (typeof id !== 'number') return undefined;
    for (const g of groupsOf(b.k)) {
      if (g.c !== controller) continue;
      for (const r of compactRecords(g)) if (r.id === id) return compactReply(r);
    }
    return undefined;
  }
  let found: Uint8Array | undefined;
  for (const [c, bid, reply] of b.i ?? []) if (c === controller && bid === id) found = reply; // the last one wins
  return found;
}

/** Calls fn(id) for every message id the batch answers, with its controller. */
export function forEachId(b: Batch, fn: (controller: string, id: number | string) => void): void {
  if (b.k) {
    for (const g of groupsOf(b.k)) {
      let off = 0;
      for (let k = 0; k < g.n; k++) { fn(g.c, f64At(g.b, off + 8)); off += recordLength(g, off); }
    }
    return;
  }
  for (const [c, id] of Array.isArray(b.i) ? b.i : []) fn(c, id);
}
