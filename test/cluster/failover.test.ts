/**
 * Cluster mode end to end: three clustered nats-servers (JetStream, stream replicas 3) and three
 * `apb serve --cluster` nodes, real processes on loopback.
 *
 * 1. Controllers stream to whichever node leads; the leader is SIGKILLed at a random instant,
 *    several rounds (the killed node comes back as a follower). Then:
 *     - every decision a controller received as acknowledged is in the stream exactly once, with
 *       the reply bytes it received, and exactly once in each surviving node's journal;
 *     - a resend of acknowledged frames to the current leader gets the identical bytes;
 *     - the current leader's credential states equal a replay of the stream.
 *    Controllers connect to different nodes: a follower forwards their frames to the leader.
 * 2. A controller on a follower gets the leader's decisions, byte for byte; /metrics of both and
 *    `apb cluster status` name the roles and the leader.
 * 3. SIGSTOP the leader past its lease: another node takes over; frames sent to the stopped leader
 *    meanwhile are answered after SIGCONT with errors only (no decision, no ack), it steps down,
 *    and nothing it published after the new leader's fence is in the stream.
 * 4. One nats-server killed: decisions go on (a quorum of 2 of 3 remains); two: the leader answers
 *    storage_unavailable and no node leads; both back: decisions again.
 * 5. A fourth node joins with an empty data directory, catches up from the stream, and once the
 *    three others stop it leads and answers a resent frame with the identical bytes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from '@msgpack/msgpack';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { openDurableEngine } from '../../src/store/recovery.js';
import { credFromText } from '../../src/engine/cred.js';
import { ROOT, STADIUM, rng } from '../store/util.js';
import { ApbNode, SKIP_NO_NATS, freePort, idsOf, leaderOf, readStream, startNats, stopAll, until, type NatsServer } from './harness.js';
import { Controller, N_CREDS } from './controller.js';

const wire = new Packr({ useRecords: false, moreTypes: false } as never);
const enc = (v: unknown): Buffer => wire.pack(v);
const STREAM = 'APB_demo-stadium';
const LEASE_MS = 1000;

const tmp = mkdtempSync(join(tmpdir(), 'apb-cluster-'));
let nats: NatsServer[] = [];
const nodes: ApbNode[] = [];
const natsUrls = (): string => nats.map((s) => s.url).join(',');

before(async () => {
  if (SKIP_NO_NATS) return;
  nats = await startNats(tmp, 3);
  const config = join(tmp, 'site.yaml');
  writeFileSync(config, STADIUM);
  for (let k = 0; k < 3; k++) {
    // no follower snapshots: this file checks the stream's whole history (every acknowledged id in
    // it exactly once), which trimming would remove; sites.test.ts and snapshots.test.ts cover them
    nodes.push(new ApbNode(`n${k}`, await freePort(), join(tmp, `data-n${k}`), config, natsUrls(), ['--stream-replicas', '3', '--lease-ms', String(LEASE_MS), '--snapshot-every', '0']));
  }
  for (const n of nodes) await n.start();
  await until('a leader', 20_000, () => leaderOf(nodes));
});
// a failed step leaves its controllers' run loops going: stop them first, or the file never ends
after(async () => { Controller.stopAll(); await stopAll(); rmSync(tmp, { recursive: true, force: true }); });

/** `until`, and on a timeout the nodes' health and the tail of their logs in the error (a failure says why) */
async function untilNodes<T>(what: string, ms: number, fn: () => Promise<T | undefined> | T | undefined, every?: number): Promise<T> {
  try { return await until(what, ms, fn, every); } catch (e) {
    const seen = await Promise.all(nodes.map(async (n) => `${n.name} alive=${n.alive} health=${JSON.stringify(await n.health())}\n  log: ${n.err.slice(-1500)}`));
    throw new Error(`${(e as Error).message}\n${seen.join('\n')}`);
  }
}

const siteName = (): string => /^site:\s*(.+)$/m.exec(STADIUM)![1]!.trim();

describe('cluster mode on three NATS servers and three apb nodes', { skip: SKIP_NO_NATS }, () => {
  it('uses the stream name of the site', () => { assert.equal(STREAM, `APB_${siteName().replace(/[^A-Za-z0-9_-]/g, '_')}`); });

  it('SIGKILL of the leader at random instants: nothing acknowledged lost or doubled, resends identical, state = replay of the stream', async () => {
    const r = rng(20261207);
    const ctrls = [new Controller('gate-north', 11), new Controller('turnstiles', 12)];
    // each controller on a node of its own (a follower forwards its frames to the leader)
    const runs = ctrls.map((c, k) => c.run(async () => { const up = nodes.filter((n) => n.alive); return up[k % up.length]; }, enc));
    const takeovers: number[] = [];
    const engines: string[] = [];
    for (let round = 0; round < 3; round++) {
      await new Promise((res) => setTimeout(res, 300 + Math.floor(r() * 900)));
      const leader = await until('a leader', 20_000, () => leaderOf(nodes));
      const before = ctrls.reduce((n, c) => n + c.acked.size, 0);
      const t0 = Date.now();
      await leader.stop('SIGKILL');
      // a new leader, and decisions acknowledged by it
      await until('decisions after the kill', 20_000, async () => (ctrls.reduce((n, c) => n + c.acked.size, 0) > before && (await leaderOf(nodes)) ? true : undefined));
      takeovers.push(Date.now() - t0);
      const now = await until('the new leader', 20_000, () => leaderOf(nodes));
      engines.push(((await now.health()) as unknown as { takeoverEngine?: string }).takeoverEngine ?? '?');
      // back as a follower (bounded; on a timeout the error carries its log)
      try { await leader.start(60_000); } catch (e) { throw new Error(`${(e as Error).message}; its log: ${leader.err.slice(-3000)}`); }
    }
    for (const c of ctrls) c.stopped = true;
    await Promise.all(runs);
    const acked = ctrls.reduce((n, c) => n + c.acked.size, 0);
    assert.ok(acked > 50, `decisions acknowledged: ${acked}`);

    // every acknowledged id: once in the stream, with the bytes the controller got
    const batches = await readStream(nats[0]!.url, STREAM);
    const ids = idsOf(batches);
    for (const c of ctrls) {
      for (const [id, rep] of c.acked) {
        const got = ids.get(`${c.name}/${id}`);
        assert.ok(got, `${c.name}/${id} acknowledged but not in the stream`);
        assert.equal(got.n, 1, `${c.name}/${id} is in ${got.n} batches`);
        assert.deepEqual(decode(got.reply!), rep, `${c.name}/${id}: stored reply`);
      }
    }
    // journal seqs continue from batch to batch across epochs (one writer at a time)
    let end = 0;
    for (const b of batches) if (!b.fence) { assert.equal(b.s, end + 1, `stream seq ${b.streamSeq}: batch ${b.s}-${b.e} after ${end}`); end = b.e; }

    // resends of acknowledged frames: identical bytes from the current leader
    const leader = await until('a leader', 20_000, () => leaderOf(nodes));
    for (const c of ctrls) {
      const ws = await until('a controller socket', 5000, () => Controller.open(leader, c.name));
      for (const f of c.frames.slice(-3).concat(c.frames.slice(0, 2))) {
        const again = await Controller.exchange(ws, enc(f.msgs));
        assert.ok(again && again.equals(f.reply), `${c.name}: resent frame of ids ${f.msgs[0]!.id}.. answered with other bytes`);
      }
      ws.close();
    }

    // the leader's state equals a replay of the stream
    const replayDir = join(tmp, 'replay');
    const replay = new LmdbStore(replayDir, {});
    for (const b of batches) if (b.payload) await replay.appendReplicated(b.s, b.e, b.payload);
    const { engine } = await openDurableEngine({ store: replay, configText: STADIUM });
    engine.tick(Date.now());
    for (let c = 0; c < N_CREDS; c++) {
      const text = c % 17 === 0 ? `s:${encodeURIComponent(`s-${c}`)}` : String(1000 + c);
      const res = await fetch(`${leader.base}/v1/credentials/${text}`, { headers: { authorization: 'Bearer demo-viewer-token' } });
      const body = await res.json() as { location: string | null; lastMoveAt: number };
      const s = engine.state(credFromText(text));
      assert.equal(body.location, s.location >= 0 ? engine.site.areaIds[s.location] : null, `cred ${text}: location`);
      assert.equal(body.lastMoveAt, s.lastMoveAt, `cred ${text}: lastMoveAt`);
    }
    await replay.close();

    // each node's own journal: every acknowledged id exactly once (followers caught up first)
    const last = batches.at(-1)!.streamSeq;
    await until(`followers caught up to ${last}`, 20_000, async () => {
      for (const n of nodes) if ((await n.health())?.streamSeq !== last) return undefined;
      return true;
    });
    for (const n of nodes) {
      const counts = new Map<string, number>();
      const st = new LmdbStore(n.data, { readOnly: true });
      try {
        for (const e of st.since(0)) {
          if (e.kind !== 'badge' && e.kind !== 'passage' && e.kind !== 'offline') continue;
          const k = `${e.controller}/${e.id}`;
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      } finally { await st.close(); }
      for (const c of ctrls) for (const id of c.acked.keys()) assert.equal(counts.get(`${c.name}/${id}`), 1, `node ${n.name}: ${c.name}/${id}`);
    }
    // the new leaders took their followers' hot engines (a follower that joined mid-round may have recovered)
    assert.ok(engines.includes('hot'), `takeover engines: ${engines.join(', ')}`);
    process.stderr.write(`# cluster failover: ${acked} acknowledged, takeover (kill to the next acknowledged decision) ${takeovers.join(', ')} ms, engines ${engines.join(', ')}\n`);
  });

  it('a controller on a follower: its frames are forwarded to the leader, replies relayed byte for byte', async () => {
    const leader = await until('a leader', 20_000, () => leaderOf(nodes));
    const follower = nodes.find((n) => n !== leader && n.alive)!;
    const c = new Controller('vip', 31, 5_000_000);
    const ws = await until('a socket to a follower', 5000, () => Controller.open(follower, 'vip'));
    const msgs = c.newFrame(6);
    const viaFollower = await Controller.exchange(ws, enc(msgs));
    ws.close();
    assert.ok(viaFollower, 'answered through the follower');
    for (const rep of decode(viaFollower) as { t: string }[]) assert.notEqual(rep.t, 'error', JSON.stringify(rep));
    const direct = await until('a socket to the leader', 5000, () => Controller.open(leader, 'vip'));
    const again = await Controller.exchange(direct, enc(msgs));
    direct.close();
    assert.ok(again && again.equals(viaFollower), 'the leader answers the resent frame with the same bytes');
    const h = await follower.health() as unknown as { forwarded: number; role: string };
    assert.equal(h.role, 'follower');
    assert.ok(h.forwarded >= 1, `forwarded ${h.forwarded}`);
    // a wrong token is refused at the follower's upgrade, as on the leader
    const bad = await new Promise<number>((resolve) => {
      const w = new WebSocket(`ws://127.0.0.1:${follower.port}/v1/controller`, { headers: { authorization: 'Bearer not-a-token-of-this-site' } });
      w.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); w.terminate(); });
      w.once('open', () => { resolve(101); w.terminate(); });
      w.once('error', () => resolve(-1));
    });
    assert.equal(bad, 401);
    // operations: the follower's /metrics, and apb cluster status
    const metrics = await (await fetch(`${follower.base}/metrics`)).text();
    assert.match(metrics, new RegExp(`^apb_cluster_role\\{site="demo-stadium",node="${follower.name}",role="follower"\\} 1$`, 'm'));
    assert.match(metrics, /^apb_cluster_forwarded_total\{[^}]*\} [1-9]/m);
    const leaderMetrics = await (await fetch(`${leader.base}/metrics`)).text();
    assert.match(leaderMetrics, /^apb_decisions_total/m, 'the leader keeps its own metrics');
    assert.match(leaderMetrics, new RegExp(`^apb_cluster_role\\{site="demo-stadium",node="${leader.name}",role="leader"\\} 1$`, 'm'));
    const st = spawnSync(process.execPath, [join(ROOT, 'build', 'src', 'cli', 'main.js'), 'cluster', 'status', '--cluster', natsUrls()], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(st.status, 0, st.stderr);
    const line = JSON.parse(st.stdout.trim().split('\n').find((l) => l.includes('demo-stadium'))!) as { leader: string; leaseValid: boolean; streamSeq: number; epoch: number };
    assert.equal(line.leader, leader.name);
    assert.equal(line.leaseValid, true);
    assert.ok(line.streamSeq > 0 && line.epoch >= 1);
  });

  it('SIGSTOP past the lease, SIGCONT: the deposed leader answers no decision and appends nothing after the fence', async () => {
    const old = await until('a leader', 20_000, () => leaderOf(nodes));
    const oldEpoch = (await old.health())!.epoch;
    const ws = await until('a socket to the leader', 5000, () => Controller.open(old, 'vip'));
    const c = new Controller('vip', 99);
    const first = await Controller.exchange(ws, enc(c.newFrame(2)));
    assert.ok(first, 'the leader answers before the pause');
    const got: Buffer[] = [];
    ws.on('message', (d: Buffer) => got.push(d));
    old.signal('SIGSTOP');
    const others = nodes.filter((n) => n !== old);
    const next = await until('another leader', 20_000, () => leaderOf(others));
    const newEpoch = (await next.health())!.epoch;
    assert.ok(newEpoch > oldEpoch);
    // frames to the stopped leader wait in its socket; the new leader decides meanwhile
    for (let k = 0; k < 3; k++) ws.send(enc(c.newFrame(4)));
    const w2 = await until('a socket to the new leader', 5000, () => Controller.open(next, 'gate-south'));
    const c2 = new Controller('gate-south', 7);
    assert.ok(await Controller.exchange(w2, enc(c2.newFrame(4))), 'the new leader decides');
    w2.close();
    old.signal('SIGCONT');
    await until('the old leader to step down', 20_000, async () => ((await old.health())?.role === 'follower' ? true : undefined));
    await new Promise((res) => { if (ws.readyState === WebSocket.CLOSED) res(undefined); else { ws.once('close', res); setTimeout(res, 2000); } });
    process.stderr.write(`# deposed leader: ${got.length} frames answered after SIGCONT (errors only)\n`);
    for (const frame of got) {
      const replies = decode(frame) as Record<string, unknown>[] | Record<string, unknown>;
      for (const rep of Array.isArray(replies) ? replies : [replies]) {
        assert.equal(rep.t, 'error', `the deposed leader sent ${JSON.stringify(rep)}`);
        assert.ok(rep.code === 'storage_unavailable' || rep.code === 'not_ready', `error code ${String(rep.code)}`);
      }
    }
    // nothing of the old epoch after the new leader's fence
    const batches = await readStream(nats[0]!.url, STREAM);
    const fence = batches.findIndex((b) => b.fence && b.epoch === newEpoch);
    assert.ok(fence >= 0, 'the new leader fenced the stream');
    for (const b of batches.slice(fence + 1)) assert.ok(b.epoch >= newEpoch, `stream seq ${b.streamSeq} of epoch ${b.epoch} after the fence of ${newEpoch}`);
  });

  it('one NATS server killed: decisions go on; two: storage_unavailable, and decisions again once they are back', async () => {
    await nats[2]!.stop('SIGKILL');
    const c = new Controller('gate-north', 5, 1_000_000); // ids the first test did not use
    const run = c.run(() => leaderOf(nodes), enc);
    await until('decisions with one NATS server down', 30_000, () => (c.acked.size >= 40 ? true : undefined));
    c.stopped = true;
    await run;

    // no quorum: the leader's publishes fail; what it answers is storage_unavailable, never a decision
    const leader = await until('a leader', 20_000, () => leaderOf(nodes));
    const ws = await until('a socket to the leader', 5000, () => Controller.open(leader, 'vip'));
    await nats[1]!.stop('SIGKILL');
    const v = new Controller('vip', 6, 2_000_000);
    const reply = await Controller.exchange(ws, enc(v.newFrame(4)), 10_000);
    ws.terminate();
    if (reply) { // (the socket may also close first, the leader stepping down)
      for (const rep of decode(reply) as Record<string, unknown>[]) assert.equal(rep.code, 'storage_unavailable', JSON.stringify(rep));
    }
    await until('no node leads without a quorum', 20_000, async () => ((await leaderOf(nodes)) ? undefined : true));

    nats[1]!.start();
    nats[2]!.start();
    const back = new Controller('vip', 8, 3_000_000);
    const run2 = back.run(() => leaderOf(nodes), enc);
    await untilNodes('decisions once the NATS servers are back', 120_000, () => (back.acked.size >= 40 ? true : undefined), 100);
    back.stopped = true;
    await run2;
  });

  it('a fourth node joins empty, catches up with the stream, and serves the site when the others stop', async () => {
    const config = join(tmp, 'site.yaml');
    // JetStream answering again after the previous test's restarts (a node starting meanwhile waits on it)
    await untilNodes('the stream to answer after the NATS restarts', 60_000, async () => ((await readStream(nats[0]!.url, STREAM)).length > 0 ? true : undefined), 500);
    // info level: if it does not start, the error shows how far it got
    const n3 = new ApbNode('n3', await freePort(), join(tmp, 'data-n3'), config, natsUrls(), ['--stream-replicas', '3', '--lease-ms', String(LEASE_MS), '--snapshot-every', '0', '--log-level', 'info']);
    nodes.push(n3);
    try { await n3.start(60_000); } catch (e) { throw new Error(`${(e as Error).message}; its log: ${n3.err.slice(-3000)}`); }
    const leader = await until('a leader', 20_000, () => leaderOf(nodes));
    const c = new Controller('turnstiles', 21, 4_000_000);
    const ws = await until('a socket to the leader', 5000, () => Controller.open(leader, c.name));
    const msgs = c.newFrame(8);
    const first = await Controller.exchange(ws, enc(msgs));
    ws.close();
    assert.ok(first && (decode(first) as { t: string }[]).every((r) => r.t !== 'error'), 'decided');
    const last = (await readStream(nats[0]!.url, STREAM)).at(-1)!.streamSeq;
    await untilNodes('the new node to catch up', 60_000, async () => ((await n3.health())?.streamSeq === last ? true : undefined));
    for (const n of nodes) if (n !== n3) await n.stop('SIGTERM');
    await until('the new node to lead', 30_000, async () => ((await n3.health())?.role === 'leader' ? true : undefined));
    const w3 = await until('a socket to the new node', 5000, () => Controller.open(n3, c.name));
    const again = await Controller.exchange(w3, enc(msgs));
    w3.close();
    assert.ok(again && again.equals(first), 'the resent frame gets the identical bytes from the node that joined empty');
  });
});
