/**
 * /v1/stream (viewer token in the query, filters by kind and area) and
 * outbound webhooks (a local receiver that fails first, then succeeds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';
import WebSocket from 'ws';
import { Controller, TOKENS, http, siteYaml, start, until } from './util.js';

class Viewer {
  events: any[] = [];
  constructor(readonly ws: WebSocket) { ws.on('message', (d: Buffer, isBinary: boolean) => { assert.equal(isBinary, false); this.events.push(JSON.parse(d.toString())); }); }
  static open(url: string, q: string): Promise<Viewer> {
    const ws = new WebSocket(`${url}/v1/stream?${q}`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Viewer(ws)));
      ws.once('unexpected-response', (_r, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }
  of(kind: string): any[] { return this.events.filter((e) => e.kind === kind); }
  close(): void { this.ws.close(); }
}

test('stream: auth, kinds and areas filters, every event kind', async () => {
  const srv = await start();
  try {
    for (const q of ['', 'token=nope', `token=${TOKENS.c1}`]) {
      await assert.rejects(Viewer.open(srv.ws, q), (e: { status?: number }) => e.status === 401 || e.status === 403, q);
    }
    await assert.rejects(Viewer.open(srv.ws, `token=${TOKENS.viewer}&kinds=gossip`), (e: { status?: number }) => e.status === 400);
    await assert.rejects(Viewer.open(srv.ws, `token=${TOKENS.viewer}&areas=moon`), (e: { status?: number }) => e.status === 404);

    const all = await Viewer.open(srv.ws, `token=${TOKENS.viewer}`);
    const vipOnly = await Viewer.open(srv.ws, `token=${TOKENS.viewer}&areas=vip&kinds=decision,violation,occupancy`);
    const violations = await Viewer.open(srv.ws, `token=${TOKENS.viewer}&kinds=violation`);

    const c1 = await Controller.connect(srv.ws, TOKENS.c1);
    const c2 = await Controller.connect(srv.ws, TOKENS.c2);
    assert.equal((await c1.rpc({ t: 'badge', id: 1, cred: 100, reader: 'g-in' })).grant, true);
    assert.equal((await c1.rpc({ t: 'badge', id: 2, cred: 100, reader: 'g-in' })).grant, false);  // reentry
    assert.equal((await c2.rpc({ t: 'badge', id: 1, cred: 100, reader: 'vip-in' })).grant, true);
    await http(srv.url, 'POST', '/v1/credentials/100/forgive', { token: TOKENS.operator, body: { reason: 'stream test' } });

    await until(() => all.of('decision').length >= 3 && all.of('action').length >= 1 && all.of('stats').length >= 1 && vipOnly.of('occupancy').length >= 1, 5000, 'events');
    const [d1, d2, d3] = all.of('decision');
    assert.deepEqual({ c: d1.controller, r: d1.reader, cred: d1.cred, g: d1.grant, reason: d1.reason, area: d1.area }, { c: 'c1', r: 'g-in', cred: '100', g: true, reason: 'ok', area: 'stadium' });
    assert.equal(d2.reason, 'reentry');
    assert.deepEqual(d2.violations, [{ code: 'reentry', mode: 'hard', area: 'stadium' }]);
    assert.equal(d3.reader, 'vip-in');
    const v = all.of('violation');
    assert.equal(v.length, 1);
    assert.deepEqual({ code: v[0].code, mode: v[0].mode, area: v[0].area, grant: v[0].grant, late: v[0].late, cred: v[0].cred }, { code: 'reentry', mode: 'hard', area: 'stadium', grant: false, late: false, cred: '100' });
    const a = all.of('action')[0];
    assert.deepEqual({ who: a.who, why: a.why, action: a.action, cred: a.cred, changed: a.changed }, { who: 'otto', why: 'stream test', action: 'forgive', cred: '100', changed: 1 });
    const st = all.of('stats')[0];
    assert.equal(typeof st.decisionsPerSec, 'number');
    assert.equal(typeof st.latencyUs.p50, 'number');
    assert.ok(Array.isArray(st.controllers));
    const occ = all.of('occupancy').at(-1);
    assert.ok(occ.areas.some((x: any) => x.id === 'vip' && x.max === 2 && x.parent === 'stadium'));

    // filters: only the VIP move (and only VIP occupancy); only violations
    assert.deepEqual(vipOnly.of('decision').map((e) => e.reader), ['vip-in']);
    assert.equal(vipOnly.of('action').length + vipOnly.of('stats').length, 0);
    await until(() => vipOnly.of('occupancy').some((o) => o.areas.some((x: any) => x.occupancy === 1)), 3000, 'vip occupancy 1');
    assert.ok(vipOnly.of('occupancy').every((o) => o.areas.every((x: any) => x.id === 'vip')));
    assert.deepEqual(violations.events.map((e) => e.kind), ['violation']);
    for (const x of [all, vipOnly, violations]) x.close();
    await c1.close(); await c2.close();
  } finally {
    await srv.close();
  }
});

test('webhooks: violations POSTed off the decision path, retried with backoff after failures', async () => {
  const got: any[] = [];
  let attempts = 0;
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      attempts++;
      if (attempts <= 2) { res.statusCode = 500; res.end('not yet'); return; } // fail the first two attempts
      got.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const port = (receiver.address() as { port: number }).port;
  const srv = await start({
    configText: siteYaml(`webhooks:\n  - { url: "http://127.0.0.1:${port}/hook" }\n`),
    webhooks: { baseDelayMs: 20, maxAttempts: 5 },
  });
  try {
    const c1 = await Controller.connect(srv.ws, TOKENS.c1);
    assert.equal((await c1.rpc({ t: 'badge', id: 1, cred: 55, reader: 'g-in' })).grant, true);
    const t0 = performance.now();
    const deny = await c1.rpc({ t: 'badge', id: 2, cred: 55, reader: 'g-in' });
    assert.equal(deny.reason, 'reentry', 'the decision is answered while the webhook is still failing');
    assert.ok(performance.now() - t0 < 1000);
    await until(() => got.length === 1, 5000, 'webhook delivery');
    assert.ok(attempts >= 3, `attempts ${attempts}`);
    assert.deepEqual({ kind: got[0].kind, code: got[0].code, cred: got[0].cred, reader: got[0].reader, controller: got[0].controller }, { kind: 'violation', code: 'reentry', cred: '55', reader: 'g-in', controller: 'c1' });
    const m = (await http(srv.url, 'GET', '/metrics')).text;
    assert.match(m, /^apb_webhook_sent_total 1$/m);
    assert.match(m, /^apb_webhook_failures_total 2$/m);
    await c1.close();
  } finally {
    await srv.close();
    receiver.close();
  }
});

test('UHPPOTE listener: malformed packets counted and ignored; a swipe is applied as an offline event', async () => {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  const udpPort = probe.address().port;
  probe.close();
  const yaml = siteYaml(`uhppote: { host: 127.0.0.1, port: ${udpPort} }\n`)
    .replace('controllers:\n', 'controllers:\n  - { id: up, token: tok-up-long-test-token, protocol: uhppote, serial: 423187757 }\n')
    .replace('readers:\n', 'readers:\n  - { id: u-in, from: outside, to: stadium, controller: up, uhppote: { door: 1, direction: in } }\n');
  const srv = await start({ configText: yaml });
  try {
    const s = createSocket('udp4');
    for (let i = 0; i < 3; i++) await new Promise<void>((r) => s.send(Buffer.from('definitely not a uhppote packet'), udpPort, '127.0.0.1', () => r()));
    await until(async () => /^apb_uhppote_malformed_total 3$/m.test((await http(srv.url, 'GET', '/metrics')).text), 3000, 'malformed count');
    assert.equal((await http(srv.url, 'GET', '/healthz')).status, 200);
    assert.equal((await http(srv.url, 'GET', '/v1/credentials/s:90%3A123', { token: TOKENS.viewer })).body.known, false);
    // a granted swipe at door 1 "in": applied as that controller's offline event
    const p = Buffer.alloc(64);
    p[0] = 0x17; p[1] = 0x20;
    p.writeUInt32LE(423187757, 4); p.writeUInt32LE(7, 8);
    p[12] = 1; p[13] = 1; p[14] = 1; p[15] = 1;
    p.writeUInt32LE(9000123, 16);
    Buffer.from([0x20, 0x25, 0x01, 0x02, 0x10, 0x00, 0x00]).copy(p, 20); // 2025-01-02 10:00:00 (site time zone UTC)
    await new Promise<void>((r) => s.send(p, udpPort, '127.0.0.1', () => r()));
    s.close();
    const st = await until(async () => { const r = await http(srv.url, 'GET', '/v1/credentials/s:90%3A123', { token: TOKENS.viewer }); return r.body.known ? r.body : undefined; }, 3000, 'the swipe to be applied');
    assert.equal(st.location, 'stadium');
    assert.equal(st.lastMoveAt, Date.UTC(2025, 0, 2, 10, 0, 0));
    assert.match((await http(srv.url, 'GET', '/metrics')).text, /^apb_uhppote_events_total 1$/m);
  } finally {
    await srv.close();
  }
});
