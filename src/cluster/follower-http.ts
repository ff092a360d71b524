/**
 * What a follower answers on the node's port while another node leads the site: /healthz (503, not
 * ready, with the role, the leader's name, the lease epoch and the replication lag, so a load
 * balancer's health check sends traffic to the leader), /metrics (the cluster lines), and 503
 * `not_ready` naming the leader for everything else, controller WebSocket upgrades included.
 * Plain node:http: the uWebSockets.js server of the leader role takes the port over on takeover.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface FollowerView {
  health(): Record<string, unknown>;
  metrics(): string;
  leader(): string | undefined;
}

export async function listenFollower(host: string, port: number, view: FollowerView): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      const body = JSON.stringify({ live: true, ready: false, cluster: view.health() });
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(view.metrics());
      return;
    }
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify(notLeader(view.leader())));
  });
  // a controller's WebSocket upgrade: refused with the same 503 (it reconnects to another address)
  server.on('upgrade', (req, socket) => {
    const body = JSON.stringify(notLeader(view.leader()));
    socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

function notLeader(leader: string | undefined): { code: string; message: string } {
  return { code: 'not_ready', message: leader ? `this node follows; node ${leader} leads the site` : 'this node follows; no node leads the site yet' };
}
