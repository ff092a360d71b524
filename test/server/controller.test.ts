/**
 * The controller WebSocket over loopback with a real `ws` client and a
 * different MessagePack implementation: every message type, every error
 * code a controller can get, batches, resends after reconnect, and the
 * slow reader.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Controller, TOKENS, http, pack, start, unpack, norm, until, sleep } from './util.js';
import type { RunningServer } from '../../src/server/server.js';
import { encodeRead } from '../../src/adapters/wiegand/encode.js';
import { BUILTIN_FORMATS } from '../../src/adapters/wiegand/formats.js';

let srv: RunningServer & { ws: string };
before(async () => { srv = await start(); });
after(async () => { await srv.close(); });

test('upgrade without, with a wrong or with a user token is refused with 401', async () => {
  for (const tok of [undefined, 'nope', TOKENS.viewer, TOKENS.admin]) {
    await assert.rejects(Controller.connect(srv.ws, tok), (e: { status?: number }) => e.status === 401, `token ${tok}`);
  }
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  assert.deepEqual(await c.rpc({ t: 'ping', id: 1 }).then((r) => ({ t: r.t, id: r.id })), { t: 'pong', id: 1 });
  await c.close();
});

test('badge → decision, passage/offline → ack, ping → pong with now', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  const r1 = await c.rpc({ t: 'badge', id: 10, cred: 5001, reader: 'g-in' });
  assert.deepEqual(r1, { t: 'decision', id: 10, grant: true, reason: 'ok', violations: [], area: 'stadium' });
  const r2 = await c.rpc({ t: 'badge', id: 11, cred: 5001, reader: 'g-in', ts: Date.now() });
  assert.equal(r2.grant, false);
  assert.equal(r2.reason, 'reentry');
  assert.deepEqual(r2.violations.map((v: { code: string; mode: string }) => [v.code, v.mode]), [['reentry', 'hard']]);
  assert.equal(r2.area, undefined);
  // 123 and "123" are different credentials
  assert.equal((await c.rpc({ t: 'badge', id: 12, cred: '5001', reader: 'g-in' })).grant, true);
  // binary credential
  assert.equal((await c.rpc({ t: 'badge', id: 13, cred: new Uint8Array([1, 2, 3]), reader: 'g-in' })).grant, true);
  // passage confirmation: the move to the concourse is pending until the passage
  const r3 = await c.rpc({ t: 'badge', id: 14, cred: 5001, reader: 't-in' });
  assert.equal(r3.grant, true);
  assert.deepEqual(await c.rpc({ t: 'passage', id: 15, cred: 5001, reader: 't-in' }), { t: 'ack', id: 15 });
  const st = await http(srv.url, 'GET', '/v1/credentials/5001', { token: TOKENS.viewer });
  assert.equal(st.body.location, 'concourse');
  assert.deepEqual(await c.rpc({ t: 'offline', id: 16, cred: 777, reader: 'g-in', ts: Date.now() - 1000, granted: true }), { t: 'ack', id: 16 });
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/777', { token: TOKENS.viewer })).body.location, 'stadium');
  const before = Date.now();
  const p = await c.rpc({ t: 'ping', id: 17 });
  assert.equal(p.t, 'pong');
  assert.equal(p.id, 17);
  assert.ok(typeof p.now === 'number' && p.now >= before - 5 && p.now <= Date.now() + 5, `now ${p.now}`);
  await c.close();
});

test('an unknown reader is decided (deny unknown_reader); a reader of another controller is forbidden_reader', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  const r = await c.rpc({ t: 'badge', id: 20, cred: 42, reader: 'no-such-reader' });
  assert.deepEqual({ grant: r.grant, reason: r.reason }, { grant: false, reason: 'unknown_reader' });
  const f = await c.rpc({ t: 'badge', id: 21, cred: 42, reader: 'vip-in' });
  assert.equal(f.t, 'error');
  assert.equal(f.code, 'forbidden_reader');
  assert.equal(f.id, 21);
  assert.match(f.message, /vip-in.*c2/);
  const st = await http(srv.url, 'GET', '/v1/credentials/42', { token: TOKENS.viewer });
  assert.equal(st.body.known, false, 'neither message changed state');
  await c.close();
});

test('every bad message gets the documented error code and changes nothing', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  const cases: [unknown, string, unknown][] = [
    [{ t: 'badge', cred: 1, reader: 'g-in' }, 'bad_message', undefined],           // no id
    [{ t: 'badge', id: -1, cred: 1, reader: 'g-in' }, 'bad_message', undefined],   // negative id
    [{ t: 'badge', id: 1.5, cred: 1, reader: 'g-in' }, 'bad_message', undefined],
    [{ t: 'badge', id: 30, reader: 'g-in' }, 'bad_message', 30],                   // no cred
    [{ t: 'badge', id: 31, cred: 1 }, 'bad_message', 31],                          // no reader
    [{ t: 'badge', id: 32, cred: 1, reader: 7 }, 'bad_message', 32],
    [{ t: 'badge', id: 33, cred: 'x'.repeat(65), reader: 'g-in' }, 'bad_message', 33],
    [{ t: 'badge', id: 34, cred: 1, reader: 'g-in', ts: 'soon' }, 'bad_message', 34],
    [{ t: 'offline', id: 35, cred: 1, reader: 'g-in', ts: 5 }, 'bad_message', 35], // no granted
    [{ id: 36, cred: 1 }, 'bad_message', 36],                                      // no t
    [{ t: 'teleport', id: 37 }, 'unknown_type', 37],
    [{ t: 'forgive', id: 38, cred: 1 }, 'unknown_type', 38],                       // operator actions are not controller messages
  ];
  for (const [msg, code, id] of cases) {
    const r = await c.rpc(msg);
    assert.equal(r.t, 'error', JSON.stringify(msg));
    assert.equal(r.code, code, JSON.stringify(msg));
    assert.equal(r.id, id, JSON.stringify(msg));
    assert.equal(typeof r.message, 'string');
  }
  const m = (await c.rpc({ t: 'badge', id: 30, cred: 1, reader: 'g-in' }));
  assert.equal(m.t, 'decision', 'an id answered with an error is not used up');
  await c.close();
});

test('bad_frame (not MessagePack, not a map or array) has no id and keeps the socket open', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  c.sendRaw(Uint8Array.of(0xc1)); // 0xc1 is never used in MessagePack
  let r: any = await c.next();
  assert.deepEqual([r.t, r.code, 'id' in r], ['error', 'bad_frame', false]);
  for (const v of [5, 'hello', true, null]) {
    r = await c.rpc(v);
    assert.deepEqual([r.t, r.code, 'id' in r], ['error', 'bad_frame', false], String(v));
  }
  assert.equal((await c.rpc({ t: 'ping', id: 40 })).t, 'pong');
  await c.close();
});

test('a batch is answered by one array in order; a bad message in the middle stops nothing', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  const r = await c.rpc([
    { t: 'badge', id: 50, cred: 6001, reader: 'g-in' },
    { t: 'badge', cred: 6002, reader: 'g-in' },
    'not a map',
    { t: 'nope', id: 51 },
    { t: 'badge', id: 52, cred: 6001, reader: 'vip-in' },
    { t: 'badge', id: 53, cred: 6003, reader: 'g-in' },
    { t: 'ping', id: 54 },
    { t: 'badge', id: 55, cred: 6001, reader: 'g-in' },
  ]);
  assert.ok(Array.isArray(r));
  assert.equal(r.length, 8);
  assert.deepEqual(r.map((x: any) => x.t === 'error' ? x.code : x.t), ['decision', 'bad_message', 'bad_message', 'unknown_type', 'forbidden_reader', 'decision', 'pong', 'decision']);
  assert.deepEqual(r.map((x: any) => x.id), [50, undefined, undefined, 51, 52, 53, 54, 55]);
  assert.equal(r[0].grant, true);
  assert.equal(r[5].grant, true);
  assert.equal(r[7].reason, 'reentry', 'messages of one batch are decided in order');
  assert.deepEqual(await c.rpc([]), [], 'an empty batch is an empty array');
  await c.close();
});

test('too_large: a frame over 1 MiB and a batch over the message limit', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.c1);
  const r = await c.rpc({ t: 'badge', id: 60, cred: 1, reader: 'g-in', pad: randomBytes(1_100_000) });
  assert.deepEqual([r.t, r.code], ['error', 'too_large']);
  const many = Array.from({ length: 4097 }, (_, i) => ({ t: 'ping', id: 100000 + i }));
  const r2 = await c.rpc(many);
  assert.deepEqual([r2.t, r2.code], ['error', 'too_large']);
  assert.equal((await c.rpc({ t: 'ping', id: 61 })).t, 'pong', 'the socket stays usable');
  await c.close();
});

test('rate_limited per controller (token bucket of rateLimit msgs/s)', async () => {
  const c = await Controller.connect(srv.ws, TOKENS.limited); // rateLimit: 5
  const r = await c.rpc(Array.from({ length: 20 }, (_, i) => ({ t: 'badge', id: 70 + i, cred: 9000 + i, reader: 'l-in' })));
  const limited = r.filter((x: any) => x.code === 'rate_limited');
  const decided = r.filter((x: any) => x.t === 'decision');
  assert.ok(decided.length >= 5 && decided.length <= 6, `decided ${decided.length}`);
  assert.equal(limited.length, 20 - decided.length);
  assert.equal(r[0].t, 'decision');
  assert.equal(r[19].code, 'rate_limited');
  assert.equal(r[19].id, 89);
  // a rate-limited message changed nothing
  assert.equal((await http(srv.url, 'GET', '/v1/credentials/9019', { token: TOKENS.viewer })).body.known, false);
  // another controller is not affected
  const c1 = await Controller.connect(srv.ws, TOKENS.c1);
  assert.equal((await c1.rpc({ t: 'ping', id: 79 })).t, 'pong');
  await c1.close();
  await c.close();
});

test('resent ids: same reply bytes, nothing applied twice, across reconnects and within a batch', async () => {
  let c = await Controller.connect(srv.ws, TOKENS.c1);
  c.send({ t: 'badge', id: 2n ** 64n - 1n, cred: 7001, reader: 'g-in' });
  const first = await c.nextRaw();
  const d = norm(unpack(first)) as any;
  assert.equal(d.grant, true);
  assert.equal(unpack(first) && (unpack(first) as any).id, 2n ** 64n - 1n, 'a 64-bit id comes back exactly');
  const st1 = (await http(srv.url, 'GET', '/v1/credentials/7001', { token: TOKENS.viewer })).body;
  await c.close();
  c = await Controller.connect(srv.ws, TOKENS.c1);
  // same id, even with a different body: the stored reply, and no second move
  c.send({ t: 'badge', id: 2n ** 64n - 1n, cred: 7001, reader: 'g-in' });
  assert.deepEqual(await c.nextRaw(), first);
  c.send({ t: 'badge', id: 2n ** 64n - 1n, cred: 7001, reader: 'g-out' });
  assert.deepEqual(await c.nextRaw(), first);
  const st2 = (await http(srv.url, 'GET', '/v1/credentials/7001', { token: TOKENS.viewer })).body;
  assert.deepEqual(st2, st1);
  // ids are one space per controller across types: an ack id cannot be reused for a badge
  assert.deepEqual(await c.rpc({ t: 'passage', id: 80, cred: 7002, reader: 'g-in' }), { t: 'ack', id: 80 });
  assert.deepEqual(await c.rpc({ t: 'badge', id: 80, cred: 7002, reader: 'g-in' }), { t: 'ack', id: 80 });
  // a duplicate inside one batch gets the first one's reply
  const b = await c.rpc([{ t: 'badge', id: 81, cred: 7003, reader: 'g-in' }, { t: 'badge', id: 81, cred: 7003, reader: 'g-in' }]);
  assert.deepEqual(b[0], b[1]);
  assert.equal(b[0].grant, true);
  // ids are per controller: c2 may use 81 for its own message
  const c2 = await Controller.connect(srv.ws, TOKENS.c2);
  assert.equal((await c2.rpc({ t: 'badge', id: 81, cred: 7003, reader: 'vip-in' })).t, 'decision');
  await c2.close();
  await c.close();
});

test('replies leave in frame order even when a later frame needs no commit or takes the other path', async () => {
  // c2: c1 used a 64-bit id above, so its ids no longer rise past its mark and never take the fast path
  const c = await Controller.connect(srv.ws, TOKENS.c2);
  const fastTaken = async (): Promise<number> => Number(/apb_fast_path_messages_total (\d+)/.exec((await http(srv.url, 'GET', '/metrics', { token: TOKENS.viewer })).text)![1]);
  const fastBefore = await fastTaken();
  // per round: a fast-path badge, a general-path one (`ts` keeps it off the fast path: a promise of its
  // own), a ping (answered at once, without a commit)
  for (let i = 0; i < 20; i++) {
    c.send({ t: 'badge', id: 3000 + 3 * i, cred: 30000 + i, reader: 'vip-in' });
    c.send({ t: 'badge', id: 3001 + 3 * i, cred: 31000 + i, reader: 'vip-in', ts: Date.now() });
    c.send({ t: 'ping', id: 3002 + 3 * i });
  }
  const ids = [];
  for (let i = 0; i < 60; i++) ids.push((await c.next() as any).id);
  assert.deepEqual(ids, Array.from({ length: 60 }, (_, i) => 3000 + i));
  assert.equal(await fastTaken() - fastBefore, 20, 'the plain badges took the fast path, the others not');
  await c.close();
});

test('a wiegand controller goes through its adapter (raw bits → "<facility>:<card>"), errors keep their id', async () => {
  const h10301 = BUILTIN_FORMATS.find((f) => f.name === 'H10301')!;
  const read = encodeRead(h10301, 90, 324);
  const c = await Controller.connect(srv.ws, TOKENS.wiegand);
  const r = await c.rpc({ t: 'badge', id: 1, reader: 'w-in', raw: read.raw, bits: read.bits });
  assert.deepEqual([r.t, r.grant, r.area], ['decision', true, 'stadium']);
  const st = await http(srv.url, 'GET', '/v1/credentials/s:90%3A324', { token: TOKENS.viewer });
  assert.equal(st.body.location, 'stadium');
  const bad = Uint8Array.from(read.raw);
  bad[0]! ^= 0x40; // flip the second transmitted bit: parity fails
  const e = await c.rpc({ t: 'badge', id: 2, reader: 'w-in', raw: bad, bits: read.bits });
  assert.deepEqual([e.t, e.code, e.id], ['error', 'bad_parity', 2]);
  await c.close();
});

test('a controller that never reads is disconnected at the backpressure bound; others stay prompt', async () => {
  // a raw WebSocket client that sends forever and never reads its socket
  const url = new URL(srv.url);
  const sock = net.connect(Number(url.port), url.hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.write(`GET /v1/controller HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${TOKENS.slow}\r\n\r\n`);
  await new Promise((r) => sock.once('data', r)); // the 101 response
  sock.pause(); // from now on, nothing is read: replies pile up in the kernel, then in uWS
  let closed = false;
  sock.on('close', () => { closed = true; });
  sock.on('error', () => { closed = true; });
  const payload = Buffer.from(pack(Array.from({ length: 1000 }, (_, i) => ({ t: 'ping', id: i })))); // ~12 KiB in, ~35 KiB of replies out
  const frame = wsFrame(payload);
  const rss0 = process.memoryUsage().rss;
  const good = await Controller.connect(srv.ws, TOKENS.c2);
  let maxBuffered = 0;
  let worstRtt = 0;
  for (let i = 0; i < 4000 && !closed; i++) {
    if (!sock.write(frame)) await Promise.race([new Promise((r) => sock.once('drain', r)), sleep(50)]);
    if (i % 100 === 0) {
      const t0 = performance.now();
      assert.equal((await good.rpc({ t: 'ping', id: 1000 + i })).t, 'pong');
      worstRtt = Math.max(worstRtt, performance.now() - t0);
      const m = await http(srv.url, 'GET', '/metrics');
      maxBuffered = Math.max(maxBuffered, Number(/^apb_backpressure_bytes (\d+)/m.exec(m.text)![1]));
    }
  }
  await until(() => closed, 10000, 'the server to drop the slow reader');
  const m = await http(srv.url, 'GET', '/metrics');
  assert.ok(Number(/^apb_backpressure_closes_total (\d+)/m.exec(m.text)![1]) >= 1, 'counted as a backpressure close');
  assert.ok(maxBuffered <= 2 * 1024 * 1024, `buffered for the slow reader stayed bounded (${maxBuffered})`);
  const grown = process.memoryUsage().rss - rss0;
  assert.ok(grown < 150 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  assert.ok(worstRtt < 2000, `the other controller kept getting replies (worst ${worstRtt.toFixed(1)} ms)`);
  assert.equal((await good.rpc({ t: 'ping', id: 99999 })).t, 'pong');
  await good.close();
  sock.destroy();
});

/** A masked binary WebSocket frame (client → server). */
function wsFrame(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x82, 0x80 | len]) : len < 65536 ? Buffer.from([0x82, 0x80 | 126, len >> 8, len & 255]) : (() => { const b = Buffer.alloc(10); b[0] = 0x82; b[1] = 0x80 | 127; b.writeBigUInt64BE(BigInt(len), 2); return b; })();
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}
