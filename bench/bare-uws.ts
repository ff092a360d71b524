/**
 * The baselines of the HTTP and WebSocket benchmarks, run as a child
 * process like the real server: a bare uWebSockets.js app that
 *   - echoes every WebSocket frame on any path (the "bare uWS echo server"),
 *   - answers every POST with a fixed MessagePack decision after reading the
 *     body (the "bare uWS handler"), corked like the real server's replies.
 * `node build/bench/bare-uws.js <port>` prints "listening <port>" when ready.
 */
import { Packr, Unpackr } from 'msgpackr';
import { loadUws } from '../src/server/uws.js';

const { uws } = loadUws();
const DECISION = new Packr({ useRecords: false, moreTypes: false }).pack({ t: 'decision', id: 1, grant: true, reason: 'ok', violations: [], area: 'hall' });
const port = Number(process.argv[2] ?? 0);

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'auto' } as never);
const decision = (m: { id?: unknown }) => ({ t: 'decision', id: m?.id ?? null, grant: true, reason: 'ok', violations: [], area: 'hall' });

const app = uws.App();
app.ws('/handler/*', {
  compression: 0,
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 120,
  maxBackpressure: 64 * 1024 * 1024,
  message: (ws, message) => {
    const v = unpackr.unpack(new Uint8Array(message)) as { id?: unknown } | { id?: unknown }[];
    ws.send(packr.pack(Array.isArray(v) ? v.map(decision) : decision(v)), true);
  },
});
app.ws('/*', {
  compression: 0,
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 120,
  maxBackpressure: 64 * 1024 * 1024,
  message: (ws, message, isBinary) => { ws.send(message, isBinary); },
});
app.post('/*', (res) => {
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  res.onData((_chunk, last) => {
    if (!last || aborted) return;
    res.cork(() => { res.writeHeader('content-type', 'application/msgpack').end(DECISION); });
  });
});
app.get('/healthz', (res) => { res.end('ok'); });
app.listen('127.0.0.1', port, (token) => {
  if (!token) { process.stderr.write(`bare-uws: cannot listen on ${port}\n`); process.exit(1); }
  process.stdout.write(`listening ${uws.us_socket_local_port(token)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
