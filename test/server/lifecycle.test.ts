/**
 * Durability, storage failure, configuration reload and shutdown: a real
 * LMDB directory across restarts, a store that fails and recovers, PUT
 * /v1/config, and a spawned `apb serve` process driven by SIGHUP/SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, TOKENS, http, siteYaml, start, tempDir, until, unpack, norm } from './util.js';
import { FailingStore } from './failing-store.js';

test('LMDB: state and idempotent replies survive a restart', async () => {
  const tmp = tempDir();
  try {
    let srv = await start({ data: tmp.dir });
    let c = await Controller.connect(srv.ws, TOKENS.c1);
    c.send({ t: 'badge', id: 1, cred: 321, reader: 'g-in' });
    const first = await c.nextRaw();
    assert.equal((norm(unpack(first)) as any).grant, true);
    await c.close();
    await srv.close();

    srv = await start({ data: tmp.dir });
    c = await Controller.connect(srv.ws, TOKENS.c1);
    c.send({ t: 'badge', id: 1, cred: 321, reader: 'g-in' });
    assert.deepEqual(await c.nextRaw(), first, 'the resent id gets the stored reply after the restart');
    assert.equal((await c.rpc({ t: 'badge', id: 2, cred: 321, reader: 'g-in' })).reason, 'reentry', 'the location survived');
    // the store indexes the log by credential shortly after the commit: poll
    const ev = await until(async () => { const r = await http(srv.url, 'GET', '/v1/events?cred=321', { token: TOKENS.viewer }); return r.body.events.length >= 2 ? r : undefined; }, 3000, 'indexed events') as Awaited<ReturnType<typeof http>>;
    assert.deepEqual(ev.body.events.map((e: any) => [e.kind, e.id, e.grant]), [['badge', 2, false], ['badge', 1, true]]);
    await c.close();
    await srv.close();
  } finally {
    tmp.cleanup();
  }
});

test('storage failure: storage_unavailable, unready, rebuilt from the store, ready again by itself', async () => {
  const store = new FailingStore();
  const srv = await start({ store, retryMs: 50 });
  try {
    const c = await Controller.connect(srv.ws, TOKENS.c1);
    assert.equal((await c.rpc({ t: 'badge', id: 1, cred: 1, reader: 'g-in' })).grant, true);
    store.setBroken(true);
    const r = await c.rpc([{ t: 'badge', id: 2, cred: 2, reader: 'g-in' }, { t: 'ping', id: 3 }]);
    assert.deepEqual([r[0].t, r[0].code, r[0].id], ['error', 'storage_unavailable', 2]);
    assert.equal(r[1].t, 'pong');
    const h = await http(srv.url, 'GET', '/healthz');
    assert.equal(h.status, 503);
    assert.equal(h.body.ready, false);
    const r2 = await c.rpc({ t: 'badge', id: 4, cred: 4, reader: 'g-in' });
    assert.equal(r2.code, 'storage_unavailable', 'nothing is decided while unready');
    const act = await http(srv.url, 'POST', '/v1/credentials/1/reset', { token: TOKENS.operator, body: { reason: 'x' } });
    assert.deepEqual([act.status, act.body.code], [503, 'storage_unavailable']);
    assert.match((await http(srv.url, 'GET', '/metrics')).text, /^apb_ready 0$/m);

    store.setBroken(false);
    await until(async () => (await http(srv.url, 'GET', '/healthz')).status === 200, 5000, 'ready again');
    // the engine holds what was persisted: cred 2's unpersisted grant is gone, cred 1's is there
    assert.equal((await http(srv.url, 'GET', '/v1/credentials/2', { token: TOKENS.viewer })).body.known, false);
    assert.equal((await http(srv.url, 'GET', '/v1/credentials/1', { token: TOKENS.viewer })).body.location, 'stadium');
    // id 2 was never decided: it is decided now
    assert.equal((await c.rpc({ t: 'badge', id: 2, cred: 2, reader: 'g-in' })).grant, true);
    assert.ok(Number(/^apb_storage_errors_total (\d+)/m.exec((await http(srv.url, 'GET', '/metrics')).text)![1]) >= 1);
    await c.close();
  } finally {
    await srv.close();
  }
});

test('a resend while the first copy is still committing waits for it: same reply, one event', async () => {
  const store = new FailingStore();
  store.delayMs = 150;
  const srv = await start({ store });
  try {
    const a = await Controller.connect(srv.ws, TOKENS.c1);
    const b = await Controller.connect(srv.ws, TOKENS.c1); // a second socket of the same controller (a reconnect)
    const t0 = performance.now();
    a.send({ t: 'badge', id: 42, cred: 4200, reader: 'g-in' });
    await new Promise((r) => setTimeout(r, 30)); // the first copy is now in flight
    b.send({ t: 'badge', id: 42, cred: 4200, reader: 'g-in' });
    const [ra, rb] = await Promise.all([a.nextRaw(), b.nextRaw()]);
    assert.ok(performance.now() - t0 >= 140, 'replies wait for the commit');
    assert.deepEqual(rb, ra);
    assert.equal((norm(unpack(ra)) as any).grant, true);
    const ev = store.query({ cred: '4200' });
    assert.deepEqual(ev.map((e) => [e.kind, e.id]), [['badge', 42]], 'decided and journaled once');
    await a.close(); await b.close();
  } finally {
    await srv.close();
  }
});

test('PUT /v1/config: validated, swapped atomically, presence kept, journaled, reported', async () => {
  const srv = await start();
  try {
    const c2 = await Controller.connect(srv.ws, TOKENS.c2);
    await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 1, cred: 900, reader: 'g-in' } });
    assert.equal((await c2.rpc({ t: 'badge', id: 1, cred: 900, reader: 'vip-in' })).grant, true);
    await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 2, cred: 901, reader: 'g-in' } });

    // new site: a new area and reader, g-out removed, controller c2 (and its readers) gone
    const next = siteYaml()
      .replace('  - { id: g-out, from: stadium, to: outside, controller: c1 }\n', '  - { id: bar-in, from: stadium, to: bar, controller: c1 }\n')
      .replace('  - id: concourse\n', '  - id: bar\n    parent: stadium\n  - id: concourse\n')
      .replace(/  - \{ id: vip-(in|out),[^\n]*\n/g, '')
      .replace(`  - { id: c2, token: ${TOKENS.c2}, rateLimit: 1000000 }\n`, '');
    const r = await http(srv.url, 'PUT', '/v1/config', { token: TOKENS.admin, rawBody: next, contentType: 'application/yaml' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.areasAdded, ['bar']);
    assert.deepEqual(r.body.readersAdded, ['bar-in']);
    assert.deepEqual(r.body.readersRemoved.sort(), ['g-out', 'vip-in', 'vip-out']);
    assert.deepEqual(r.body.controllersRemoved, ['c2']);
    await c2.closed; // the removed controller's socket is closed
    // presence kept for areas that still exist
    assert.equal((await http(srv.url, 'GET', '/v1/credentials/900', { token: TOKENS.viewer })).body.location, 'vip');
    assert.equal((await http(srv.url, 'GET', '/v1/credentials/901', { token: TOKENS.viewer })).body.location, 'stadium');
    const d = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 3, cred: 901, reader: 'g-out' } });
    assert.equal(d.body.reason, 'unknown_reader', 'a removed reader is unknown');
    const b = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 4, cred: 901, reader: 'bar-in' } });
    assert.deepEqual([b.body.grant, b.body.area], [true, 'bar']);
    await assert.rejects(Controller.connect(srv.ws, TOKENS.c2), (e: { status?: number }) => e.status === 401);
    const ev = await http(srv.url, 'GET', '/v1/events?limit=100', { token: TOKENS.viewer });
    const cfg = ev.body.events.find((e: any) => e.kind === 'config');
    assert.ok(cfg, 'the swap is in the event log');
    assert.equal(cfg.who, 'ada');
    // an invalid file changes nothing
    const bad = await http(srv.url, 'PUT', '/v1/config', { token: TOKENS.admin, rawBody: next.replace('to: bar,', 'to: nowhere,') });
    assert.deepEqual([bad.status, bad.body.code], [400, 'invalid_config']);
    assert.equal(bad.body.errors, undefined, 'no top-level copy of the errors');
    assert.ok(bad.body.detail.errors.some((e: any) => /nowhere/.test(e.message)), JSON.stringify(bad.body.detail));
    const areas = (await http(srv.url, 'GET', '/v1/areas', { token: TOKENS.viewer })).body.map((a: any) => a.id);
    assert.ok(areas.includes('bar'));
  } finally {
    await srv.close();
  }
});

// ── the real command in a child process ──

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function serve(config: string, data: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string; out: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', config, '--data', data, '--port', '0', '--log-level', 'info', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('serve did not start: ' + out)); }, 15000);
    child.stdout!.on('data', () => {
      const m = /apb serving (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve({ child, url: m[1]!, out: () => out, exit }); }
    });
    void exit.then((code) => { clearTimeout(t); reject(new Error(`serve exited ${code}: ${out}`)); });
  });
}

test('apb serve: SIGHUP reloads the file keeping presence; a bad file is refused; SIGTERM drains in-flight frames and exits 0', async () => {
  const tmp = tempDir();
  const children: ChildProcess[] = []; // killed however the test ends: a failed assertion must not leave a server holding the test file open
  const config = join(tmp.dir, 'site.yaml');
  const data = join(tmp.dir, 'data');
  writeFileSync(config, siteYaml());
  try {
    const p = await serve(config, data);
    children.push(p.child);
    const ws = p.url.replace('http', 'ws');
    await http(p.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 1, cred: 77, reader: 'g-in' } });

    writeFileSync(config, siteYaml().replace('  - id: concourse\n', '  - id: bar\n    parent: stadium\n  - id: concourse\n'));
    p.child.kill('SIGHUP');
    await until(async () => (await http(p.url, 'GET', '/v1/areas', { token: TOKENS.viewer })).body.some((a: any) => a.id === 'bar'), 5000, 'reload');
    assert.equal((await http(p.url, 'GET', '/v1/credentials/77', { token: TOKENS.viewer })).body.location, 'stadium');

    writeFileSync(config, 'site: broken\nareas: 5\n');
    p.child.kill('SIGHUP');
    await until(() => /reload refused/.test(p.out()), 5000, 'the refusal in the log');
    assert.equal((await http(p.url, 'GET', '/healthz')).status, 200);
    assert.ok((await http(p.url, 'GET', '/v1/areas', { token: TOKENS.viewer })).body.some((a: any) => a.id === 'bar'));

    // in-flight frames at SIGTERM: every frame gets its reply before the socket closes
    const c = await Controller.connect(ws, TOKENS.c1);
    const N = 40;
    const replies: any[] = [];
    c.ws.on('message', (d: Buffer) => { replies.push(norm(unpack(d))); });
    for (let i = 0; i < N; i++) c.send(Array.from({ length: 10 }, (_, j) => ({ t: 'badge', id: 1000 + i * 10 + j, cred: 5000 + i * 10 + j, reader: 'g-in' })));
    await until(() => replies.length >= 1, 5000, 'first reply');
    p.child.kill('SIGTERM');
    const code = await p.exit;
    await c.closed;
    assert.equal(code, 0, p.out());
    assert.equal(replies.length, N, 'one reply per frame, none lost');
    const decided = replies.flat().filter((r) => r.t === 'decision');
    assert.ok(replies.flat().every((r) => r.t === 'decision' || r.code === 'not_ready'), JSON.stringify(replies.flat().find((r) => r.t !== 'decision')));
    assert.ok(decided.length >= 10);

    // the broken file refuses to start; with a good one, everything acknowledged before the shutdown is there
    await assert.rejects(serve(config, data), /invalid_config/);
    writeFileSync(config, siteYaml());
    const q = await serve(config, data);
    children.push(q.child);
    const c2 = await Controller.connect(q.url.replace('http', 'ws'), TOKENS.c1);
    const again = await c2.rpc(decided.map((d) => ({ t: 'badge', id: d.id, cred: 1, reader: 'g-out' })));
    // the server's log goes with a failure: an internal reply names its cause there (seen once under load: 'Offset is outside the bounds of the DataView')
    assert.deepEqual(again, decided, `every decided id answers the same after the restart; the restarted server's log:\n${q.out().slice(-4000)}`);
    await c2.close();
    q.child.kill('SIGINT');
    assert.equal(await q.exit, 0);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    tmp.cleanup();
  }
});

test('apb serve refuses the slow JS fallback of uWebSockets.js unless --allow-js-fallback', async () => {
  const tmp = tempDir();
  const config = join(tmp.dir, 'site.yaml');
  writeFileSync(config, siteYaml());
  try {
    // APB_FORCE_UWS_FALLBACK=1 makes loading the native binary fail (test hook in src/server/uws.ts)
    await assert.rejects(serve(config, ':memory:', [], { APB_FORCE_UWS_FALLBACK: '1' }), /exited 1: .*native_unavailable/s);
    const p = await serve(config, ':memory:', ['--allow-js-fallback'], { APB_FORCE_UWS_FALLBACK: '1' });
    assert.match(p.out(), /pure-JS fallback/);
    const h = await http(p.url, 'GET', '/healthz');
    assert.deepEqual([h.status, h.body.native], [200, false]);
    assert.match((await http(p.url, 'GET', '/metrics')).text, /^apb_uws_native 0$/m);
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0);
  } finally {
    tmp.cleanup();
  }
});
