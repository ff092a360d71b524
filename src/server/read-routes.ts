/**
 * The HTTP API's reads (viewer role; PROTOCOL.md "HTTP API"): who am I, the site, its controllers,
 * occupancy, one credential, the event log and an area's muster list. Registered by the server
 * (http-api.ts) and by a cluster follower (cluster/follower-port.ts), which answers them from its
 * replica: same routes, same bodies, plus headers saying how far behind it is (`headers`).
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { ApbError } from '../errors.js';
import { credFromText, credToText, type Cred } from '../engine/cred.js';
import type { Engine } from '../engine/types.js';
import type { CompiledSite } from '../config/types.js';
import { MAX_MUSTER_Q_CHARS } from '../limits.js';
import { QUERY_DEFAULT_LIMIT, QUERY_MAX_LIMIT } from '../store/common.js';
import type { EventPageQuery, Store } from '../store/types.js';
import { parseInstant } from './instant.js';
import { areaRows } from './areas.js';
import { MUSTER_DEFAULT_LIMIT, MUSTER_MAX_LIMIT, musterCsv, musterPage, type MusterQuery, type MusterSource } from './muster.js';
import type { Auth } from './auth.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { Logger } from './log.js';
import { boundedId, clip } from './http-api.js';
import { route, type Out, type Req } from './http-util.js';

export interface ReadDeps {
  site(): CompiledSite;
  engine(): Engine;
  store(): Store;
  auth(): Auth;
  log: Logger;
  throttle: AuthThrottle;
  connected(controller: string): boolean;
  /** advance the engine's clock to now before reading (expiries, periodic resets). A follower's
   *  replica does not: its clock moves only with the journal it applies, or it would drift from
   *  the leader's engine it may become */
  tick: boolean;
  /** extra headers on every answer (a follower's replication lag) */
  headers?: () => Record<string, string>;
  /** work per slice of a muster page's scan, ms (ServerOptions.musterSliceMs; default wasm-core.ts SLICE_MS) */
  musterSliceMs?: number | undefined;
}

export function registerReads(app: TemplatedApp, d: ReadDeps): void {
  const { log } = d;
  const viewer = (req: Req): unknown => d.throttle.guard(req.addr, req.token, () => d.auth().requireUser(req.token, 'viewer'));
  const pathCred = (raw: string): Cred => credFromText(raw, 'cred');

  // ── reads (viewer) ──
  route(app, 'get', '/v1/whoami', { log, auth: viewer, headers: d.headers }, (req) => {
    const u = d.auth().requireUser(req.token, 'viewer');
    return { body: { name: u.name, role: u.role } };
  });

  // the site's name and time zone: the dashboard shows times in the site's zone, not the browser's
  route(app, 'get', '/v1/site', { log, auth: viewer, headers: d.headers }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    return { body: { site: d.site().config.site, timezone: d.site().config.timezone } };
  });

  route(app, 'get', '/v1/controllers', { log, auth: viewer, headers: d.headers }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    return { body: d.site().config.controllers.map((c) => ({ id: c.id, protocol: c.protocol, connected: d.connected(c.id) })) };
  });

  route(app, 'get', '/v1/areas', { log, auth: viewer, headers: d.headers }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    const site = d.site();
    if (d.tick) d.engine().tick(Date.now()); // expiries and periodic resets up to now: occupancy is exact when read
    return { body: areaRows(d.engine(), site) };
  });

  route(app, 'get', '/v1/credentials/:cred', { params: 1, log, auth: viewer, headers: d.headers }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    const cred = pathCred(req.params[0]!);
    if (d.tick) d.engine().tick(Date.now());
    const s = d.engine().state(cred);
    const site = d.site();
    return {
      body: {
        cred: credToText(cred),
        known: s.stored,
        location: s.location >= 0 ? site.areaIds[s.location]! : null,
        lastMoveAt: s.lastMoveAt,
        lastReader: s.lastReader >= 0 ? site.readerIds[s.lastReader]! : null,
        lastReaderAt: s.lastReaderAt,
        freePass: s.freePass,
        exempt: s.exempt,
        supervisor: s.supervisor,
        pending: s.pending ? { reader: site.readerIds[s.pending.reader]!, to: site.areaIds[s.pending.to]!, deadline: s.pending.deadline } : null,
      },
    };
  });

  route(app, 'get', '/v1/events', { log, auth: viewer, headers: d.headers }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    return { body: d.store().page(eventsQuery(req.query)) };
  });

  // the muster list: read in slices between decisions, one page at a time per engine (muster.ts)
  route(app, 'get', '/v1/areas/:area/credentials', { params: 1, log, auth: viewer, headers: d.headers }, async (req): Promise<Out> => {
    d.auth().requireUser(req.token, 'viewer');
    let id: string;
    try { id = decodeURIComponent(req.params[0]!); } catch { throw new ApbError('bad_message', 'area: bad URL encoding'); }
    boundedId(id, 'area');
    if (!d.site().areaIndex.has(id)) throw new ApbError('unknown_area', `area: unknown area "${id}"`);
    const m: MusterQuery = { areaId: id, limit: intParam(req.query, 'limit', 1, MUSTER_MAX_LIMIT, MUSTER_DEFAULT_LIMIT) };
    const q = req.query.get('q');
    if (q) m.q = boundedId(q, 'q', MAX_MUSTER_Q_CHARS);
    const cursor = req.query.get('cursor');
    if (cursor) m.cursor = cursor;
    const format = req.query.get('format') ?? 'json';
    if (format !== 'json' && format !== 'csv') throw new ApbError('bad_message', `format: must be json or csv, got "${clip(format, 20)}"`);
    const now = Date.now();
    // expiries and periodic resets up to now when its turn comes, as for GET /v1/areas
    const src: MusterSource = { engine: d.engine, tick: () => { if (d.tick) d.engine().tick(Date.now()); }, aborted: () => req.aborted, sliceMs: d.musterSliceMs };
    if (format === 'json') return { body: await musterPage(src, m) };
    const csv = await musterCsv(src, m, now);
    return { body: null, raw: { data: csv.text, type: 'text/csv; charset=utf-8' }, headers: { 'content-disposition': `attachment; filename="${csv.filename}"`, 'cache-control': 'no-store' } };
  });
}

/**
 * GET /v1/events parameters: cred, reader, since, until (epoch ms or ISO 8601 date-time), limit 1-10000
 * (default 100), order asc|desc (default desc), cursor (a previous page's `next`); bad_message names the
 * parameter. The store checks the cursor against the filters and order (event-cursor.ts).
 */
export function eventsQuery(p: URLSearchParams): EventPageQuery {
  const q: EventPageQuery = {};
  const cred = p.get('cred');
  if (cred) q.cred = credToText(credFromText(cred, 'cred'));
  const reader = p.get('reader');
  if (reader) q.reader = boundedId(reader, 'reader');
  const since = p.get('since'), until = p.get('until');
  if (since) q.since = parseInstant(since, 'since:');
  if (until) q.until = parseInstant(until, 'until:');
  if (q.since !== undefined && q.until !== undefined && q.until < q.since) throw new ApbError('bad_message', 'until: is before since');
  q.limit = intParam(p, 'limit', 1, QUERY_MAX_LIMIT, QUERY_DEFAULT_LIMIT);
  const order = p.get('order');
  if (order) {
    if (order !== 'asc' && order !== 'desc') throw new ApbError('bad_message', `order: must be asc or desc, got "${clip(order, 20)}"`);
    q.order = order;
  }
  const cursor = p.get('cursor');
  if (cursor) q.cursor = cursor; // bounded and checked by the store (event-cursor.ts decodeCursor)
  return q;
}

/** An integer query parameter in [min, max] (`dflt` when absent or empty); bad_message names it. */
export function intParam(p: URLSearchParams, name: string, min: number, max: number, dflt: number): number {
  const v = p.get(name);
  if (!v) return dflt;
  if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) throw new ApbError('bad_message', `${name}: must be an integer ${min}-${max}`);
  return Number(v);
}

