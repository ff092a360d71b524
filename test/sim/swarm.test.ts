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

test('a wrong token fails the swarm with the HTTP status', async () => {
  await assert.rejects(runSwarmChild({ url: `${server.wsUrl}/v1/controller`, conns: [{ token: 'nope', readers: ['ctl-0-in'] }], batch: 1, mode: 'closed', durationMs: 100 }), /upgrade refused with HTTP 401/);
});
