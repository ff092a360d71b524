/**
 * The HTTP API (PROTOCOL.md "HTTP API"). Roles: viewer < operator < admin;
 * controllers use their own token on POST /v1/decide only. Errors are
 * {code, message} with the PROTOCOL.md statuses (errors.ts HTTP_STATUS).
 */
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ApbError, HTTP_STATUS, isApbError } from '../errors.js';
import { credFromText, credToText, type Cred } from '../engine/cred.js';
import { parseReplayLine } from '../engine/messages.js';
import type { Auth, Role } from './auth.js';
import type { AuthThrottle } from './auth-throttle.js';
import { MAX_ID_BYTES, MAX_REASON_BYTES } from '../limits.js';
import type { Hub, Reply } from './hub.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import type { StaticFiles } from './static.js';
import { decodeFrame, isPlainMap, jsonText, toJson, unpackr } from './codec.js';
import { registerReads } from './read-routes.js';
import { answerLater, deferred, endPaced, copyRequest, errorBody, parseBody, readBody, route, send, sendError, MSGPACK_TYPE, type Out, type Req } from './http-util.js';

export const BODY_LIMIT = 1 << 20;        // /v1/decide and operator actions
export const CONFIG_BODY_LIMIT = 4 << 20; // PUT /v1/config

export interface ApiDeps {
  hub: Hub;
  auth: () => Auth;
  metrics: Metrics;
  log: Logger;
  statics: StaticFiles;
  throttle: AuthThrottle;
  health: () => { ready: boolean; body: Record<string, unknown> };
  metricsText: () => string;
  connected: (controller: string) => boolean;
  /** ServerOptions.musterSliceMs */
  musterSliceMs?: number | undefined;
}

const ACTIONS: Record<string, 'forgive' | 'reset' | 'exempt' | 'setLocation' | 'supervisor'> = {
  forgive: 'forgive', reset: 'reset', exempt: 'exempt', location: 'setLocation', supervisor: 'supervisor',
};

/**
 * Headers of every dashboard file: no inline script or style, nothing from
 * elsewhere, never framed (clickjacking), no MIME sniffing. The dashboard
 * talks only to this origin (fetch, and its WebSocket: 'self' covers ws/wss
 * of the same host in CSP level 3).
 */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
/** with the u flag, paired surrogates are one code point: only lone ones match */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
/** a URL or parameter echoed in an error message, cut short */
export const clip = (s: string, n = 100): string => (s.length > n ? s.slice(0, n) + '…' : s);

/**
 * An id-like string from outside (query or path parameter, body field):
 * bounded, well-formed UTF-16 (a lone surrogate cannot be stored or echoed
 * as the same text), else bad_message naming the parameter.
 */
export function boundedId(v: string, field: string, max = MAX_ID_BYTES): string {
  if (v.length > max || utf8Bytes(v) > max) throw new ApbError('bad_message', `${field}: at most ${max} UTF-8 bytes`);
  if (LONE_SURROGATE.test(v)) throw new ApbError('bad_message', `${field}: not valid Unicode (lone surrogate)`);
  return v;
}

/** {reason, on?, area?} of an operator action; bad_message names the field. */
function actionBody(req: Req): { reason: string; on?: boolean; area?: string } {
  const b = parseBody(req);
  if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new ApbError('bad_message', 'body: must be an object {reason, on?, area?}');
  const o = b as Record<string, unknown>;
  if (typeof o.reason !== 'string' || o.reason.trim() === '') throw new ApbError('bad_message', 'reason: required (a non-empty string saying why)');
  boundedId(o.reason, 'reason', MAX_REASON_BYTES);
  if (o.on !== undefined && typeof o.on !== 'boolean') throw new ApbError('bad_message', 'on: must be a boolean');
  if (o.area !== undefined && typeof o.area !== 'string') throw new ApbError('bad_message', 'area: must be an area id (string)');
  if (o.area !== undefined) boundedId(o.area as string, 'area');
  const out: { reason: string; on?: boolean; area?: string } = { reason: o.reason };
  if (o.on !== undefined) out.on = o.on as boolean;
  if (o.area !== undefined) out.area = o.area as string;
  return out;
}

export function registerHttpApi(app: TemplatedApp, d: ApiDeps): void {
  const { hub, log } = d;
  // token checks from the headers, before any body is read; wrong tokens count per address (auth-throttle.ts)
  const asUser = (min: Role) => (req: Req): unknown => d.throttle.guard(req.addr, req.token, () => d.auth().requireUser(req.token, min));
  const operator = asUser('operator'), admin = asUser('admin');
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
    try { d.throttle.guard(req.addr, req.token, () => d.auth().requireController(req.token)); } catch (e) { answerLater(() => req.aborted, () => sendError(res, req, e, log)); return; }
    readBody(res, rq, BODY_LIMIT).then((body) => {
      req.body = body;
      const ctrlAuth = d.auth().requireController(req.token);
      const ctrl = hub.controller(ctrlAuth.id);
      if (!ctrl) throw new ApbError('unauthorized', 'controller no longer configured');
      let msg: unknown;
      try {
        msg = req.contentType.includes(MSGPACK_TYPE) ? decodeFrame(body) : parseJsonBody(body);
        if (!isPlainMap(msg)) throw new ApbError('bad_frame', 'POST /v1/decide takes one message (a map)');
      } catch (e) {
        // a body that is no message still counts against the controller's rate and is logged (bounded)
        if (isApbError(e)) hub.refuseFrame(ctrl, e.code, e.message);
        throw e;
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

  // ── reads (viewer): read-routes.ts, also served by cluster followers from their replica ──
  registerReads(app, {
    site: () => hub.site, engine: () => hub.engine, store: () => hub.store, auth: d.auth, log, throttle: d.throttle,
    connected: d.connected, tick: true, musterSliceMs: d.musterSliceMs,
  });

  // ── operator actions ──
  route(app, 'post', '/v1/credentials/:cred/:action', { params: 2, withBody: true, bodyLimit: BODY_LIMIT, log, auth: operator }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'operator');
    const action = Object.hasOwn(ACTIONS, req.params[1]!) ? ACTIONS[req.params[1]!] : undefined;
    if (!action) throw new ApbError('not_found', `no credential action "${clip(req.params[1]!)}" (forgive, reset, exempt, location, supervisor)`);
    const cred = pathCred(req.params[0]!);
    const b = actionBody(req);
    const arg: { cred: Cred; area?: number; on?: boolean } = { cred };
    if (action === 'setLocation') {
      if (b.area === undefined) throw new ApbError('bad_message', 'area: required for location');
      arg.area = areaIndex(b.area);
    }
    if (action === 'exempt') arg.on = b.on ?? true;
    if (action === 'supervisor') {
      if (b.on === undefined) throw new ApbError('bad_message', 'on: required for supervisor (true or false)');
      arg.on = b.on;
    }
    const r = await hub.action(user.name, b.reason, action, arg);
    const body: Record<string, unknown> = { action, cred: credToText(cred), changed: r.changed, at: r.at, who: user.name, why: b.reason };
    if (b.area !== undefined && action === 'setLocation') body.area = b.area;
    if (action === 'exempt' || action === 'supervisor') body.on = arg.on;
    return { body };
  });

  /** the area of an /v1/areas/{area}/... path: its id (decoded, bounded) and index; unknown_area when none */
  const pathArea = (raw: string): { id: string; area: number } => {
    let id: string;
    try { id = decodeURIComponent(raw); } catch { throw new ApbError('bad_message', 'area: bad URL encoding'); }
    boundedId(id, 'area');
    return { id, area: areaIndex(id) };
  };

  route(app, 'post', '/v1/areas/:area/reset', { params: 1, withBody: true, bodyLimit: BODY_LIMIT, log, auth: operator }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'operator');
    const { id, area } = pathArea(req.params[0]!);
    const b = actionBody(req);
    const r = await hub.action(user.name, b.reason, 'resetArea', { area });
    return { body: { action: 'resetArea', area: id, changed: r.changed, at: r.at, who: user.name, why: b.reason } };
  });

  // SPEC 13.1: {reason, on}; outside is refused by hub.action (nothing enters it)
  route(app, 'post', '/v1/areas/:area/lockdown', { params: 1, withBody: true, bodyLimit: BODY_LIMIT, log, auth: operator }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'operator');
    const { id, area } = pathArea(req.params[0]!);
    const b = actionBody(req);
    if (b.on === undefined) throw new ApbError('bad_message', 'on: required for lockdown (true or false)');
    const r = await hub.action(user.name, b.reason, 'lockdown', { area, on: b.on });
    return { body: { action: 'lockdown', area: id, on: b.on, changed: r.changed, at: r.at, who: user.name, why: b.reason } };
  });

  // ── configuration (admin) ──
  route(app, 'put', '/v1/config', { withBody: true, bodyLimit: CONFIG_BODY_LIMIT, log, auth: admin }, async (req): Promise<Out> => {
    const user = d.auth().requireUser(req.token, 'admin');
    const text = (req.body ?? Buffer.alloc(0)).toString('utf8');
    if (!text.trim()) throw new ApbError('bad_message', 'body: the site configuration text (YAML or JSON) is required');
    req.msgpack = false;
    const report = await hub.reconfigure(text, user.name);
    return { body: report };
  });

  // ── health and metrics (anyone); HEAD answers as GET without the body ──
  const healthz = (res: HttpResponse, head: boolean): void => {
    const h = d.health();
    reply(res, h.ready ? '200 OK' : '503 Service Unavailable', 'application/json', JSON.stringify(h.body), head, { 'cache-control': 'no-store' });
  };
  app.get('/healthz', deferred((res) => healthz(res, false)));
  app.head('/healthz', deferred((res) => healthz(res, true)));
  const metricsOut = (res: HttpResponse, head: boolean): void => reply(res, '200 OK', 'text/plain; version=0.0.4; charset=utf-8', d.metricsText(), head);
  app.get('/metrics', deferred((res) => metricsOut(res, false)));
  app.head('/metrics', deferred((res) => metricsOut(res, true)));

  // ── dashboard, then 404 for everything else ──
  const dashboard = (res: HttpResponse, url: string, head: boolean): void => {
    const f = d.statics.lookup(url);
    if (f) {
      reply(res, '200 OK', f.type, f.data, head, DASHBOARD_HEADERS);
      return;
    }
    // browsers ask for it on every page load; the dashboard has none
    if (url === '/favicon.ico') { reply(res, '204 No Content', '', '', true, { 'cache-control': 'max-age=86400' }); return; }
    notFound(res, url, head ? 'head' : 'get');
  };
  app.get('/*', deferred((res, url) => dashboard(res, url, false)));
  app.head('/*', deferred((res, url) => dashboard(res, url, true)));
  app.any('/*', (res, rq) => notFound(res, rq.getUrl(), rq.getMethod())); // closes the connection: nothing more is parsed
}

const DASHBOARD_HEADERS: Record<string, string> = {
  'cache-control': 'no-cache', 'content-security-policy': DASHBOARD_CSP, 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer',
};

/** One plain response (paced: endPaced); `head`: the headers of the GET answer (its content-length included), no body. */
function reply(res: HttpResponse, status: string, type: string, data: string | Buffer, head: boolean, headers: Record<string, string> = {}): void {
  if (!head) { endPaced(res, status, { 'content-type': type || undefined, ...headers }, data); return; }
  res.cork(() => {
    res.writeStatus(status);
    if (type) res.writeHeader('content-type', type);
    res.writeHeader('x-content-type-options', 'nosniff');
    for (const k in headers) res.writeHeader(k, headers[k]!);
    // endWithoutBody(n) would wait for n bytes in this uWS: state the length ourselves
    if (data.length) res.writeHeader('content-length', String(Buffer.byteLength(data)));
    try { res.endWithoutBody(); } catch { res.end(); } // the JS fallback has none (node:http sends no body to HEAD)
  });
}

function notFound(res: HttpResponse, url: string, method = 'get'): void {
  const body = JSON.stringify(errorBody(new ApbError('not_found', `no route ${method.toUpperCase()} ${clip(url)}`)));
  if (method === 'head' || method === 'get') { reply(res, '404 Not Found', 'application/json', body, method === 'head'); return; }
  // a body we do not read may still be arriving: close after answering
  res.cork(() => res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').writeHeader('x-content-type-options', 'nosniff').end(body, true));
}

/** JSON with integers beyond 2^53 kept exact (the replay parser, bigint-safe). */
function parseJsonBody(body: Buffer): unknown {
  try {
    return parseReplayLine(jsonText(body));
  } catch (e) {
    if (isApbError(e) && e.code !== 'bad_frame') throw e;
    throw new ApbError('bad_frame', `body is not JSON: ${(e as Error).message}`);
  }
}

export { eventsQuery, intParam } from './read-routes.js';
