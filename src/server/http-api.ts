/**
 * The HTTP API (PROTOCOL.md "HTTP API"). Roles: viewer < operator < admin;
 * controllers use their own token on POST /v1/decide only. Errors are
 * {code, message} with the PROTOCOL.md statuses (errors.ts HTTP_STATUS).
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { ApbError, HTTP_STATUS, isApbError } from '../errors.js';
import { credFromText, credToText, type Cred } from '../engine/cred.js';
import { parseReplayLine } from '../engine/messages.js';
import type { Auth } from './auth.js';
import type { Hub, Reply } from './hub.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import type { StaticFiles } from './static.js';
import { decodeFrame, isPlainMap, toJson, unpackr } from './codec.js';
import { copyRequest, errorBody, parseBody, readBody, route, send, sendError, MSGPACK_TYPE, type Out, type Req } from './http-util.js';

export const BODY_LIMIT = 1 << 20;        // /v1/decide and operator actions
export const CONFIG_BODY_LIMIT = 4 << 20; // PUT /v1/config

export interface ApiDeps {
  hub: Hub;
  auth: () => Auth;
  metrics: Metrics;
  log: Logger;
  statics: StaticFiles;
  health: () => { ready: boolean; body: Record<string, unknown> };
  metricsText: () => string;
  connected: (controller: string) => boolean;
}

const ACTIONS: Record<string, 'forgive' | 'reset' | 'exempt' | 'setLocation'> = { forgive: 'forgive', reset: 'reset', exempt: 'exempt', location: 'setLocation' };

/** {reason, on?, area?} of an operator action; bad_message names the field. */
function actionBody(req: Req): { reason: string; on?: boolean; area?: string } {
  const b = parseBody(req);
  if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new ApbError('bad_message', 'body: must be an object {reason, on?, area?}');
  const o = b as Record<string, unknown>;
  if (typeof o.reason !== 'string' || o.reason.trim() === '') throw new ApbError('bad_message', 'reason: required (a non-empty string saying why)');
  if (o.on !== undefined && typeof o.on !== 'boolean') throw new ApbError('bad_message', 'on: must be a boolean');
  if (o.area !== undefined && typeof o.area !== 'string') throw new ApbError('bad_message', 'area: must be an area id (string)');
  const out: { reason: string; on?: boolean; area?: string } = { reason: o.reason };
  if (o.on !== undefined) out.on = o.on as boolean;
  if (o.area !== undefined) out.area = o.area as string;
  return out;
}

export function registerHttpApi(app: TemplatedApp, d: ApiDeps): void {
  const { hub, log } = d;
  const areaIndex = (id: string, field = 'area'): number => {
    const i = hub.site.areaIndex.get(id);
    if (i === undefined) throw new ApbError('unknown_area', `${field}: unknown area "${id}"`);
    return i;
  };
  const pathCred = (raw: string): Cred => credFromText(raw, 'cred');

  // ── the hot path: one badge (or any controller message) per request ──
  app.post('/v1/decide', (res, rq) => {
    const t0 = performance.now();
    const req = copyRequest(res, rq, 0);
    d.metrics.frames++;
    readBody(res, rq, BODY_LIMIT).then((body) => {
      req.body = body;
      const ctrlAuth = d.auth().requireController(req.token);
      const ctrl = hub.controller(ctrlAuth.id);
      if (!ctrl) throw new ApbError('unauthorized', 'controller no longer configured');
      const msg = req.contentType.includes(MSGPACK_TYPE) ? decodeFrame(body) : parseJsonBody(body);
      if (!isPlainMap(msg)) {
        throw new ApbError('bad_frame', 'POST /v1/decide takes one message (a map)');
      }
      const r = hub.handle(ctrl, msg);
      const finish = (rs: Reply[]): void => {
        d.metrics.observeLatency((performance.now() - t0) / 1000);
        const rep = rs[0]!;
        if (rep.code) {
          const status = HTTP_STATUS[rep.code] ?? 500;
          send(res, req, { status, body: { code: rep.code, message: rep.message ?? '' } });
        } else if (req.msgpack) {
          send(res, req, { body: null, raw: { data: rep.bytes, type: MSGPACK_TYPE } });
        } else {
          send(res, req, { body: null, raw: { data: toJson(unpackr.unpack(rep.bytes)), type: 'application/json' } });
        }
      };
      if (Array.isArray(r)) finish(r); else r.then(finish, (e) => sendError(res, req, e, log));
    }).catch((e) => sendError(res, req, e, log));
  });

  // ── reads (viewer) ──
  route(app, 'get', '/v1/whoami', { log }, (req) => {
    const u = d.auth().requireUser(req.token, 'viewer');
    return { body: { name: u.name, role: u.role } };
  });

  route(app, 'get', '/v1/controllers', { log }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    return { body: hub.site.config.controllers.map((c) => ({ id: c.id, protocol: c.protocol, connected: d.connected(c.id) })) };
  });

  route(app, 'get', '/v1/areas', { log }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    const site = hub.site;
    hub.engine.tick(Date.now()); // expiries and periodic resets up to now: occupancy is exact when read
    return {
      body: site.areaIds.map((id, i) => ({
        id,
        parent: i === 0 ? null : site.areaIds[site.parent[i]!]!,
        occupancy: hub.engine.occupancy(i),
        max: site.maxOccupancy[i]! >= 0 ? site.maxOccupancy[i]! : null,
      })),
    };
  });

  route(app, 'get', '/v1/credentials/:cred', { params: 1, log }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    const cred = pathCred(req.params[0]!);
    hub.engine.tick(Date.now());
    const s = hub.engine.state(cred);
    const site = hub.site;
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
        pending: s.pending ? { reader: site.readerIds[s.pending.reader]!, to: site.areaIds[s.pending.to]!, deadline: s.pending.deadline } : null,
      },
    };
  });

  route(app, 'get', '/v1/events', { log }, (req) => {
    d.auth().requireUser(req.token, 'viewer');
    const q: { cred?: string; reader?: string; since?: number; limit?: number } = {};
    const cred = req.query.get('cred');
    if (cred) q.cred = credToText(credFromText(cred, 'cred'));
    const reader = req.query.get('reader');
    if (reader) q.reader = reader;
    const since = req.query.get('since');
    if (since) {
      if (!/^\d+$/.test(since)) throw new ApbError('bad_message', 'since: must be milliseconds since the Unix epoch');
      q.since = Number(since);
    }
    const limit = req.query.get('limit');
    q.limit = 100;
    if (limit) {
      if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 10000) throw new ApbError('bad_message', 'limit: must be an integer 1-10000');
      q.limit = Number(limit);
    }
    return { body: hub.store.query(q) };
  });

  // ── operator actions ──
  route(app, 'post', '/v1/credentials/:cred/:action', { params: 2, withBody: true, bodyLimit: BODY_LIMIT, log }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'operator');
    const action = ACTIONS[req.params[1]!];
    if (!action) throw new ApbError('not_found', `no credential action "${req.params[1]}" (forgive, reset, exempt, location)`);
    const cred = pathCred(req.params[0]!);
    const b = actionBody(req);
    const arg: { cred: Cred; area?: number; on?: boolean } = { cred };
    if (action === 'setLocation') {
      if (b.area === undefined) throw new ApbError('bad_message', 'area: required for location');
      arg.area = areaIndex(b.area);
    }
    if (action === 'exempt') arg.on = b.on ?? true;
    const r = await hub.action(user.name, b.reason, action, arg);
    const body: Record<string, unknown> = { action, cred: credToText(cred), changed: r.changed, at: r.at, who: user.name, why: b.reason };
    if (b.area !== undefined && action === 'setLocation') body.area = b.area;
    if (action === 'exempt') body.on = arg.on;
    return { body };
  });

  route(app, 'post', '/v1/areas/:area/reset', { params: 1, withBody: true, bodyLimit: BODY_LIMIT, log }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'operator');
    let id: string;
    try { id = decodeURIComponent(req.params[0]!); } catch { throw new ApbError('bad_message', 'area: bad URL encoding'); }
    const area = areaIndex(id);
    const b = actionBody(req);
    const r = await hub.action(user.name, b.reason, 'resetArea', { area });
    return { body: { action: 'resetArea', area: id, changed: r.changed, at: r.at, who: user.name, why: b.reason } };
  });

  // ── configuration (admin) ──
  route(app, 'put', '/v1/config', { withBody: true, bodyLimit: CONFIG_BODY_LIMIT, log }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'admin');
    const text = (req.body ?? Buffer.alloc(0)).toString('utf8');
    if (!text.trim()) throw new ApbError('bad_message', 'body: the site configuration text (YAML or JSON) is required');
    req.msgpack = false;
    const report = await hub.reconfigure(text, user.name);
    return { body: report };
  });

  // ── health and metrics (anyone) ──
  app.get('/healthz', (res) => {
    const h = d.health();
    res.cork(() => res.writeStatus(h.ready ? '200 OK' : '503 Service Unavailable').writeHeader('content-type', 'application/json').end(JSON.stringify(h.body)));
  });
  app.get('/metrics', (res) => {
    const text = d.metricsText();
    res.cork(() => res.writeHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8').end(text));
  });

  // ── dashboard, then 404 for everything else ──
  app.get('/*', (res, rq) => {
    const url = rq.getUrl();
    const f = d.statics.lookup(url);
    if (f) {
      res.cork(() => res.writeHeader('content-type', f.type).writeHeader('cache-control', 'no-cache').end(f.data));
      return;
    }
    notFound(res, url);
  });
  app.any('/*', (res, rq) => notFound(res, rq.getUrl(), rq.getMethod()));
}

function notFound(res: import('uWebSockets.js').HttpResponse, url: string, method = 'get'): void {
  const body = errorBody(new ApbError('not_found', `no route ${method.toUpperCase()} ${url}`));
  // a body we do not read may still be arriving: close after answering
  res.cork(() => res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end(JSON.stringify(body), method !== 'get'));
}

/** JSON with integers beyond 2^53 kept exact (the replay parser, bigint-safe). */
function parseJsonBody(body: Buffer): unknown {
  try {
    return parseReplayLine(body.toString('utf8'));
  } catch (e) {
    if (isApbError(e) && e.code !== 'bad_frame') throw e;
    throw new ApbError('bad_frame', `body is not JSON: ${(e as Error).message}`);
  }
}
