/**
 * What a follower serves on the site's port while another node leads the site:
 *  - /v1/controller: controllers authenticate with their token (the configuration in force, as on
 *    the leader); each frame is forwarded to the leader over NATS request/reply (forward()) and the
 *    leader's reply bytes are sent back, in frame order per socket. When no leader answers, the
 *    socket is closed with 1013 (try again later): the controller reconnects (to this node or another);
 *  - the HTTP API's reads (server/read-routes.ts), answered from this node's replica (its hot engine
 *    and local journal), with headers saying how far behind the leader it is:
 *      Apb-Role: follower, Apb-Leader: <node>, Apb-Lag-Records: <stream messages not applied yet>,
 *      Apb-Lag-Ms: <ms since the stream stored the last message applied, while behind; 0 when not>
 *    The replica's clock moves only with the journal, so occupancy and presence are as of the last
 *    record applied (expiries after it show once the leader journals something);
 *  - /healthz: 503, not ready (a load balancer health-checking /healthz sends writes to the
 *    leader), with the role, the leader's name and URL, the lease epoch and the replication lag;
 *  - /metrics: the cluster lines;
 *  - writes under /v1/ (POST and PUT: /v1/decide, operator actions, /v1/config): relayed to the leader's
 *    URL over HTTP (method, path, query, authorization, content type and body, at most the
 *    server's largest body limit) and its answer sent back as it came, with Apb-Role: follower and
 *    Apb-Relayed-To: <leader node>, so one load-balanced address serves operators too. When no leader
 *    is known or it does not answer within RELAY_TIMEOUT_MS: 503 `not_leader`, naming the leader
 *    and its URL (header Apb-Leader-Url too) when known; the write may or may not have been applied
 *    if the leader was reached and then went silent (as for any HTTP client whose connection drops);
 *  - the live stream and the console: 503 `not_leader`, as above (they need the leader's engine).
 * The leader role's server takes the port over on takeover (this one closes first).
 */
import type { HttpRequest, HttpResponse, us_listen_socket, us_socket, us_socket_context_t } from 'uWebSockets.js';
import { loadUws } from '../server/uws.js';
import { listenExclusive } from '../server/listen.js';
import { Auth } from '../server/auth.js';
import { AuthThrottle } from '../server/auth-throttle.js';
import { readBody, statusLine } from '../server/http-util.js';
import { CONFIG_BODY_LIMIT } from '../server/http-api.js';
import { registerReads } from '../server/read-routes.js';
import { HARD_PAYLOAD_LIMIT, IDLE_TIMEOUT_S, MAX_BACKPRESSURE } from '../server/controller-socket.js';
import type { CompiledSite } from '../config/types.js';
import type { Engine } from '../engine/types.js';
import type { Store } from '../store/types.js';
import type { Logger } from '../server/log.js';
import { ApbError } from '../errors.js';

export interface FollowerView {
  health(): Record<string, unknown>;
  metrics(): string;
  leader(): string | undefined;
}

export interface FollowerDeps {
  view: FollowerView;
  log: Logger;
  /** tokens of the configuration in force */
  auth(): Auth;
  site(): CompiledSite;
  /** the replica engine (undefined: none; reads answer not_ready) */
  engine(): Engine | undefined;
  store(): Store;
  lag(): { records: number; ms: number };
  leaderUrl(): string | undefined;
  forward(controller: string, frame: Uint8Array): Promise<Uint8Array>;
}

interface Conn { controller: string; closed: boolean; tail: Promise<void> }

/** how long a relayed write may wait for the leader's answer */
export const RELAY_TIMEOUT_MS = 10_000;
const RELAYED_METHODS = new Set(['post', 'put']); // every write of the API (each has a body)

export interface FollowerPort { port: number; forwarded: number; close(): Promise<void> }

export async function listenFollower(host: string, port: number, d: FollowerDeps, allowJsFallback = false): Promise<FollowerPort> {
  const { uws } = loadUws({ allowJsFallback });
  const app = uws.App();
  const sockets = new Set<import('uWebSockets.js').WebSocket<Conn>>();
  const state = { forwarded: 0 };
  const { view } = d;

  app.ws<Conn>('/v1/controller', {
    maxPayloadLength: HARD_PAYLOAD_LIMIT,
    idleTimeout: IDLE_TIMEOUT_S,
    sendPingsAutomatically: true,
    maxBackpressure: MAX_BACKPRESSURE,
    closeOnBackpressureLimit: 1,
    upgrade: (res: HttpResponse, req: HttpRequest, ctx: us_socket_context_t) => {
      const key = req.getHeader('sec-websocket-key');
      const proto = req.getHeader('sec-websocket-protocol');
      const ext = req.getHeader('sec-websocket-extensions');
      const c = d.auth().controller(Auth.bearer(req.getHeader('authorization')));
      if (!c) {
        res.cork(() => res.writeStatus(statusLine(401)).writeHeader('content-type', 'application/json').end(JSON.stringify({ code: 'unauthorized', message: 'missing or wrong controller token' }), true));
        return;
      }
      res.cork(() => res.upgrade<Conn>({ controller: c.id, closed: false, tail: Promise.resolve() }, key, proto, ext, ctx));
    },
    open: (ws) => { sockets.add(ws); },
    message: (ws, msg) => {
      const conn = ws.getUserData();
      if (conn.closed) return;
      const frame = new Uint8Array(msg.slice(0)); // uWS reuses the buffer after this callback
      state.forwarded++;
      // replies leave in frame order: each waits for the previous one
      conn.tail = conn.tail.then(() => d.forward(conn.controller, frame)).then(
        (bytes) => { if (!conn.closed) ws.cork(() => { ws.send(bytes, true); }); },
        () => { if (!conn.closed) { conn.closed = true; try { ws.end(1013, 'no leader answers for this site; try again'); } catch { /* closed */ } } },
      );
    },
    close: (ws) => { ws.getUserData().closed = true; sockets.delete(ws); },
  });
  const json = (res: HttpResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    res.cork(() => {
      res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
      for (const k in extra) res.writeHeader(k, extra[k]!);
      res.end(JSON.stringify(body));
    });
  };
  const lagHeaders = (): Record<string, string> => {
    const lag = d.lag();
    const h: Record<string, string> = { 'apb-role': 'follower', 'apb-lag-records': String(lag.records), 'apb-lag-ms': String(lag.ms) };
    const leader = view.leader();
    if (leader) h['apb-leader'] = leader;
    return h;
  };
  app.get('/healthz', (res) => json(res, 503, { live: true, ready: false, cluster: view.health() }));
  app.get('/metrics', (res) => { res.cork(() => res.writeHeader('content-type', 'text/plain; version=0.0.4').end(view.metrics())); });
  registerReads(app, {
    site: d.site,
    engine: () => { const e = d.engine(); if (!e) throw new ApbError('not_ready', 'this follower has no replica engine yet'); return e; },
    store: d.store, auth: d.auth, log: d.log, throttle: new AuthThrottle(), connected: () => false, tick: false, headers: lagHeaders,
  });
  const notLeader = (res: HttpResponse, why?: string): void => {
    const leader = view.leader();
    const url = d.leaderUrl();
    const extra: Record<string, string> = { ...lagHeaders() };
    if (url) extra['apb-leader-url'] = url;
    json(res, 503, {
      code: 'not_leader',
      message: (leader ? `this node follows; node ${leader} leads the site${url ? ` at ${url}` : ''}: send the live stream and the console there` : 'this node follows; no node leads the site yet') + (why ? ` (${why})` : ''),
      leader: leader ?? null, leaderUrl: url ?? null,
    }, extra);
  };
  app.any('/*', (res, req) => {
    const method = req.getMethod().toLowerCase();
    const path = req.getUrl();
    const url = d.leaderUrl();
    if (!RELAYED_METHODS.has(method) || !path.startsWith('/v1/') || !url) { notLeader(res); return; }
    // a write: relayed to the leader (everything the request needs is read now: req is valid only in this call)
    const query = req.getQuery();
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'content-type']) { const v = req.getHeader(h); if (v) headers[h] = v; }
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    const leader = view.leader();
    readBody(res, req, CONFIG_BODY_LIMIT).then(async (body) => {
      const r = await fetch(`${url}${path}${query ? `?${query}` : ''}`, {
        method: method.toUpperCase(), headers, body: body.length ? new Uint8Array(body) : undefined, signal: AbortSignal.timeout(RELAY_TIMEOUT_MS),
      });
      const bytes = Buffer.from(await r.arrayBuffer());
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(r.status)).writeHeader('content-type', r.headers.get('content-type') ?? 'application/json');
        res.writeHeader('apb-role', 'follower');
        if (leader) res.writeHeader('apb-relayed-to', leader);
        res.end(bytes);
      });
    }).catch((e: unknown) => {
      if (aborted) return;
      if (e instanceof ApbError) { json(res, 413, { code: e.code, message: e.message }); return; }
      notLeader(res, `the leader did not answer: ${(e as Error)?.message ?? String(e)}`);
    });
  });

  const listen: us_listen_socket = await listenExclusive(app, host, port);
  const bound = uws.us_socket_local_port(listen as unknown as us_socket);
  return {
    port: bound,
    get forwarded() { return state.forwarded; },
    close: async () => {
      uws.us_listen_socket_close(listen);
      for (const ws of [...sockets]) { try { ws.end(1001, 'this node now leads the site, or is shutting down'); } catch { /* closed */ } }
      try { (app as unknown as { close?: () => void }).close?.(); } catch { /* older uWS */ }
      await new Promise((r) => setImmediate(r));
    },
  };
}
