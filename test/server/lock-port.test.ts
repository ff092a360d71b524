/**
 * Issue 10 items 3 and 4, with real `apb serve` processes: a second server
 * on a data directory another one holds is refused with data_locked naming
 * the holder's pid (and the lock dies with a SIGKILLed holder); a second
 * server on a port another one holds is refused with address_in_use; the
 * read-only tools keep working beside a running server.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmdbStore } from '../../src/store/lmdb-store.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const CONFIG = join(ROOT, 'src', 'demo', 'stadium.yaml');
const CTRL_TOKEN = 'demo-gate-north-token';
const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

interface Proc { child: ChildProcess; port: number; out: () => string; err: () => string; exited: Promise<number | null> }

function spawnApb(args: string[]): Omit<Proc, 'port'> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, APB_LOG_LEVEL: 'warn' } });
  children.push(child);
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function serve(data: string, port?: number): Promise<Proc> {
  const p = port ?? await freePort();
  return { ...spawnApb(['serve', '--config', CONFIG, '--data', data, '--port', String(p), '--host', '127.0.0.1']), port: p };
}

async function ready(s: Proc): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (s.child.exitCode !== null) throw new Error(`server exited: ${s.err()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/healthz`);
      if (r.ok && ((await r.json()) as { ready: boolean }).ready) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`server did not become ready: ${s.err()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function decide(port: number, id: number, cred: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/decide`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CTRL_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ t: 'badge', id, cred, reader: 'gate-north-in' }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** The exit code of a server that must refuse to start; fails the test if it says it is serving instead
 *  (stdout, not /healthz: on a shared port the first server would answer). */
async function refused(s: Proc): Promise<number | null> {
  const serving = new Promise<'serving'>((resolve) => {
    const look = (): void => { if (/serving/.test(s.out())) resolve('serving'); };
    s.child.stdout!.on('data', look);
  });
  const r = await Promise.race([s.exited.then((code) => ({ code })), serving]);
  if (r === 'serving') { s.child.kill('SIGKILL'); await s.exited; assert.fail(`the second server started: ${s.out()}`); }
  return r.code;
}

async function stop(s: Proc): Promise<void> {
  s.child.kill('SIGTERM');
  await s.exited;
}

describe('one server per data directory and per port (issue 10 items 3, 4)', () => {
  it('a second server on a held data directory is refused (data_locked, holder pid); read-only tools work beside it; SIGKILL frees the lock', async () => {
    const data = join(mkdtempSync(join(tmpdir(), 'apb-lock-')), 'data');
    dirs.push(dirname(data));
    const a = await serve(data);
    await ready(a);
    assert.equal((await decide(a.port, 1, 4242)).status, 200);

    const b = await serve(data);
    const code = await refused(b);
    assert.notEqual(code, 0, 'the second server must not start');
    assert.match(b.err(), /data_locked/);
    assert.match(b.err(), new RegExp(`pid ${a.child.pid}\\b`), b.err());
    assert.doesNotMatch(b.out(), /serving/);

    // read-only beside the running server: `apb events` and the store's read-only mode
    const ev = spawnApb(['events', '--data', data]);
    assert.equal(await ev.exited, 0, ev.err());
    assert.match(ev.out(), /4242/);
    const ro = new LmdbStore(data, { readOnly: true, retention: { intervalMs: 0 } });
    assert.ok([...ro.since(0)].some((e) => e.cred === '4242'));
    await ro.close();

    // a crashed holder leaves no lock behind
    a.child.kill('SIGKILL');
    await a.exited;
    const c = await serve(data);
    await ready(c);
    assert.equal((await decide(c.port, 2, 4243)).status, 200);
    await stop(c);
  });

  it('a second server on a port another server holds is refused (address_in_use, host:port)', async () => {
    const base = mkdtempSync(join(tmpdir(), 'apb-port-'));
    dirs.push(base);
    const a = await serve(join(base, 'a'));
    await ready(a);
    const b = await serve(join(base, 'b'), a.port);
    const code = await refused(b);
    assert.notEqual(code, 0, 'the second server must not start');
    assert.match(b.err(), /address_in_use/);
    assert.match(b.err(), new RegExp(`127\\.0\\.0\\.1:${a.port}\\b`));
    assert.doesNotMatch(b.out(), /serving/);
    // the first server still answers every request
    for (let i = 0; i < 20; i++) assert.equal((await decide(a.port, 10 + i, 5000 + i)).status, 200);
    await stop(a);
  });

  it('a restart takes the port at once, with the previous process\'s connections still in TIME_WAIT', async () => {
    const base = mkdtempSync(join(tmpdir(), 'apb-restart-'));
    dirs.push(base);
    const a = await serve(join(base, 'data'));
    await ready(a);
    // connections the server closes first (shutdown) leave TIME_WAIT entries on its port
    const sockets = await Promise.all(Array.from({ length: 4 }, () => new Promise<import('node:net').Socket>((resolve, reject) => {
      const c = connect(a.port, '127.0.0.1', () => { c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'); resolve(c); });
      c.on('error', reject);
    })));
    for (const c of sockets) c.on('error', () => undefined);
    await stop(a);
    const b = await serve(join(base, 'data'), a.port);
    await ready(b);
    assert.equal((await decide(b.port, 1, 6001)).status, 200);
    for (const c of sockets) c.destroy();
    await stop(b);
  });
});
