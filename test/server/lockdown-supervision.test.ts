/**
 * SPEC 13 end to end on a real server over a real LMDB directory:
 * POST /v1/areas/{area}/lockdown and /v1/credentials/{cred}/supervisor
 * (roles, bad input with stable codes and no state change), GET /v1/areas
 * (lockdown, supervisors), the live stream (the action, the occupancy
 * event), controllers denied by a lockdown, GET /v1/events carrying `seen`
 * and the violations' facts (fast path and general path), and both states
 * kept across a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Controller, TOKENS, http, siteYaml, start, tempDir, until } from './util.js';

const SITE = siteYaml(`credentials:
  - { cred: 7000, supervisor: true }
`).replace('  - id: vip\n    parent: stadium\n', '  - id: vip\n    parent: stadium\n    supervision: hard\n');
const O = TOKENS.operator, V = TOKENS.viewer;

let dir: ReturnType<typeof tempDir>;
let srv: Awaited<ReturnType<typeof start>>;
let c1: Controller, c2: Controller;
let id = 1;

const areas = async (): Promise<Record<string, { occupancy: number; lockdown: boolean; supervisors: number; supervision: string }>> => {
  const r = await http(srv.url, 'GET', '/v1/areas', { token: V });
  assert.equal(r.status, 200);
  return Object.fromEntries(r.body.map((a: { id: string }) => [a.id, a]));
};
const badge = (c: Controller, cred: number | string, reader: string): Promise<any> => c.rpc({ t: 'badge', id: id++, cred, reader });
const lockdown = (area: string, body: unknown, token: string = O) => http(srv.url, 'POST', `/v1/areas/${encodeURIComponent(area)}/lockdown`, { token, body });

before(async () => {
  dir = tempDir('apb-spec13-');
  srv = await start({ configText: SITE, data: dir.dir });
  c1 = await Controller.connect(srv.ws, TOKENS.c1);
  c2 = await Controller.connect(srv.ws, TOKENS.c2);
});
after(async () => { await c1?.close(); await c2?.close(); await srv?.close(); dir?.cleanup(); });

test('bad lockdown requests get precise codes and change nothing', async () => {
  const cases: [string, unknown, string, number, string][] = [
    ['outside', { reason: 'x', on: true }, O, 400, 'bad_message'],
    ['nowhere', { reason: 'x', on: true }, O, 404, 'unknown_area'],
    ['stadium', { reason: 'x' }, O, 400, 'bad_message'],
    ['stadium', { reason: 'x', on: 'yes' }, O, 400, 'bad_message'],
    ['stadium', { on: true }, O, 400, 'bad_message'],
    ['stadium', { reason: 'x', on: true }, V, 403, 'forbidden'],
  ];
  for (const [area, body, token, status, code] of cases) {
    const r = await lockdown(area, body, token);
    assert.deepEqual([r.status, r.body.code], [status, code], `${area} ${JSON.stringify(body)}: ${r.text}`);
  }
  assert.equal((await areas()).stadium!.lockdown, false);
  const s = await http(srv.url, 'POST', '/v1/credentials/7001/supervisor', { token: O, body: { reason: 'x' } });
  assert.deepEqual([s.status, s.body.code], [400, 'bad_message']);
});

test('a lockdown is journaled, shown in /v1/areas and on the stream, and denies controllers', async () => {
  const ws = new WebSocket(`${srv.ws}/v1/stream?token=${V}&kinds=action,occupancy`);
  const events: any[] = [];
  ws.on('message', (d: Buffer) => events.push(JSON.parse(d.toString())));
  await new Promise((r) => ws.once('open', r));
  assert.equal((await badge(c1, 9001, 'g-in')).grant, true);
  const r = await lockdown('stadium', { reason: 'pitch invasion', on: true });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.body.action, r.body.area, r.body.on, r.body.changed, r.body.who, r.body.why], ['lockdown', 'stadium', true, 1, 'otto', 'pitch invasion']);
  assert.equal((await lockdown('stadium', { reason: 'again', on: true })).body.changed, 0, 'locking a locked area changes nothing');
  assert.equal((await areas()).stadium!.lockdown, true);
  // a move into the stadium or below it is denied; the controller's reply stays {code, mode, area}
  const d = await badge(c1, 9002, 'g-in');
  assert.deepEqual(d, { t: 'decision', id: d.id, grant: false, reason: 'lockdown', violations: [{ code: 'lockdown', mode: 'hard', area: 'stadium' }] });
  assert.equal((await badge(c2, 9001, 'vip-in')).reason, 'lockdown');
  assert.equal((await badge(c1, 9001, 'g-out')).grant, true, 'leaving is decided as usual');
  // an offline upload is applied, and recorded with the late violation `lockdown`
  const up = await c1.rpc({ t: 'offline', id: id++, cred: 9003, reader: 'g-in', ts: Date.now() - 1000, granted: true });
  assert.equal(up.t, 'ack');
  const rec = (await http(srv.url, 'GET', '/v1/events?cred=9003&limit=1', { token: V })).body.events[0];
  assert.deepEqual([rec.kind, rec.applied, rec.violations], ['offline', true, [{ code: 'lockdown', mode: 'hard', area: 'stadium' }]]);
  assert.equal(rec.seen.location, null);
  await until(() => events.some((e) => e.kind === 'action' && e.action === 'lockdown' && e.area === 'stadium' && e.on === true), 5000, 'the lockdown action on the stream');
  await until(() => events.some((e) => e.kind === 'occupancy' && e.areas.some((a: any) => a.id === 'stadium' && a.lockdown === true)), 8000, 'an occupancy event with the lockdown');
  ws.close();
});

test('supervisors: counted per area, no_supervisor and last_supervisor, the explained events', async () => {
  assert.equal((await lockdown('stadium', { reason: 'all clear', on: false })).body.changed, 1);
  await badge(c1, 7000, 'g-in');
  await badge(c1, 7100, 'g-in');
  // nobody supervises the VIP lounge yet: a non-supervisor is denied there
  let d = await badge(c2, 7100, 'vip-in');
  assert.deepEqual([d.grant, d.reason], [false, 'no_supervisor']);
  assert.equal((await badge(c2, 7000, 'vip-in')).grant, true);
  d = await badge(c2, 7100, 'vip-in');
  assert.equal(d.grant, true);
  const a = await areas();
  assert.deepEqual([a.vip!.supervisors, a.vip!.occupancy, a.stadium!.supervisors, a.vip!.supervision], [1, 2, 1, 'hard']);
  d = await badge(c2, 7000, 'vip-out');
  assert.deepEqual([d.grant, d.reason], [false, 'last_supervisor']);
  // a supervisor set by the API counts at once
  const s = await http(srv.url, 'POST', '/v1/credentials/7100/supervisor', { token: O, body: { reason: 'promoted', on: true } });
  assert.deepEqual([s.status, s.body.on, s.body.changed], [200, true, 1]);
  assert.equal((await areas()).vip!.supervisors, 2);
  assert.equal((await badge(c2, 7000, 'vip-out')).grant, true);
  const st = await http(srv.url, 'GET', '/v1/credentials/7100', { token: V });
  assert.equal(st.body.supervisor, true);
  // the event log explains: the last_supervisor deny (compact fast path) with seen and others
  const ev = await http(srv.url, 'GET', '/v1/events?cred=7000&limit=10', { token: V });
  const deny = ev.body.events.find((e: any) => e.reason === 'last_supervisor');
  assert.ok(deny, JSON.stringify(ev.body.events));
  assert.deepEqual(deny.violations, [{ code: 'last_supervisor', mode: 'hard', area: 'vip', others: 1 }]);
  assert.deepEqual(deny.seen, { location: 'vip', lastMoveAt: deny.seen.lastMoveAt, lastReader: 'vip-in', lastReaderAt: deny.seen.lastReaderAt, freePass: false, exempt: false, supervisor: true, pending: null });
  assert.ok(deny.seen.lastMoveAt > 0 && deny.seen.lastMoveAt <= deny.at);
  // a string credential takes the general path: the same explanation
  await badge(c1, 's1', 'g-in');
  await badge(c1, 's1', 'g-in');
  const gen = await http(srv.url, 'GET', '/v1/events?cred=s:s1&limit=1', { token: V });
  const re = gen.body.events[0];
  assert.deepEqual(re.violations, [{ code: 'reentry', mode: 'hard', area: 'stadium', location: 'stadium' }]);
  assert.equal(re.seen.location, 'stadium');
});

test('lockdown and supervisors survive a restart on the same data directory', async () => {
  assert.equal((await lockdown('vip', { reason: 'drill', on: true })).status, 200);
  const before = await areas();
  await c1.close(); await c2.close();
  await srv.close();
  srv = await start({ configText: SITE, data: dir.dir });
  c1 = await Controller.connect(srv.ws, TOKENS.c1);
  c2 = await Controller.connect(srv.ws, TOKENS.c2);
  const after = await areas();
  assert.deepEqual([after.vip!.lockdown, after.stadium!.lockdown, after.stadium!.supervisors], [true, false, before.stadium!.supervisors]);
  assert.equal((await badge(c2, 7100, 'vip-in')).reason, 'lockdown');
  // a reload that removes the locked area drops its lockdown; the supervisor flag stays
  const text = SITE.replace(/  - id: vip\n[\s\S]*?maxOccupancy: 2\n/, '').replace(/  - \{ id: vip-(in|out)[^\n]*\n/g, '');
  const put = await http(srv.url, 'PUT', '/v1/config', { token: TOKENS.admin, rawBody: text, contentType: 'application/yaml' });
  assert.equal(put.status, 200, put.text);
  const now = await areas();
  assert.equal(now.vip, undefined);
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/7100', { token: V })).body.supervisor, true);
});
