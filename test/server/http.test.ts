/**
 * The HTTP API over loopback: every endpoint × every kind of token
 * (table-driven), JSON and MessagePack bodies, error statuses, operator
 * actions recorded with who/why, /healthz, /metrics, the dashboard files.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TOKENS, http, siteYaml, start } from './util.js';
import type { RunningServer } from '../../src/server/server.js';

let srv: RunningServer & { ws: string };
before(async () => { srv = await start(); });
after(async () => { await srv.close(); });

type Who = 'none' | 'wrong' | 'controller' | 'viewer' | 'operator' | 'admin';
const TOKEN_OF: Record<Who, string | undefined> = { none: undefined, wrong: 'wrong-token', controller: TOKENS.c1, viewer: TOKENS.viewer, operator: TOKENS.operator, admin: TOKENS.admin };
const WHO: Who[] = ['none', 'wrong', 'controller', 'viewer', 'operator', 'admin'];
const RANK: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };

/** expected status for a user endpoint needing `min` */
function expected(who: Who, min: 'viewer' | 'operator' | 'admin' | 'anyone' | 'controller'): number {
  if (min === 'anyone') return 200;
  if (min === 'controller') return who === 'controller' ? 200 : who === 'none' || who === 'wrong' ? 401 : 403;
  if (who === 'none' || who === 'wrong') return 401;
  if (who === 'controller') return 403;
  return RANK[who]! >= RANK[min]! ? 200 : 403;
}

const ENDPOINTS: { method: string; path: string; min: 'viewer' | 'operator' | 'admin' | 'anyone' | 'controller'; body?: () => unknown; raw?: () => string }[] = [
  { method: 'GET', path: '/v1/whoami', min: 'viewer' },
  { method: 'GET', path: '/v1/controllers', min: 'viewer' },
  { method: 'GET', path: '/v1/areas', min: 'viewer' },
  { method: 'GET', path: '/v1/credentials/31337', min: 'viewer' },
  { method: 'GET', path: '/v1/events', min: 'viewer' },
  { method: 'POST', path: '/v1/credentials/31337/forgive', min: 'operator', body: () => ({ reason: 'test' }) },
  { method: 'POST', path: '/v1/credentials/31337/reset', min: 'operator', body: () => ({ reason: 'test' }) },
  { method: 'POST', path: '/v1/credentials/31337/exempt', min: 'operator', body: () => ({ reason: 'test', on: false }) },
  { method: 'POST', path: '/v1/credentials/31337/location', min: 'operator', body: () => ({ reason: 'test', area: 'stadium' }) },
  { method: 'POST', path: '/v1/areas/vip/reset', min: 'operator', body: () => ({ reason: 'test' }) },
  { method: 'PUT', path: '/v1/config', min: 'admin', raw: () => siteYaml() },
  { method: 'POST', path: '/v1/decide', min: 'controller', body: () => ({ t: 'badge', id: Math.floor(Math.random() * 1e9), cred: 31338, reader: 'g-in' }) },
  { method: 'GET', path: '/healthz', min: 'anyone' },
  { method: 'GET', path: '/metrics', min: 'anyone' },
];

test('every endpoint × every token: the documented status', async () => {
  let checked = 0;
  for (const ep of ENDPOINTS) {
    for (const who of WHO) {
      const o: Parameters<typeof http>[3] = {};
      const tok = TOKEN_OF[who];
      if (tok) o.token = tok;
      if (ep.body) o.body = ep.body();
      if (ep.raw) { o.rawBody = ep.raw(); o.contentType = 'application/yaml'; }
      const r = await http(srv.url, ep.method, ep.path, o);
      const want = expected(who, ep.min);
      assert.equal(r.status, want, `${ep.method} ${ep.path} as ${who}: ${r.text.slice(0, 200)}`);
      if (want === 401) assert.equal(r.body.code, 'unauthorized');
      if (want === 403) assert.equal(r.body.code, 'forbidden');
      checked++;
    }
  }
  assert.equal(checked, ENDPOINTS.length * WHO.length);
});

test('whoami and controllers', async () => {
  assert.deepEqual((await http(srv.url, 'GET', '/v1/whoami', { token: TOKENS.operator })).body, { name: 'otto', role: 'operator' });
  const cs = (await http(srv.url, 'GET', '/v1/controllers', { token: TOKENS.viewer })).body;
  assert.deepEqual(cs.map((c: any) => [c.id, c.protocol]), [['c1', 'native'], ['c2', 'native'], ['slow', 'native'], ['limited', 'native'], ['wg', 'wiegand']]);
  assert.ok(cs.every((c: any) => c.connected === false));
});

test('POST /v1/decide in JSON and in MessagePack', async () => {
  const j = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 1, cred: 4242, reader: 'g-in' } });
  assert.equal(j.status, 200);
  assert.match(j.type, /json/);
  assert.deepEqual(j.body, { t: 'decision', id: 1, grant: true, reason: 'ok', violations: [], area: 'stadium' });
  const m = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, msgpack: true, body: { t: 'badge', id: 2, cred: 4242, reader: 'g-in' } });
  assert.equal(m.status, 200);
  assert.match(m.type, /msgpack/);
  assert.equal(m.body.reason, 'reentry');
  assert.equal(m.body.grant, false);
  // resend of id 1 over HTTP: the same decision, nothing applied again
  const again = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 1, cred: 4242, reader: 'g-out' } });
  assert.deepEqual(again.body, j.body);
  // a 64-bit id in JSON stays exact
  const big = await fetch(srv.url + '/v1/decide', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.c1}`, 'content-type': 'application/json' }, body: '{"t":"badge","id":18446744073709551615,"cred":4243,"reader":"g-in"}' });
  assert.match(await big.text(), /"id":18446744073709551615[,}]/);
});

test('POST /v1/decide errors: statuses and {code, message}', async () => {
  const cases: [unknown, number, string][] = [
    [{ t: 'badge', id: 3, cred: 1, reader: 'vip-in' }, 403, 'forbidden_reader'],
    [{ t: 'badge', id: 4, reader: 'g-in' }, 400, 'bad_message'],
    [{ t: 'nope', id: 5 }, 400, 'unknown_type'],
    [[{ t: 'badge', id: 6, cred: 1, reader: 'g-in' }], 400, 'bad_frame'],
  ];
  for (const [body, status, code] of cases) {
    const r = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body });
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.body.code, code);
    assert.equal(typeof r.body.message, 'string');
  }
  const nj = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, rawBody: '{not json', contentType: 'application/json' });
  assert.deepEqual([nj.status, nj.body.code], [400, 'bad_frame']);
  const nm = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, rawBody: Uint8Array.of(0xc1), contentType: 'application/msgpack' });
  assert.deepEqual([nm.status, nm.body.code], [400, 'bad_frame']);
  assert.match(nm.type, /json/, 'errors are JSON when the request could not be decoded');
  const big = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, rawBody: 'x'.repeat(1_200_000), contentType: 'application/json' });
  assert.deepEqual([big.status, big.body.code], [413, 'too_large']);
  const limited = [];
  for (let i = 0; i < 8; i++) limited.push((await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.limited, body: { t: 'badge', id: 500 + i, cred: 1, reader: 'l-in' } })).status);
  assert.ok(limited.includes(429), `statuses ${limited}`);
});

test('credential state in its three path forms; bad path form is bad_message', async () => {
  await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 20, cred: 'ticket 42', reader: 'g-in' } });
  const s = await http(srv.url, 'GET', '/v1/credentials/s:ticket%2042', { token: TOKENS.viewer });
  assert.equal(s.status, 200);
  assert.equal(s.body.cred, 's:ticket%2042');
  assert.equal(s.body.known, true);
  assert.equal(s.body.location, 'stadium');
  assert.equal(s.body.lastReader, 'g-in');
  assert.equal(typeof s.body.lastMoveAt, 'number');
  assert.equal(s.body.pending, null);
  const x = await http(srv.url, 'GET', '/v1/credentials/x:0a0b', { token: TOKENS.viewer });
  assert.deepEqual([x.status, x.body.known, x.body.location], [200, false, null]);
  const bad = await http(srv.url, 'GET', '/v1/credentials/x:0', { token: TOKENS.viewer });
  assert.deepEqual([bad.status, bad.body.code], [400, 'bad_message']);
});

test('operator actions: validated, applied, recorded with who/when/why, listed newest first', async () => {
  const tok = TOKENS.operator;
  const noReason = await http(srv.url, 'POST', '/v1/credentials/8001/forgive', { token: tok, body: {} });
  assert.deepEqual([noReason.status, noReason.body.code], [400, 'bad_message']);
  assert.match(noReason.body.message, /reason/);
  const badArea = await http(srv.url, 'POST', '/v1/credentials/8001/location', { token: tok, body: { reason: 'muster', area: 'moon' } });
  assert.deepEqual([badArea.status, badArea.body.code], [404, 'unknown_area']);
  const noArea = await http(srv.url, 'POST', '/v1/credentials/8001/location', { token: tok, body: { reason: 'muster' } });
  assert.deepEqual([noArea.status, noArea.body.code], [400, 'bad_message']);
  const badAction = await http(srv.url, 'POST', '/v1/credentials/8001/teleport', { token: tok, body: { reason: 'x' } });
  assert.deepEqual([badAction.status, badAction.body.code], [404, 'not_found']);
  const unknownAreaReset = await http(srv.url, 'POST', '/v1/areas/moon/reset', { token: tok, body: { reason: 'x' } });
  assert.deepEqual([unknownAreaReset.status, unknownAreaReset.body.code], [404, 'unknown_area']);

  const loc = await http(srv.url, 'POST', '/v1/credentials/8001/location', { token: tok, body: { reason: 'muster count', area: 'vip' } });
  assert.equal(loc.status, 200);
  assert.equal(loc.body.changed, 1);
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/8001', { token: tok })).body.location, 'vip');
  const fg = await http(srv.url, 'POST', '/v1/credentials/8001/forgive', { token: tok, msgpack: true, body: { reason: 'lost card' } });
  assert.equal(fg.status, 200);
  assert.match(fg.type, /msgpack/);
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/8001', { token: tok })).body.freePass, true);
  const ex = await http(srv.url, 'POST', '/v1/credentials/8001/exempt', { token: tok, body: { reason: 'steward', on: true } });
  assert.equal(ex.body.on, true);
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/8001', { token: tok })).body.exempt, true);
  const ra = await http(srv.url, 'POST', '/v1/areas/vip/reset', { token: tok, body: { reason: 'end of match' } });
  assert.equal(ra.status, 200);
  assert.ok(ra.body.changed >= 1);
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/8001', { token: tok })).body.location, null);

  const ev = await http(srv.url, 'GET', '/v1/events?cred=8001&limit=10', { token: TOKENS.viewer });
  assert.equal(ev.status, 200);
  const actions = ev.body.events.filter((e: any) => e.kind === 'action');
  assert.deepEqual(actions.map((e: any) => e.action), ['exempt', 'forgive', 'setLocation'], 'newest first');
  assert.ok(actions.every((e: any) => e.who === 'otto' && typeof e.at === 'number'));
  assert.deepEqual(actions.map((e: any) => e.why), ['steward', 'lost card', 'muster count']);
  const badSince = await http(srv.url, 'GET', '/v1/events?since=yesterday', { token: TOKENS.viewer });
  assert.deepEqual([badSince.status, badSince.body.code], [400, 'bad_message']);
});

test('GET /v1/areas: every area with occupancy, max and parent', async () => {
  for (let i = 0; i < 3; i++) await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 900 + i, cred: 12000 + i, reader: 'g-in' } });
  const r = await http(srv.url, 'GET', '/v1/areas', { token: TOKENS.viewer });
  const byId = Object.fromEntries(r.body.map((a: any) => [a.id, a]));
  assert.deepEqual(Object.keys(byId).sort(), ['concourse', 'outside', 'stadium', 'vip']);
  assert.equal(byId.vip.max, 2);
  assert.equal(byId.vip.parent, 'stadium');
  assert.equal(byId.outside.parent, null);
  assert.equal(byId.stadium.max, null);
  assert.ok(byId.stadium.occupancy >= 3);
});

test('/metrics reports how late the event loop runs, and a stall shows at the next scrape', async () => {
  const read = async (): Promise<{ q50: number; q99: number; q1: number; max: number }> => {
    const m = (await http(srv.url, 'GET', '/metrics')).text;
    const num = (re: RegExp): number => { const x = re.exec(m); assert.ok(x, `metrics match ${re}`); return Number(x[1]); };
    return {
      q50: num(/^apb_event_loop_delay_seconds\{quantile="0\.5"\} ([\d.e-]+)$/m),
      q99: num(/^apb_event_loop_delay_seconds\{quantile="0\.99"\} ([\d.e-]+)$/m),
      q1: num(/^apb_event_loop_delay_seconds\{quantile="1"\} ([\d.e-]+)$/m),
      max: num(/^apb_event_loop_delay_max_seconds ([\d.e-]+)$/m),
    };
  };
  const before = await read();
  assert.ok(before.q50 >= 0 && before.q50 <= before.q99 && before.q99 <= before.q1, JSON.stringify(before));
  // the server runs in this process: block its event loop for 150 ms
  await new Promise<void>((r) => setImmediate(() => { const t = Date.now(); while (Date.now() - t < 150) { /* stall */ } r(); }));
  await new Promise((r) => setTimeout(r, 30));
  const after = await read();
  assert.ok(Math.max(after.max, after.q1) >= 0.12, `a 150 ms stall is reported: ${JSON.stringify(after)}`);
});

test('/healthz, /metrics, PUT /v1/config validation, static files, 404', async () => {
  const h = await http(srv.url, 'GET', '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.body.ready, true);
  assert.equal(h.body.native, true);
  assert.equal(h.body.live, true);

  await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 990, cred: 13000, reader: 'g-in' } });
  await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 991, cred: 13000, reader: 'g-in' } });
  const m = (await http(srv.url, 'GET', '/metrics')).text;
  for (const name of ['apb_decisions_total{reason="ok"}', 'apb_decisions_total{reason="reentry"}', 'apb_violations_total{code="reentry",mode="hard"}',
    'apb_decision_latency_seconds_bucket{le="+Inf"}', 'apb_decision_latency_seconds_count', 'apb_connected_controllers', 'apb_backpressure_bytes',
    'apb_engine_seconds_total{core=', 'apb_uhppote_malformed_total', 'apb_storage_errors_total', 'apb_uws_native 1', 'apb_errors_total{code="forbidden_reader"}']) {
    assert.ok(m.includes(name), `metrics has ${name}`);
  }
  assert.ok(Number(/^apb_decisions_total\{reason="reentry"\} (\d+)/m.exec(m)![1]) >= 1);
  assert.ok(Number(/^apb_engine_seconds_total\{core="\w+"\} ([\d.e-]+)/m.exec(m)![1]) > 0);

  const bad = await http(srv.url, 'PUT', '/v1/config', { token: TOKENS.admin, rawBody: 'site: x\nareas:\n  - id: a\n    parent: nowhere\nbogus: 1\n' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'invalid_config');
  assert.deepEqual(Object.keys(bad.body).sort(), ['code', 'detail', 'message'], 'one shape: the error\'s detail, no top-level copy');
  assert.ok(Array.isArray(bad.body.detail.errors) && bad.body.detail.errors.length >= 2, JSON.stringify(bad.body));
  assert.ok(bad.body.detail.errors.every((i: any) => typeof i.path === 'string' && typeof i.message === 'string'));
  assert.equal(bad.body.message, `${bad.body.detail.errors[0].path}: ${bad.body.detail.errors[0].message}`, 'message = the first error');

  const idx = await fetch(srv.url + '/');
  assert.equal(idx.status, 200);
  assert.match(idx.headers.get('content-type')!, /text\/html/);
  const js = await fetch(srv.url + '/api.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type')!, /javascript/);
  for (const p of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/nope.html', '/v1/nothing']) {
    const r = await http(srv.url, 'GET', p);
    assert.equal(r.status, 404, p);
    assert.equal(r.body.code, 'not_found', p);
  }
  const del = await http(srv.url, 'DELETE', '/v1/areas', { token: TOKENS.admin });
  assert.equal(del.status, 404);
});
