/**
 * Hardening of the HTTP layer (issue 10): tokens checked before bodies are
 * read, failed-token throttling, stream sockets revalidated on reload,
 * webhook redirects and log redaction, dashboard security headers, HEAD and
 * favicon, bounds on every query and path parameter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createServer, type IncomingMessage } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Controller, TOKENS, http, siteYaml, start, tempDir, until } from './util.js';
import { AuthThrottle, AUTH_FAIL_THRESHOLD, keyOf } from '../../src/server/auth-throttle.js';
import { Webhooks, redactUrl } from '../../src/server/webhooks.js';
import { Metrics } from '../../src/server/metrics.js';
import { MAX_ID_BYTES, MAX_REASON_BYTES, MAX_STREAMS_PER_USER } from '../../src/limits.js';
import type { Logger } from '../../src/server/log.js';
import { ApbError } from '../../src/errors.js';
import { decodeStrict } from './fuzz/mp.js';

/** Sends only the request head (declaring a 4 MiB body) and resolves with the status line of the answer. */
function headOnly(port: number, method: string, path: string, token?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer to ${method} ${path} before its body was sent`)); }, 5000);
    s.on('data', (d) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n');
      if (end >= 0) { clearTimeout(timer); s.destroy(); resolve(got.slice(0, end)); }
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    const auth = token ? `authorization: Bearer ${token}\r\n` : '';
    s.write(`${method} ${path} HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ncontent-length: ${4 << 20}\r\n\r\n`);
  });
}

function openStream(base: string, q: string): Promise<WebSocket> {
  const ws = new WebSocket(`${base}/v1/stream?${q}`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_r, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

/** The close code of a socket, or a rejection when it stays open (a missing close is a failure, not a hang). */
const closeCode = (ws: WebSocket, ms = 5000): Promise<number> => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('the socket stayed open')), ms);
  ws.once('close', (code) => { clearTimeout(t); resolve(code); });
});

test('item 11: a wrong, missing or too weak token is answered before the body is read', async () => {
  const srv = await start({ authThrottle: { threshold: 1000 } });
  try {
    // each request declares 4 MiB and sends none of it: the answer can only come from the headers
    assert.match(await headOnly(srv.port, 'PUT', '/v1/config', 'wrong-token-0123456789'), /^HTTP\/1.1 401/);
    assert.match(await headOnly(srv.port, 'PUT', '/v1/config'), /^HTTP\/1.1 401/);
    assert.match(await headOnly(srv.port, 'PUT', '/v1/config', TOKENS.operator), /^HTTP\/1.1 403/);
    assert.match(await headOnly(srv.port, 'POST', '/v1/decide', 'wrong-token-0123456789'), /^HTTP\/1.1 401/);
    assert.match(await headOnly(srv.port, 'POST', '/v1/decide', TOKENS.viewer), /^HTTP\/1.1 403/);
    assert.match(await headOnly(srv.port, 'POST', '/v1/credentials/7/forgive', TOKENS.viewer), /^HTTP\/1.1 403/);
    assert.match(await headOnly(srv.port, 'POST', '/v1/areas/vip/reset'), /^HTTP\/1.1 401/);
    // the connection stays usable and right tokens still work with a body
    const ok = await http(srv.url, 'POST', '/v1/credentials/7/forgive', { token: TOKENS.operator, body: { reason: 'after the refusals' } });
    assert.equal(ok.status, 200);
  } finally { await srv.close(); }
});

test('item 17: repeated wrong tokens from one address are answered 429 rate_limited everywhere, right tokens included', async () => {
  const srv = await start({ authThrottle: { threshold: 5 } });
  try {
    for (let i = 0; i < 10; i++) assert.equal((await http(srv.url, 'GET', '/v1/whoami')).status, 401, 'a missing token is not a guess');
    for (let i = 0; i < 3; i++) assert.equal((await http(srv.url, 'GET', '/v1/whoami', { token: TOKENS.c1 })).status, 403, 'a low role is not a guess');
    for (let i = 0; i < 5; i++) assert.equal((await http(srv.url, 'GET', '/v1/areas', { token: `guess-${i}` })).status, 401);
    const r = await http(srv.url, 'GET', '/v1/whoami', { token: TOKENS.viewer });
    assert.equal(r.status, 429);
    assert.equal(r.body.code, 'rate_limited');
    const f = await fetch(srv.url + '/v1/whoami', { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    assert.ok(Number(f.headers.get('retry-after')) >= 1);
    await f.arrayBuffer();
    assert.equal((await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 1, cred: 1, reader: 'g-in' } })).status, 429);
    assert.match(await headOnly(srv.port, 'PUT', '/v1/config', TOKENS.admin), /^HTTP\/1.1 429/);
    await assert.rejects(openStream(srv.ws, `token=${TOKENS.viewer}`), (e: { status?: number }) => e.status === 429);
    await assert.rejects(Controller.connect(srv.ws, TOKENS.c1), (e: { status?: number }) => e.status === 429);
    // what needs no token is not throttled
    assert.equal((await http(srv.url, 'GET', '/healthz')).status, 200);
  } finally { await srv.close(); }
});

test('item 17: wrong tokens on /v1/stream and /v1/controller count too; the default threshold', async () => {
  const srv = await start();
  try {
    let n = 0;
    for (; n < AUTH_FAIL_THRESHOLD / 2; n++) await assert.rejects(openStream(srv.ws, `token=guess-${n}`), (e: { status?: number }) => e.status === 401);
    for (; n < AUTH_FAIL_THRESHOLD; n++) await assert.rejects(Controller.connect(srv.ws, `guess-${n}`), (e: { status?: number }) => e.status === 401);
    const r = await http(srv.url, 'GET', '/v1/whoami', { token: TOKENS.viewer });
    assert.equal(r.status, 429);
    assert.equal(r.body.code, 'rate_limited');
  } finally { await srv.close(); }
});

test('item 17: the throttle table: windows expire, memory is bounded, IPv6 by /64', () => {
  let now = 1_000_000;
  const t = new AuthThrottle({ threshold: 2, windowMs: 1000, maxAddresses: 3 }, () => now);
  const attempt = (addr: string, err?: Error): string => {
    try { t.guard(() => addr, 'guess', () => { if (err) throw err; }); return 'passed'; } catch (e) { return (e as { code?: string }).code ?? 'other'; }
  };
  const wrong = (addr: string): string => attempt(addr, new ApbError('unauthorized', 'wrong bearer token'));
  assert.equal(attempt('1.1.1.1', new ApbError('forbidden', 'role too low')), 'forbidden');
  assert.equal(t.size, 0, 'only unauthorized counts');
  assert.equal(wrong('1.1.1.1'), 'unauthorized');
  assert.equal(wrong('1.1.1.1'), 'unauthorized');
  assert.equal(wrong('1.1.1.1'), 'rate_limited');
  assert.equal(attempt('1.1.1.1'), 'rate_limited', 'a right token too, while throttled');
  assert.equal(attempt('2.2.2.2'), 'passed', 'other addresses are not affected');
  now += 1000;
  assert.equal(attempt('1.1.1.1'), 'passed', 'the window ended');
  for (let i = 0; i < 50; i++) wrong(`10.0.0.${i}`);
  assert.ok(t.size <= 3, `at most maxAddresses entries (${t.size})`);
  assert.equal(keyOf('2001:db8:1:2:aaaa::1'), keyOf('2001:0db8:0001:0002:ffff:ffff:ffff:fffe'));
  assert.notEqual(keyOf('2001:db8:1:2::1'), keyOf('2001:db8:1:3::1'));
  assert.equal(keyOf('0000:0000:0000:0000:0000:ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(keyOf('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(keyOf('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  assert.equal(keyOf('::ffff:a00:2'), '10.0.0.2');
  assert.equal(keyOf('127.0.0.1'), '127.0.0.1');
});

test('item 9: stream sockets of a removed user or a changed token are closed (1008) on PUT /v1/config and on reload', async () => {
  const dir = tempDir();
  const file = join(dir.dir, 'site.yaml');
  writeFileSync(file, siteYaml());
  const srv = await start({ configPath: file, configText: undefined });
  try {
    const vera = await openStream(srv.ws, `token=${TOKENS.viewer}`);
    const otto = await openStream(srv.ws, `token=${TOKENS.operator}`);
    const ada = await openStream(srv.ws, `token=${TOKENS.admin}`);
    const veraClosed = closeCode(vera);
    // vera's token changes; otto and ada stay
    const rotated = siteYaml().replace(`token: ${TOKENS.viewer}`, 'token: tok-viewer-rotated-0123456789');
    const put = await http(srv.url, 'PUT', '/v1/config', { token: TOKENS.admin, rawBody: rotated, contentType: 'application/yaml' });
    assert.equal(put.status, 200, put.text);
    assert.equal(await veraClosed, 1008);
    assert.equal(otto.readyState, WebSocket.OPEN);
    // otto is removed from the file, then SIGHUP-style reload
    const ottoClosed = closeCode(otto);
    writeFileSync(file, rotated.replace(/^\s*- \{ name: otto.*$/m, ''));
    await srv.reload('test');
    assert.equal(await ottoClosed, 1008);
    await until(() => ada.readyState === WebSocket.OPEN, 1000, 'ada still connected');
    ada.close();
  } finally { await srv.close(); dir.cleanup(); }
});

test('item 16: webhooks do not follow redirects, log URLs without secrets, and send violations only by default', async () => {
  const hits: { path: string; kind: string; auth: string }[] = [];
  const recv = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      hits.push({ path: req.url ?? '', kind: body ? JSON.parse(body).kind : '', auth: req.headers.authorization ?? '' });
      if (req.url?.startsWith('/hook')) { res.writeHead(307, { location: '/elsewhere' }); res.end(); return; }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => recv.listen(0, '127.0.0.1', r));
  const port = (recv.address() as { port: number }).port;
  const warnings: unknown[] = [];
  const log = { warn: (o: unknown) => warnings.push(o), info() {}, debug() {}, error() {} } as unknown as Logger;
  const metrics = new Metrics();
  const wh = new Webhooks(metrics, log, { maxAttempts: 1, baseDelayMs: 1 });
  try {
    const url = `http://user:pa55word@127.0.0.1:${port}/hook?key=s3cret#frag`;
    wh.setTargets([{ url }, { url: `http://127.0.0.1:${port}/all`, kinds: ['violation', 'action'] }]);
    assert.equal(wh.wants('violation'), true);
    assert.equal(wh.wants('decision'), false, 'no target asked for decisions: the default is violations only');
    wh.enqueue({ kind: 'decision', at: 1 });
    wh.enqueue({ kind: 'action', at: 2 });
    wh.enqueue({ kind: 'violation', at: 3 });
    await until(() => metrics.webhookFailed >= 1 && metrics.webhookSent >= 2 && warnings.length >= 1, 5000, 'deliveries');
    const hooked = hits.filter((h) => h.path.startsWith('/hook'));
    assert.deepEqual(hooked.map((h) => h.kind), ['violation'], 'the default target got the violation only');
    assert.equal(hooked[0]!.path, '/hook?key=s3cret', 'the query is part of the request, only not of the log');
    assert.equal(hooked[0]!.auth, 'Basic ' + Buffer.from('user:pa55word').toString('base64'), 'userinfo becomes basic auth');
    assert.equal(hits.filter((h) => h.path === '/elsewhere').length, 0, 'the redirect was not followed');
    const logged = JSON.stringify(warnings);
    assert.ok(!logged.includes('pa55word') && !logged.includes('s3cret') && !logged.includes('user:'), logged);
    assert.ok(logged.includes(`127.0.0.1:${port}/hook`), logged);
    assert.equal(redactUrl(url), `http://127.0.0.1:${port}/hook`);
  } finally { wh.close(); await new Promise((r) => recv.close(r)); }
});

test('item 18: dashboard security headers, HEAD /healthz, /favicon.ico', async () => {
  const srv = await start();
  try {
    for (const p of ['/', '/index.html', '/app.js', '/style.css']) {
      const r = await fetch(srv.url + p);
      await r.arrayBuffer();
      assert.equal(r.status, 200, p);
      const csp = r.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, p);
      assert.match(csp, /script-src 'self'/, p);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, p);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', p);
    }
    const get = await fetch(srv.url + '/healthz');
    const getBody = Buffer.from(await get.arrayBuffer());
    const head = await fetch(srv.url + '/healthz', { method: 'HEAD' });
    assert.equal(head.status, get.status);
    assert.equal(head.headers.get('content-type'), 'application/json');
    assert.equal(Number(head.headers.get('content-length')), getBody.length);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const fav = await fetch(srv.url + '/favicon.ico');
    await fav.arrayBuffer();
    assert.ok(fav.status === 204 || fav.status === 200, `favicon: ${fav.status}`);
    const api = await fetch(srv.url + '/v1/whoami', { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    await api.arrayBuffer();
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
  } finally { await srv.close(); }
});

test('item 18 (same class): answers are written as fast as the client reads them; pipelining clients are closed', async () => {
  // uWS queued every answer of a connection whatever the client read: one anonymous connection pipelining
  // GET /metrics without reading grew the server by ~140 MiB/s. Memory is measured in the report, not here;
  // this checks the two behaviours that bound it.
  const dir = tempDir('apb-dash-');
  const big = Buffer.alloc(8 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  writeFileSync(join(dir.dir, 'big.png'), big);
  writeFileSync(join(dir.dir, 'index.html'), '<!doctype html><title>t</title>');
  const srv = await start({ dashboardDir: dir.dir });
  try {
    // a slow reader still gets every byte in order (paced writing resumes when it reads)
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(srv.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      s.pause();
      s.write('GET /big.png HTTP/1.1\r\nhost: x\r\n\r\n');
      setTimeout(() => s.resume(), 200);
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        const h = all.indexOf('\r\n\r\n');
        if (h > 0 && all.length >= h + 4 + big.length) { s.destroy(); resolve(all); }
      });
      s.on('error', reject);
      setTimeout(() => { s.destroy(); reject(new Error('incomplete response')); }, 20000);
    });
    const h = raw.indexOf('\r\n\r\n');
    assert.match(raw.subarray(0, h).toString('latin1'), /^HTTP\/1.1 200[\s\S]*content-length: 8388608/i);
    assert.ok(raw.subarray(h + 4).equals(big), 'byte-exact');
    // a client sending its next requests before reading the answers is disconnected, not queued for
    const closed = await new Promise<boolean>((resolve) => {
      const s = connect(srv.port, '127.0.0.1');
      s.on('data', () => undefined);
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
      s.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n'.repeat(500));
      setTimeout(() => { s.destroy(); resolve(false); }, 10000);
    });
    assert.equal(closed, true);
    assert.equal((await http(srv.url, 'GET', '/healthz')).status, 200);
    assert.equal((await http(srv.url, 'GET', '/index.html')).status, 200);
  } finally { await srv.close(); dir.cleanup(); }
});

test('items 1 and 19: every query and path parameter is bounded; bad_message names it', async () => {
  const dir = tempDir();
  const srv = await start({ data: dir.dir });
  try {
    const v = { token: TOKENS.viewer };
    const long = 'r'.repeat(3000);
    const expect400 = async (path: string, field: string, o: Parameters<typeof http>[3] = v, method = 'GET'): Promise<void> => {
      const r = await http(srv.url, method, path, o);
      assert.equal(r.status, 400, `${path.slice(0, 80)}: ${r.text.slice(0, 200)}`);
      assert.equal(r.body.code, 'bad_message');
      assert.ok(r.body.message.startsWith(field + ':'), r.body.message);
      assert.ok(r.text.length < 500, 'the refused value is not echoed in full');
    };
    await expect400(`/v1/events?reader=${long}`, 'reader');
    await expect400(`/v1/events?reader=${'r'.repeat(MAX_ID_BYTES + 1)}`, 'reader');
    assert.equal((await http(srv.url, 'GET', `/v1/events?reader=${'r'.repeat(MAX_ID_BYTES)}`, v)).status, 200);
    await expect400(`/v1/events?cred=s:${long}`, 'cred');
    await expect400(`/v1/events?cred=${'9'.repeat(3000)}`, 'cred');
    await expect400(`/v1/events?since=${'9'.repeat(400)}`, 'since');
    await expect400(`/v1/events?limit=${'9'.repeat(400)}`, 'limit');
    await expect400(`/v1/credentials/s:${long}`, 'cred');
    const op = (body: unknown): Parameters<typeof http>[3] => ({ token: TOKENS.operator, body });
    await expect400(`/v1/areas/${'a'.repeat(3000)}/reset`, 'area', op({ reason: 'x' }), 'POST');
    await expect400('/v1/credentials/7/forgive', 'reason', op({ reason: 'x'.repeat(MAX_REASON_BYTES + 1) }), 'POST');
    assert.equal((await http(srv.url, 'POST', '/v1/credentials/7/forgive', op({ reason: 'é'.repeat(MAX_REASON_BYTES / 2) }))).status, 200);
    await expect400('/v1/credentials/7/forgive', 'reason', { token: TOKENS.operator, rawBody: '{"reason":"\\ud800x"}' }, 'POST');
    await expect400('/v1/credentials/7/location', 'area', op({ reason: 'x', area: 'a'.repeat(3000) }), 'POST');
    // an action name that is a property of every object is still an unknown action
    const proto = await http(srv.url, 'POST', '/v1/credentials/7/constructor', op({ reason: 'x' }));
    assert.equal(proto.status, 404, proto.text);
    assert.equal(proto.body.code, 'not_found');
    // the server is still up and the store still answers
    assert.equal((await http(srv.url, 'GET', '/v1/events?limit=5', v)).status, 200);
  } finally { await srv.close(); dir.cleanup(); }
});

test('same class: one user holds at most MAX_STREAMS_PER_USER live streams; a closed one frees its place', async () => {
  const srv = await start({ authThrottle: { threshold: 1000 } });
  const open: WebSocket[] = [];
  try {
    for (let i = 0; i < MAX_STREAMS_PER_USER; i++) open.push(await openStream(srv.ws, `token=${TOKENS.viewer}&kinds=stats`));
    await assert.rejects(openStream(srv.ws, `token=${TOKENS.viewer}&kinds=stats`), (e: { status?: number }) => e.status === 429);
    // another user is not affected
    open.push(await openStream(srv.ws, `token=${TOKENS.operator}&kinds=stats`));
    const first = open.shift()!;
    first.close();
    await new Promise((r) => first.once('close', r));
    await until(async () => { try { open.push(await openStream(srv.ws, `token=${TOKENS.viewer}&kinds=stats`)); return true; } catch { return false; } }, 5000);
  } finally {
    for (const ws of open) ws.terminate();
    await srv.close();
  }
});

test('a JSON string with a lone surrogate is kept as U+FFFD: events read back as valid UTF-8, before and after a restart', async () => {
  const t = tempDir();
  /** the rejected record of the bad message, from GET /v1/events as MessagePack, its bytes checked as UTF-8 */
  const rejected = async (base: string): Promise<Record<string, unknown>> => {
    const r = await http(base, 'GET', '/v1/events?limit=10', { token: TOKENS.viewer, msgpack: true });
    assert.equal(r.status, 200);
    // a MessagePack str holding a lone surrogate would be WTF-8 (ED A0 80): every str must be UTF-8
    assert.deepEqual(decodeStrict(r.raw).problems, [], 'plain MessagePack, every string UTF-8');
    const evs = (r.body as { events: Record<string, unknown>[] }).events;
    const rec = evs.find((e) => e.kind === 'rejected');
    assert.ok(rec, `a rejected record among ${JSON.stringify(evs)}`);
    return rec;
  };
  try {
    let srv = await start({ data: t.dir });
    try {
      // "\ud800" is a JSON escape: JSON.parse makes it a lone surrogate
      const d = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, rawBody: '{"t":"badge","id":1,"cred":1,"reader":"gate-\\ud800"}' });
      assert.equal(d.status, 400);
      assert.equal((await rejected(srv.url)).reader, 'gate-\ufffd', 'at once (the record may still be only in the write-ahead log)');
    } finally { await srv.close(); }
    srv = await start({ data: t.dir });
    try {
      assert.equal((await rejected(srv.url)).reader, 'gate-\ufffd', 'after a restart (read from LMDB)');
    } finally { await srv.close(); }
  } finally { t.cleanup(); }
});
