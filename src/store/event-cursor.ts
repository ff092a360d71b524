/**
 * Paging through the event log: what `store.page()` (GET /v1/events,
 * `apb events`) shares between the LMDB and memory stores.
 *
 * A cursor is a POSITION IN THE JOURNAL, never an offset into a result:
 * every record has a seq, and a record's seq is its batch's key (the seq of
 * the batch's first record) plus its index in the batch. The cursor holds
 * that batch key and index, so
 *   desc: the next page is the matching records with seq <  position;
 *   asc:  the next page is the matching records with seq >  position.
 * New records always get larger seqs (and commit in seq order), so paging
 * never skips or repeats a record while appends go on between pages.
 * What this asks of a store: the batches a read sees are always a prefix of
 * the journal in key order (LMDB commits its puts in the order issued; the
 * memory store appends at once). An asc page that reads to the end returns
 * the end of what it saw as `next`; a store that let a later batch become
 * visible before an earlier one would make such a poll skip the earlier one.
 *
 * Cursor text (base64url, CURSOR_BYTES bytes before encoding):
 *   0  u8     version (1)
 *   1  u8     order (0 desc, 1 asc)
 *   2  u32    batch key, high 21 bits  } a seq up to 2^53-1
 *   6  u32    batch key, low 32 bits   }
 *  10  u32    index within the batch
 *  14  u8[8]  hash of the order and the filters (cred, reader, controller, since, until)
 *  22  u8[12] HMAC-SHA256 of bytes 0..21 under the store's cursor key
 * A cursor whose MAC does not verify (malformed, altered, or another data
 * directory's) or whose filter hash differs from the request's is refused
 * with bad_message; limit may change from page to page.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApbError } from '../errors.js';
import { MAX_EVENTS_CURSOR_CHARS } from '../limits.js';
import { QUERY_DEFAULT_LIMIT, QUERY_MAX_LIMIT, clampLimit, matches, redact } from './common.js';
import type { EventPage, EventPageQuery, EventQuery, EventRecord } from './types.js';

const VERSION = 1;
const BODY = 22;
const MAC = 12;
export const CURSOR_BYTES = BODY + MAC;

/**
 * The store's secret for cursor MACs: derived from its journal id (never shown to clients; stable across
 * restarts, so a client's cursor survives one), or random (a memory store: cursors die with the process).
 */
export function cursorKey(journalId?: string): Buffer {
  if (journalId === undefined) return randomBytes(32);
  return createHash('sha256').update('apb events cursor\u0000').update(journalId).digest();
}

/** What a page asks for, checked and with its defaults. */
export interface PageSpec {
  order: 'asc' | 'desc';
  limit: number;
  /** desc: records with seq < pos (Infinity: from the newest); asc: records with seq > pos */
  pos: number;
  cred?: string; reader?: string; controller?: string; since?: number; until?: number;
}

function filterHash(q: PageSpec): Buffer {
  const canon = JSON.stringify([q.order, q.cred ?? null, q.reader ?? null, q.controller ?? null, q.since ?? null, q.until ?? null]);
  return createHash('sha256').update(canon).digest().subarray(0, 8);
}

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, MAC);
}

/** The cursor text of the position `batchKey + index` for the query `q`. */
export function encodeCursor(key: Buffer, q: PageSpec, batchKey: number, index: number): string {
  const b = Buffer.alloc(CURSOR_BYTES);
  b[0] = VERSION;
  b[1] = q.order === 'asc' ? 1 : 0;
  b.writeUInt32LE(Math.floor(batchKey / 2 ** 32), 2);
  b.writeUInt32LE(batchKey % 2 ** 32, 6);
  b.writeUInt32LE(index, 10);
  filterHash(q).copy(b, 14);
  mac(key, b.subarray(0, BODY)).copy(b, BODY);
  return b.toString('base64url');
}

const bad = (why: string): ApbError => new ApbError('bad_message', `cursor: ${why}`);

/** The position a cursor names; bad_message when it is malformed, forged or made for other filters. */
export function decodeCursor(key: Buffer, q: PageSpec, text: string): number {
  if (text.length > MAX_EVENTS_CURSOR_CHARS) throw bad(`at most ${MAX_EVENTS_CURSOR_CHARS} characters`);
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw bad('not a cursor of this event log (use the `next` of a previous page)');
  const b = Buffer.from(text, 'base64url');
  if (b.length !== CURSOR_BYTES || b.toString('base64url') !== text) throw bad('not a cursor of this event log (use the `next` of a previous page)');
  if (!timingSafeEqual(mac(key, b.subarray(0, BODY)), b.subarray(BODY))) throw bad('not a cursor of this event log (altered, or from another data directory)');
  if (b[0] !== VERSION) throw bad(`version ${b[0]} is not supported`);
  if (!filterHash(q).equals(b.subarray(14, 22)) || b[1] !== (q.order === 'asc' ? 1 : 0)) {
    throw bad('made for another order or other filters (cred, reader, since, until and order must stay those of the first page)');
  }
  const hi = b.readUInt32LE(2), lo = b.readUInt32LE(6), index = b.readUInt32LE(10);
  const pos = hi * 2 ** 32 + lo + index;
  if (hi >= 2 ** 21 || !Number.isSafeInteger(pos)) throw bad('position out of range');
  return pos;
}

/** The checked page request: limit 1..QUERY_MAX_LIMIT (default QUERY_DEFAULT_LIMIT), order, and the cursor's position. */
export function pageSpec(q: EventPageQuery, key: Buffer): PageSpec {
  const order = q.order ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new ApbError('bad_message', 'order: must be asc or desc');
  const limit = q.limit ?? QUERY_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > QUERY_MAX_LIMIT) throw new ApbError('bad_message', `limit: must be an integer 1-${QUERY_MAX_LIMIT}`);
  const spec: PageSpec = { order, limit, pos: order === 'desc' ? Infinity : 0 };
  if (q.cred !== undefined) spec.cred = q.cred;
  if (q.reader !== undefined) spec.reader = q.reader;
  if (q.controller !== undefined) spec.controller = q.controller;
  if (q.since !== undefined) spec.since = q.since;
  if (q.until !== undefined) spec.until = q.until;
  if (q.cursor !== undefined) spec.pos = decodeCursor(key, spec, q.cursor);
  return spec;
}

/** store.query() (newest first, `beforeSeq` paging, a limit out of range taken as the default) as a desc page spec. */
export function legacySpec(q: EventQuery): PageSpec {
  const spec: PageSpec = { order: 'desc', limit: clampLimit(q), pos: q.beforeSeq ?? Infinity };
  if (q.cred !== undefined) spec.cred = q.cred;
  if (q.reader !== undefined) spec.reader = q.reader;
  if (q.controller !== undefined) spec.controller = q.controller;
  if (q.since !== undefined) spec.since = q.since;
  if (q.until !== undefined) spec.until = q.until;
  return spec;
}

/**
 * One journal batch as the pager sees it: key `s` (its first seq), last seq `end`, the `at` bounds of
 * its records (n = 0: none) and its records oldest first. `events` null: a span the source knows holds
 * nothing that matches (the part of the log an index skipped), counted as covered up to `end` only.
 */
export interface BatchView { s: number; end: number; n: number; a0: number; a1: number; events: (() => EventRecord[]) | null }

/**
 * desc: `batches` newest first, from the one holding seq pos-1 down. Collects `limit` matching records
 * (seq < pos), then looks for one more: `next` is null when there is none (nothing older matches).
 * Stops at the first batch older than `since` (`at` is the engine clock: it never decreases with seq).
 * `key` undefined (store.query): no cursor wanted, so no look beyond the limit either.
 */
export function pageDesc(batches: Iterable<BatchView>, q: PageSpec, key: Buffer | undefined): EventPage {
  const out: EventRecord[] = [];
  let lastKey = 0;
  for (const b of batches) {
    if (b.events === null || b.n === 0) continue;
    if (q.since !== undefined && b.a1 < q.since) break;
    if (q.until !== undefined && b.a0 > q.until) continue;
    const evs = b.events();
    for (let k = evs.length - 1; k >= 0; k--) {
      const e = evs[k]!;
      if (e.seq! >= q.pos || !matches(e, q)) continue;
      if (out.length === q.limit) return { events: out, next: encodeCursor(key!, q, lastKey, out[out.length - 1]!.seq! - lastKey) };
      out.push(redact(e));
      lastKey = b.s;
      if (key === undefined && out.length === q.limit) return { events: out, next: null };
    }
  }
  return { events: out, next: null };
}

/**
 * asc: `batches` oldest first, from the one holding seq pos+1 up. Collects up to `limit` matching
 * records (seq > pos). `next` is always given: after a full page, the last record's position; else the
 * end of what was read (the journal's end as this read saw it), so polling from it finds exactly the
 * records appended since. Stops at the first batch newer than `until`.
 */
export function pageAsc(batches: Iterable<BatchView>, q: PageSpec, key: Buffer): EventPage {
  const out: EventRecord[] = [];
  let coveredKey = q.pos, covered = q.pos;
  for (const b of batches) {
    if (b.end <= q.pos) continue;
    if (b.events !== null && b.n > 0) {
      if (q.until !== undefined && b.a0 > q.until) break;
      if (q.since === undefined || b.a1 >= q.since) {
        for (const e of b.events()) {
          if (e.seq! <= q.pos || !matches(e, q)) continue;
          out.push(redact(e));
          if (out.length === q.limit) return { events: out, next: encodeCursor(key, q, b.s, e.seq! - b.s) };
        }
      }
    }
    if (b.end > covered) { covered = b.end; coveredKey = b.events === null ? b.end : b.s; }
  }
  return { events: out, next: encodeCursor(key, q, coveredKey, covered - coveredKey) };
}
