/**
 * The controller swarm of the WebSocket benchmark, for a fraction of a
 * second: as a child process against the bare uWS echo baseline and a real
 * server (:memory:), closed and open loop, with its hand-encoded frames
 * accepted as valid badges by the server (no error replies).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBareChild, startServerChild, type Child } from '../../bench/proc.js';
import { runSwarmChild } from '../../bench/ws.js';
import { benchSite, simToken, siteYaml } from '../../src/sim/sites.js';

let bare: Child, server: Child;
const conns = [0, 1].map((i) => ({ token: simToken(`ctl-${i}`), readers: [`ctl-${i}-in`, `ctl-${i}-out`] }));
before(async () => { [bare, server] = await Promise.all([startBareChild(), startServerChild(siteYaml(benchSite(2)), ':memory:')]); });
after(async () => { await Promise.all([bare?.stop(), server?.stop()]); });

test('closed loop against the echo baseline and the server: frames answered, no error replies', async () => {
  for (const batch of [1, 16]) {
    const e = await runSwarmChild({ url: `${bare.wsUrl}/v1/controller`, conns, batch, mode: 'closed', durationMs: 300, warmupMs: 100, echo: true });
    assert.ok(e.frames > 0 && e.messages === e.frames * batch, JSON.stringify(e));
    const s = await runSwarmChild({ url: `${server.wsUrl}/v1/controller`, conns, batch, mode: 'closed', durationMs: 300, warmupMs: 100 });
    assert.ok(s.frames > 0 && s.checkedFrames > 0, JSON.stringify(s));
    assert.deepEqual(s.errors, {});
    assert.ok(s.latencyUs.p50 > 0 && s.latencyUs.p50 <= s.latencyUs.p99);
  }
});

test('open loop: sends at the offered rate and reports percentiles', async () => {
  const r = await runSwarmChild({ url: `${server.wsUrl}/v1/controller`, conns, batch: 1, mode: 'open', rate: 200, durationMs: 500, warmupMs: 100 });
  assert.equal(r.offeredPerSec, 200);
  assert.ok(r.frames >= 50 && r.frames <= 120, `about 100 frames in 0.5 s at 200/s, got ${r.frames}`);
  assert.ok(r.latencyUs.p50 <= r.latencyUs.p99 && r.latencyUs.p99 <= r.latencyUs.p999);
  assert.deepEqual(r.errors, {});
});

test('each controller\'s message ids count up on their own from the base (the journal holds base, base+1, ...)', async () => {
  // a shared counter gave each controller every other block of ids, and at 1 M messages/s it overtook
  // the next run's base (Date.now() * 1000), so that run's ids were all below the server's high-water mark
  const fresh = await startServerChild(siteYaml(benchSite(2)), ':memory:');
  try {
    const base = 7_000_000;
    const r = await runSwarmChild({ url: `${fresh.wsUrl}/v1/controller`, conns, batch: 16, mode: 'closed', durationMs: 150, warmupMs: 50, idBase: base });
    assert.deepEqual(r.errors, {});
    const ids = new Map<string, number[]>();
    let cursor = '';
    for (let page = 0; page < 100; page++) {
      const res = await fetch(`${fresh.url}/v1/events?order=asc&limit=10000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: { authorization: 'Bearer sim-admin-simulated-token' } });
      assert.equal(res.status, 200);
      const body = await res.json() as { events: { controller?: string; id?: number }[]; next: string };
      if (body.events.length === 0) break;
      for (const e of body.events) if (e.controller !== undefined && typeof e.id === 'number') { if (!ids.has(e.controller)) ids.set(e.controller, []); ids.get(e.controller)!.push(e.id); }
      cursor = body.next;
    }
    assert.deepEqual([...ids.keys()].sort(), ['ctl-0', 'ctl-1']);
    for (const [c, list] of ids) {
      const sorted = [...list].sort((a, b) => a - b);
      assert.ok(sorted.length > 16, `${c}: ${sorted.length} messages`);
      assert.deepEqual(sorted, sorted.map((_, k) => base + k), `${c}: ids ${base}.. with no gap`);
    }
  } finally { await fresh.stop(); }
});

test('a wrong token fails the swarm with the HTTP status', async () => {
  await assert.rejects(runSwarmChild({ url: `${server.wsUrl}/v1/controller`, conns: [{ token: 'nope', readers: ['ctl-0-in'] }], batch: 1, mode: 'closed', durationMs: 100 }), /upgrade refused with HTTP 401/);
});
