/**
 * `apb simulate` survives server restarts: a real `apb serve` child on a
 * real LMDB directory is killed (SIGKILL: frames committed but never
 * answered) and later stopped (SIGTERM: frames answered not_ready while it
 * drains) in the middle of a run, and started again on the same port and
 * directory each time. The run reconnects, sends its unanswered frames again
 * with their ids, and ends with exit 0 and the exact check; the journal then
 * holds every event exactly once (resends were answered, not decided again).
 *
 * The run talks to a TCP relay on a fixed port that forwards each new
 * connection to the server of the moment: a server started again on its old
 * port right after a SIGKILL with controllers connected is refused
 * (address_in_use: it listens without SO_REUSEPORT and the old connections'
 * sockets still hold the port), so each server takes a port of its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAIN_JS } from '../../bench/proc.js';
import { siteYaml, stadiumSite } from '../../src/sim/sites.js';

const EVENTS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }
function run(args: string[]): Proc {
  const child = spawn(process.execPath, [MAIN_JS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d; });
  child.stderr!.on('data', (d: Buffer) => { err = (err + d).slice(-20_000); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function serve(cfg: string, data: string): Promise<Proc & { port: number }> {
  const p = run(['serve', '--config', cfg, '--data', data, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn']);
  const started = await Promise.race([
    (async () => { for (let i = 0; i < 600 && !/apb serving/.test(p.out()); i++) await sleep(25); return /apb serving http:\/\/[\d.]+:(\d+)/.exec(p.out()); })(),
    p.exited.then(() => null),
  ]);
  if (!started) throw new Error(`apb serve did not start:\n${p.out()}\n${p.err()}`);
  return Object.assign(p, { port: Number(started[1]) });
}

/** a TCP relay on a port of its own: each new connection goes to `target()`; either side closing closes both */
async function relay(target: () => number): Promise<{ server: Server; port: number }> {
  const server = createServer((client: Socket) => {
    const up = connect(target(), '127.0.0.1');
    client.pipe(up); up.pipe(client);
    const end = (): void => { client.destroy(); up.destroy(); };
    for (const s of [client, up]) { s.on('error', end); s.on('close', end); }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

test('simulate reconnects through a SIGKILL and a SIGTERM restart of the server and still checks exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-sim-restart-'));
  const cfg = join(dir, 'site.yaml'), data = join(dir, 'data');
  writeFileSync(cfg, siteYaml(stadiumSite()));
  let srv = await serve(cfg, data);
  const { server: relayServer, port } = await relay(() => srv.port);
  const sim = run(['simulate', '--scenario', 'stadium', '--url', `ws://127.0.0.1:${port}`, '--limit', String(EVENTS), '--seed', '7', '--rate', '2000']);
  const token = (stadiumSite() as { users?: { token: string }[] }).users?.[0]?.token;
  assert.ok(token, 'the scenario site has a user');
  /** the newest seq in the server's journal (0 while empty) */
  const newest = async (): Promise<number> => {
    const r = await fetch(`http://127.0.0.1:${srv.port}/v1/events?limit=1`, { headers: { authorization: `Bearer ${token}` } });
    return ((await r.json()) as { events: { seq: number }[] }).events[0]?.seq ?? 0;
  };
  /** waits until the run has had `n` more records decided (it is connected and sending) */
  const progress = async (n: number, what: string): Promise<void> => {
    const from = await newest();
    for (let i = 0; i < 1200 && (await newest()) < from + n; i++) await sleep(25);
    assert.ok((await newest()) >= from + n, `${what}\nstdout:\n${sim.out()}\nstderr:\n${sim.err()}`);
    assert.equal(sim.child.exitCode, null, `the run is still going: ${what}\nstdout:\n${sim.out()}\nstderr:\n${sim.err()}`);
  };
  try {
    await progress(1000, 'the run started');
    srv.child.kill('SIGKILL');
    await srv.exited;
    srv = await serve(cfg, data);
    await progress(1500, 'the run goes on after the SIGKILL restart');
    srv.child.kill('SIGTERM');
    assert.equal(await srv.exited, 0);
    srv = await serve(cfg, data);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([sim.exited, new Promise((r) => { timer = setTimeout(() => r('timeout'), 90_000); })]);
    clearTimeout(timer);
    if (process.env.APB_TEST_VERBOSE) process.stderr.write(sim.out() + sim.err());
    assert.equal(code, 0, `simulate exit ${code}\nstdout:\n${sim.out()}\nstderr:\n${sim.err()}`);
    const out = sim.out();
    assert.match(out, new RegExp(`^sent\\s+${EVENTS} events`, 'm'));
    assert.match(out, /^check\s+violations found == violations expected, badge by badge$/m);
    assert.doesNotMatch(out, /^errors/m);
    const rc = /^reconnects (\d+) \((\d+) unanswered frames sent again/m.exec(out);
    assert.ok(rc && Number(rc[1]) >= 2, `reconnects reported:\n${out}`);
    assert.match(sim.err(), /connection lost .*reconnecting/);
    assert.match(sim.err(), /reconnected after \d+ ms/);
    // the journal: every event decided exactly once (a resend is answered from it, never decided again)
    {
      let cursor = '', decided = 0, rejected = 0;
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${srv.port}/v1/events?order=asc&limit=10000${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
        const page = await r.json() as { events: { kind: string }[]; next: string };
        if (page.events.length === 0) break;
        decided += page.events.filter((e) => e.kind === 'badge' || e.kind === 'passage').length;
        rejected += page.events.filter((e) => e.kind === 'rejected').length;
        cursor = page.next;
      }
      assert.equal(decided, EVENTS, 'each event is in the journal exactly once');
      assert.equal(rejected, 0);
    }
  } finally {
    sim.child.kill('SIGKILL');
    srv.child.kill('SIGTERM');
    await srv.exited;
    relayServer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
