/**
 * The baseline engine of the bridge benchmark: a bare uWebSockets.js app
 * that answers every controller message on /v1/controller at once, from
 * memory, with a fixed reply (`decision` grant for a badge, `ack` for the
 * rest), keeping the batch shape and the ids. No site, no decision, no
 * store: what is left of the bridge's card-to-LED time is the bridge, the
 * serial line and the WebSocket hop.
 * `node build/bench/bare-controller.js <port>` prints "listening <port>".
 */
import { Packr, Unpackr } from 'msgpackr';
import { loadUws } from '../src/server/uws.js';

const { uws } = loadUws();
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
const port = Number(process.argv[2] ?? 0);

type Msg = { t?: string; id?: unknown };
const answer = (m: Msg): Record<string, unknown> => (m.t === 'badge'
  ? { t: 'decision', id: m.id, grant: true, reason: 'ok', violations: [] }
  : { t: m.t === 'ping' ? 'pong' : 'ack', id: m.id });

const app = uws.App();
app.ws('/*', {
  compression: 0,
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 120,
  message: (ws, message) => {
    const v = unpackr.unpack(Buffer.from(message)) as Msg | Msg[];
    ws.send(packr.pack(Array.isArray(v) ? v.map(answer) : answer(v)), true);
  },
});
app.get('/healthz', (res) => { res.end('ok'); });
app.listen('127.0.0.1', port, (token) => {
  if (!token) { process.stderr.write(`bare-controller: cannot listen on ${port}\n`); process.exit(1); }
  process.stdout.write(`listening ${uws.us_socket_local_port(token)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
