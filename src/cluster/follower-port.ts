/**
 * What a follower serves on the node's port while another node leads the site:
 *  - /v1/controller: controllers authenticate with their token (the site file's) exactly as on the
 *    leader; each frame is forwarded to the leader over NATS request/reply (forward()) and the
 *    leader's reply bytes are sent back, in frame order per socket. When no leader answers, the
 *    socket is closed with 1013 (try again later): the controller reconnects (to this node or another);
 *  - /healthz: 503, not ready, with the role, the leader's name, the lease epoch and the replication
 *    lag (a load balancer health-checking /healthz sends operators to the leader);
 *  - /metrics: the cluster lines;
 *  - anything else: 503 `not_ready` naming the leader (the HTTP API is served by the leader only).
 * The leader role's server takes the port over on takeover (this one closes first).
 */
import type { HttpRequest, HttpResponse, us_listen_socket, us_socket, us_socket_context_t } from 'uWebSockets.js';
import { loadUws } from '../server/uws.js';
import { listenExclusive } from '../server/listen.js';
import { Auth } from '../server/auth.js';
import { statusLine } from '../server/http-util.js';
import { HARD_PAYLOAD_LIMIT, IDLE_TIMEOUT_S, MAX_BACKPRESSURE } from '../server/controller-socket.js';
import type { CompiledSite } from '../config/types.js';

export interface FollowerView {
  health(): Record<string, unknown>;
  metrics(): string;
  leader(): string | undefined;
}

interface Conn { controller: string; closed: boolean; tail: Promise<void> }

export interface FollowerPort { port: number; forwarded: number; close(): Promise<void> }

export async function listenFollower(host: string, port: number, view: FollowerView, site: CompiledSite,
  forward: (controller: string, frame: Uint8Array) => Promise<Uint8Array>, allowJsFallback = false): Promise<FollowerPort> {
  const { uws } = loadUws({ allowJsFallback });
  const app = uws.App();
  const auth = new Auth(site);
  const sockets = new Set<import('uWebSockets.js').WebSocket<Conn>>();
  const state = { forwarded: 0 };

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
      const c = auth.controller(Auth.bearer(req.getHeader('authorization')));
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
      conn.tail = conn.tail.then(() => forward(conn.controller, frame)).then(
        (bytes) => { if (!conn.closed) ws.cork(() => { ws.send(bytes, true); }); },
        () => { if (!conn.closed) { conn.closed = true; try { ws.end(1013, 'no leader answers for this site; try again'); } catch { /* closed */ } } },
      );
    },
    close: (ws) => { ws.getUserData().closed = true; sockets.delete(ws); },
  });
  const json = (res: HttpResponse, status: number, body: unknown): void => {
    res.cork(() => res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json').end(JSON.stringify(body)));
  };
  app.get('/healthz', (res) => json(res, 503, { live: true, ready: false, cluster: view.health() }));
  app.get('/metrics', (res) => { res.cork(() => res.writeHeader('content-type', 'text/plain; version=0.0.4').end(view.metrics())); });
  app.any('/*', (res) => {
    const leader = view.leader();
    json(res, 503, { code: 'not_ready', message: leader ? `this node follows; node ${leader} leads the site` : 'this node follows; no node leads the site yet' });
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
