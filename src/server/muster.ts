/**
 * GET /v1/areas/{area}/credentials: who is inside an area right now (areas
 * below it included), for a muster or an evacuation count. The rows are
 * exactly the credentials the area's occupancy counts (engine.credentialsIn):
 * without `q`, `count` equals the occupancy GET /v1/areas reports for it.
 *
 * Paging is by record position (the engine's record number, which never
 * changes): a cursor resumes after the last record listed, so while badges
 * go on nobody who stayed inside is skipped or listed twice; someone who
 * moved meanwhile may or may not be listed. A cursor is MAC'd with a secret
 * of this process and bound to the area and `q`: another area's or query's
 * cursor, an altered one or one from before a restart is bad_message.
 *
 * Cursor (base64url of 25 bytes): u8 version 1 | u32 record to resume from |
 * 8 bytes hash of (area id, q) | 12 bytes HMAC-SHA256 of the 13 bytes before.
 *
 * Never long in the event loop: the rows come from engine.credentialsInAsync,
 * which scans the table in slices of about a millisecond with a turn of the
 * event loop between them (decisions go on meanwhile; the paging rule above
 * holds across slices as it does across pages). Pages and CSV exports run one
 * at a time per engine, in the order they came (`serial`): two scans under
 * way at once would restart each other, and a burst of muster requests then
 * waits its turn instead of adding its slices to every turn of the loop. A
 * request whose client went away is dropped when its turn comes or between
 * slices. If the site (area numbering) or the engine changes while a page is
 * being read, the page is read again from its start under the new one.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApbError } from '../errors.js';
import { MAX_MUSTER_CURSOR_CHARS } from '../limits.js';
import type { CompiledSite } from '../config/types.js';
import type { Engine, InsidePage, InsideRow } from '../engine/types.js';

export const MUSTER_DEFAULT_LIMIT = 100;
export const MUSTER_MAX_LIMIT = 1000;
/** rows asked of the engine per call */
const CHUNK = 4096;

const SECRET = randomBytes(32);
const BODY = 13, MAC = 12;

export interface MusterQuery { areaId: string; q?: string; limit: number; cursor?: string }
/** where a page is read from: the engine now (a recovery may replace it), the clock brought to now (a leader; a follower's replica does not), the request still wanted */
export interface MusterSource { engine(): Engine; tick(): void; aborted(): boolean; sliceMs?: number | undefined }
export interface MusterRow { cred: string; area: string; since: number; reader: string | null }

const hashOf = (areaId: string, q: string | undefined): Buffer =>
  createHash('sha256').update(JSON.stringify([areaId, q ?? null])).digest().subarray(0, 8);
const macOf = (b: Buffer): Buffer => createHmac('sha256', SECRET).update(b).digest().subarray(0, MAC);

function encodeCursor(areaId: string, q: string | undefined, rec: number): string {
  const b = Buffer.alloc(BODY + MAC);
  b[0] = 1;
  b.writeUInt32LE(rec, 1);
  hashOf(areaId, q).copy(b, 5);
  macOf(b.subarray(0, BODY)).copy(b, BODY);
  return b.toString('base64url');
}

function decodeCursor(areaId: string, q: string | undefined, text: string): number {
  const bad = (why: string): ApbError => new ApbError('bad_message', `cursor: ${why}`);
  if (text.length > MAX_MUSTER_CURSOR_CHARS) throw bad(`at most ${MAX_MUSTER_CURSOR_CHARS} characters`);
  const b = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, 'base64url') : Buffer.alloc(0);
  if (b.length !== BODY + MAC || b.toString('base64url') !== text || !timingSafeEqual(macOf(b.subarray(0, BODY)), b.subarray(BODY)) || b[0] !== 1) {
    throw bad('not a cursor of this list (use the `next` of a previous page; cursors do not survive a server restart)');
  }
  if (!hashOf(areaId, q).equals(b.subarray(5, BODY))) throw bad('made for another area or another q');
  return b.readUInt32LE(1);
}

/** `q` matches a credential text (case-insensitive), or for a string credential its decoded text */
function matcher(q: string | undefined): (cred: string) => boolean {
  if (q === undefined) return () => true;
  const needle = q.toLowerCase();
  return (cred) => {
    if (cred.toLowerCase().includes(needle)) return true;
    if (!cred.startsWith('s:')) return false;
    try { return decodeURIComponent(cred.slice(2)).toLowerCase().includes(needle); } catch { return false; }
  };
}

function rowOf(site: CompiledSite, r: InsideRow): MusterRow {
  return { cred: r.cred, area: site.areaIds[r.location]!, since: r.lastMoveAt, reader: r.lastReader >= 0 ? site.readerIds[r.lastReader] ?? null : null };
}

/** one page or export at a time per engine, in arrival order (see the top) */
const queues = new WeakMap<Engine, Promise<unknown>>();
function serial<T>(engine: Engine, f: () => Promise<T>): Promise<T> {
  const run = (queues.get(engine) ?? Promise.resolve()).then(f);
  queues.set(engine, run.catch(() => undefined));
  return run;
}

const gone = (): ApbError => new ApbError('not_ready', 'muster list: the request was aborted');

/** The engine, site and area index a page is read under; `changed()` once any of them moved on. */
interface Reading { engine: Engine; site: CompiledSite; area: number; changed(): boolean }

/**
 * Runs `f` under the current engine and site, its turn in the queue come; again from its start (at most
 * 3 times) when the engine or the site changed while it ran (the area's index may mean another area).
 */
async function reading<T>(src: MusterSource, areaId: string, f: (r: Reading) => Promise<T | null>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const engine = src.engine();
    const out = await serial(engine, async () => {
      if (src.aborted()) throw gone();
      src.tick();
      const site = engine.site;
      const area = site.areaIndex.get(areaId);
      if (area === undefined) throw new ApbError('unknown_area', `area: unknown area "${areaId}"`);
      const r: Reading = { engine, site, area, changed: () => src.engine() !== engine || engine.site !== site };
      const v = await f(r); // null: it saw the change
      return v === null || r.changed() ? undefined : { v };
    });
    if (out) return out.v;
    if (attempt === 2) throw new ApbError('not_ready', 'muster list: the site changed three times while it was read; ask again');
  }
}

/** engine.credentialsInAsync, stopped when the request went away; null when the engine or site changed (the caller starts again) */
async function rowsIn(src: MusterSource, r: Reading, from: number, max: number): Promise<InsidePage | null> {
  const p = await r.engine.credentialsInAsync(r.area, from, max, src.sliceMs === undefined ? { aborted: src.aborted } : { aborted: src.aborted, sliceMs: src.sliceMs });
  if (src.aborted()) throw gone();
  return r.changed() ? null : p;
}

/** Every matching row from record `from` on, `limit` at most; `next` = the record after the last row when more match. */
async function collect(src: MusterSource, r: Reading, m: MusterQuery, from: number, limit: number): Promise<{ rows: InsideRow[]; next: number | null } | null> {
  const match = matcher(m.q);
  const rows: InsideRow[] = [];
  let at: number | null = from;
  while (at !== null) {
    const p = await rowsIn(src, r, at, m.q === undefined ? Math.min(CHUNK, limit + 1) : CHUNK);
    if (p === null) return null;
    for (const row of p.rows) {
      if (!match(row.cred)) continue;
      if (rows.length === limit) return { rows, next: rows[rows.length - 1]!.rec + 1 };
      rows.push(row);
    }
    at = p.next;
  }
  return { rows, next: null };
}

/** How many credentials match: the area's occupancy without q (the same definition), else counted by a scan. */
async function countOf(src: MusterSource, r: Reading, m: MusterQuery): Promise<number | null> {
  if (m.q === undefined) return r.engine.occupancy(r.area);
  const match = matcher(m.q);
  let n = 0;
  for (let at: number | null = 0; at !== null;) {
    const p = await rowsIn(src, r, at, CHUNK);
    if (p === null) return null;
    for (const row of p.rows) if (match(row.cred)) n++;
    at = p.next;
  }
  return n;
}

/** One page (JSON/MessagePack body). */
export function musterPage(src: MusterSource, m: MusterQuery): Promise<{ area: string; count: number; credentials: MusterRow[]; next: string | null }> {
  const from = m.cursor !== undefined ? decodeCursor(m.areaId, m.q, m.cursor) : 0;
  return reading(src, m.areaId, async (r) => {
    const page = await collect(src, r, m, from, m.limit);
    const count = page && await countOf(src, r, m);
    if (page === null || count === null) return null;
    return {
      area: m.areaId,
      count,
      credentials: page.rows.map((row) => rowOf(r.site, row)),
      next: page.next === null ? null : encodeCursor(m.areaId, m.q, page.next),
    };
  });
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled */
const csvField = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Every matching row as CSV (`cred,area,since_iso,reader`) and a file name for Content-Disposition. */
export function musterCsv(src: MusterSource, m: MusterQuery, now: number): Promise<{ text: string; filename: string }> {
  return reading(src, m.areaId, async (r) => {
    const all = await collect(src, r, m, 0, Number.MAX_SAFE_INTEGER);
    if (all === null) return null;
    const lines = ['cred,area,since_iso,reader'];
    for (const row of all.rows.map((x) => rowOf(r.site, x))) {
      lines.push([row.cred, row.area, new Date(row.since).toISOString(), row.reader ?? ''].map(csvField).join(','));
    }
    const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    return { text: lines.join('\r\n') + '\r\n', filename: `muster-${m.areaId.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp}.csv` };
  });
}
