/**
 * GET /healthz and GET /metrics of the bridge, on a small node:http server
 * (loopback by default). Everything else is 404; only GET and HEAD.
 */
import { createServer, type Server } from 'node:http';
import { ApbError } from '../../errors.js';

export interface OpsHandlers { health(): { ok: boolean; body: unknown }; metrics(): string }

export function startOpsServer(host: string, port: number, h: OpsHandlers): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) { res.writeHead(405, { allow: 'GET, HEAD' }).end(); return; }
    let status = 200, type = 'application/json', body = '';
    try {
      if (path === '/healthz') {
        const r = h.health();
        status = r.ok ? 200 : 503;
        body = JSON.stringify(r.body);
      } else if (path === '/metrics') {
        type = 'text/plain; version=0.0.4';
        body = h.metrics();
      } else { status = 404; body = JSON.stringify({ code: 'not_found', message: `no ${path} (try /healthz or /metrics)` }); }
    } catch (e) {
      status = 500; body = JSON.stringify({ code: 'internal', message: (e as Error).message });
    }
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(head ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new ApbError(e.code === 'EADDRINUSE' ? 'address_in_use' : 'internal', `cannot listen on ${host}:${port}: ${e.message}`)));
    server.listen({ host, port, exclusive: true }, () => {
      const a = server.address() as { port: number };
      resolve({
        server, url: `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`,
        close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}
