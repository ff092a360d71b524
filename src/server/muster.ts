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
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApbError } from '../errors.js';
import { MAX_MUSTER_CURSOR_CHARS } from '../limits.js';
import type { CompiledSite } from '../config/types.js';
import type { Engine, InsideRow } from '../engine/types.js';

export const MUSTER_DEFAULT_LIMIT = 100;
export const MUSTER_MAX_LIMIT = 1000;
/** rows asked of the engine per call */
const CHUNK = 4096;

const SECRET = randomBytes(32);
const BODY = 13, MAC = 12;

export interface MusterQuery { area: number; q?: string; limit: number; cursor?: string }
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

/** Every matching row from record `from` on, `limit` at most; `next` = the record after the last row when more match. */
function collect(engine: Engine, m: MusterQuery, from: number, limit: number): { rows: InsideRow[]; next: number | null } {
  const match = matcher(m.q);
  const rows: InsideRow[] = [];
  let at: number | null = from;
  while (at !== null) {
    const p = engine.credentialsIn(m.area, at, m.q === undefined ? Math.min(CHUNK, limit + 1) : CHUNK);
    for (const r of p.rows) {
      if (!match(r.cred)) continue;
      if (rows.length === limit) return { rows, next: rows[rows.length - 1]!.rec + 1 };
      rows.push(r);
    }
    at = p.next;
  }
  return { rows, next: null };
}

/** How many credentials match: the area's occupancy without q (the same definition), else counted by a scan. */
function countOf(engine: Engine, m: MusterQuery): number {
  if (m.q === undefined) return engine.occupancy(m.area);
  const match = matcher(m.q);
  let n = 0;
  for (let at: number | null = 0; at !== null;) {
    const p = engine.credentialsIn(m.area, at, CHUNK);
    for (const r of p.rows) if (match(r.cred)) n++;
    at = p.next;
  }
  return n;
}

/** One page (JSON/MessagePack body). Call engine.tick(now) first. */
export function musterPage(engine: Engine, m: MusterQuery): { area: string; count: number; credentials: MusterRow[]; next: string | null } {
  const site = engine.site;
  const areaId = site.areaIds[m.area]!;
  const from = m.cursor !== undefined ? decodeCursor(areaId, m.q, m.cursor) : 0;
  const page = collect(engine, m, from, m.limit);
  return {
    area: areaId,
    count: countOf(engine, m),
    credentials: page.rows.map((r) => rowOf(site, r)),
    next: page.next === null ? null : encodeCursor(areaId, m.q, page.next),
  };
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled */
const csvField = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Every matching row as CSV (`cred,area,since_iso,reader`) and a file name for Content-Disposition. */
export function musterCsv(engine: Engine, m: MusterQuery, now: number): { text: string; filename: string } {
  const site = engine.site;
  const areaId = site.areaIds[m.area]!;
  const lines = ['cred,area,since_iso,reader'];
  for (const r of collect(engine, m, 0, Number.MAX_SAFE_INTEGER).rows) {
    const row = rowOf(site, r);
    lines.push([row.cred, row.area, new Date(row.since).toISOString(), row.reader ?? ''].map(csvField).join(','));
  }
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return { text: lines.join('\r\n') + '\r\n', filename: `muster-${areaId.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp}.csv` };
}
