/**
 * Several sites per node, reads on followers, snapshots and trimming, on one real nats-server and
 * real `apb serve --cluster` processes, each serving a directory of two site files (site-a,
 * site-b; `cluster` section in the files: lease 1000 ms, a follower snapshot every 200 records).
 *
 * 1. Node A alone leads both sites; node B joins and A hands one site over: each leads one (its
 *    share, ceil(2 sites / 2 nodes)).
 * 2. A follower answers reads from its replica, with the lag and the leader in headers, the same
 *    credential states and occupancy as the leader; a write on it is relayed to the leader (its answer
 *    returned as it came); the console on it is refused `not_leader`, naming
 *    the leader and its URL.
 * 3. Tokens on a follower are the journaled configuration's: after PUT /v1/config on the leader
 *    changes a controller's token, the follower takes the new token and refuses the old one (its
 *    own site file still has the old).
 * 4. Traffic makes the follower upload snapshots; the journal stream is trimmed (its first seq
 *    moves past 1). Node C joins with empty data directories: site-a starts from the snapshot and
 *    the stream after it, and its replica equals the leader's. A and B stop: C leads both sites
 *    and answers resent frames with the identical bytes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { STADIUM } from '../store/util.js';
import { ApbNode, SKIP_NO_NATS, startNats, stopAll, until, type Health, type NatsServer } from './harness.js';
import { Controller, N_CREDS, TOKENS } from './controller.js';

const wire = new Packr({ useRecords: false, moreTypes: false } as never);
const enc = (v: unknown): Buffer => wire.pack(v);
const LEASE_MS = 1000;
const SNAPSHOT_EVERY = 200;

const tmp = mkdtempSync(join(tmpdir(), 'apb-sites-'));
let nats: NatsServer[] = [];
const nodes: ApbNode[] = [];
const SITES = ['site-a', 'site-b'];

before(async () => {
  if (SKIP_NO_NATS) return;
  nats = await startNats(tmp, 1);
  const dir = join(tmp, 'sites');
  mkdirSync(dir);
  const section = `cluster:\n  servers: [${nats[0]!.url}]\n  leaseMs: ${LEASE_MS}\n  snapshotEvery: ${SNAPSHOT_EVERY}\n`;
  for (const s of SITES) writeFileSync(join(dir, `${s}.yaml`), STADIUM.replace(/^site:.*$/m, `site: ${s}`) + section);
  // c logs at info: if it does not start, the error shows how far it got
  for (const name of ['a', 'b', 'c']) nodes.push(new ApbNode(name, 0, join(tmp, `data-${name}`), dir, nats[0]!.url, name === 'c' ? ['--log-level', 'info'] : []));
});
after(async () => {
  Controller.stopAll();
  await stopAll();
  if (process.env.APB_KEEP_LOGS) for (const n of nodes) writeFileSync(join(process.env.APB_KEEP_LOGS, `node-${n.name}.log`), n.err);
  rmSync(tmp, { recursive: true, force: true });
});

const [A, B, C] = [0, 1, 2].map((k) => () => nodes[k]!);
const port = (n: ApbNode, site: string): number => n.sitePort(site)!;
const health = (n: ApbNode, site: string): Promise<Health | undefined> => n.health(port(n, site));
const get = (n: ApbNode, site: string, path: string, token = 'demo-viewer-token'): Promise<Response> =>
  fetch(`http://127.0.0.1:${port(n, site)}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });

/** site → the node leading it, among the running nodes (undefined while a site has none) */
async function leaders(): Promise<Record<string, string> | undefined> {
  const out: Record<string, string> = {};
  for (const site of SITES) {
    for (const n of nodes) if (n.alive && (await health(n, site))?.role === 'leader') out[site] = n.name;
    if (!out[site]) return undefined;
  }
  return out;
}

/** `until`, with the nodes' health and log tails in the error */
async function untilNodes<T>(what: string, ms: number, fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  try { return await until(what, ms, fn, 100); } catch (e) {
    const seen = await Promise.all(nodes.filter((n) => n.alive).map(async (n) => `${n.name}: ${JSON.stringify(await Promise.all(SITES.map((s) => health(n, s))))}\n  log: ${n.err.slice(-1500)}`));
    throw new Error(`${(e as Error).message}\n${seen.join('\n')}`);
  }
}

describe('several sites per node, follower reads, snapshots and trimming', { skip: SKIP_NO_NATS }, () => {
  let leadA = '', follA = '';
  const ctrl = new Controller('turnstiles', 31);

  it('one node alone leads both sites; a second node gets one of them (no node leads more than its share)', async () => {
    await A().start();
    const l1 = await untilNodes('node a leading both sites', 20_000, leaders);
    assert.deepEqual(l1, { 'site-a': 'a', 'site-b': 'a' });
    await B().start();
    const l2 = await untilNodes('one site on each node', 30_000, async () => {
      const l = await leaders();
      return l && new Set(Object.values(l)).size === 2 ? l : undefined;
    });
    assert.deepEqual(Object.values(l2).sort(), ['a', 'b']);
    // and it stays spread (the balancer does not move a site back)
    await new Promise((r) => setTimeout(r, 3 * LEASE_MS));
    assert.deepEqual(await leaders(), l2);
    leadA = l2['site-a']!;
    follA = leadA === 'a' ? 'b' : 'a';
  });

  const byName = (name: string): ApbNode => nodes.find((n) => n.name === name)!;

  it('a follower answers reads from its replica with its lag, relays writes to the leader, and sends the console there', async () => {
    const L = byName(leadA), F = byName(follA);
    // traffic to site-a through its leader
    const target = { port: port(L, 'site-a') } as ApbNode;
    const run = ctrl.run(async () => target, enc);
    await until('600 acknowledged messages', 60_000, () => (ctrl.acked.size >= 600 ? true : undefined), 100);
    ctrl.stopped = true;
    await run;
    const lh = (await health(L, 'site-a'))!;
    await untilNodes('the follower caught up', 20_000, async () => {
      const h = await health(F, 'site-a');
      return h && h.streamSeq === lh.streamSeq && h.lag === 0 ? true : undefined;
    });
    for (let c = 0; c < N_CREDS; c++) {
      const cred = c % 17 === 0 ? `s:s-${c}` : String(1000 + c);
      const [fr, lr] = [await get(F, 'site-a', `/v1/credentials/${cred}`), await get(L, 'site-a', `/v1/credentials/${cred}`)];
      assert.equal(fr.status, 200, await fr.clone().text());
      assert.equal(fr.headers.get('apb-role'), 'follower');
      assert.equal(fr.headers.get('apb-leader'), leadA);
      assert.equal(fr.headers.get('apb-lag-records'), '0');
      assert.equal(fr.headers.get('apb-lag-ms'), '0');
      const [f, l] = [await fr.json() as Record<string, unknown>, await lr.json() as Record<string, unknown>];
      assert.deepEqual({ location: f.location, lastMoveAt: f.lastMoveAt, known: f.known }, { location: l.location, lastMoveAt: l.lastMoveAt, known: l.known }, cred);
    }
    const [fa, la] = [await (await get(F, 'site-a', '/v1/areas')).json(), await (await get(L, 'site-a', '/v1/areas')).json()];
    assert.deepEqual(fa, la);
    const ev = await get(F, 'site-a', '/v1/events?limit=5');
    assert.equal(ev.status, 200);
    assert.equal(((await ev.json()) as { events: unknown[] }).events.length, 5);
    // wrong token: the same refusal as on the leader
    assert.equal((await get(F, 'site-a', '/v1/areas', 'not-a-token-of-this-site')).status, 401);
    // a write: relayed to the leader, which applies and journals it; the answer comes back as it came
    const w = await fetch(`http://127.0.0.1:${port(F, 'site-a')}/v1/credentials/1001/forgive`, {
      method: 'POST', headers: { authorization: 'Bearer demo-operator-token', 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'relayed by a follower' }),
    });
    assert.equal(w.status, 200, await w.clone().text());
    assert.equal(w.headers.get('apb-relayed-to'), leadA);
    assert.equal(w.headers.get('apb-role'), 'follower');
    const done = await w.json() as { action: string; who: string; why: string };
    assert.deepEqual([done.action, done.who, done.why], ['forgive', 'desk', 'relayed by a follower']);
    const last = await (await get(L, 'site-a', '/v1/events?limit=1')).json() as { events: { kind: string; action?: string; why?: string }[] };
    assert.deepEqual([last.events[0]!.kind, last.events[0]!.action, last.events[0]!.why], ['action', 'forgive', 'relayed by a follower'], 'journaled by the leader');
    // refused by the leader: the leader's error, relayed as it came (a viewer may not act)
    const denied = await fetch(`http://127.0.0.1:${port(F, 'site-a')}/v1/credentials/1001/forgive`, {
      method: 'POST', headers: { authorization: 'Bearer demo-viewer-token', 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'x' }),
    });
    assert.equal(denied.status, 403, await denied.clone().text());
    assert.equal(((await denied.json()) as { code: string }).code, 'forbidden');
    // the live stream and the console need the leader's engine: not_leader, naming the leader and its URL
    const c = await fetch(`http://127.0.0.1:${port(F, 'site-a')}/`);
    assert.equal(c.status, 503);
    const body = await c.json() as { code: string; leader: string; leaderUrl: string };
    assert.equal(body.code, 'not_leader');
    assert.equal(body.leader, leadA);
    assert.equal(body.leaderUrl, `http://127.0.0.1:${port(L, 'site-a')}`);
    assert.equal(c.headers.get('apb-leader-url'), body.leaderUrl);
  });

  it('a follower checks controller tokens against the journaled configuration, not its own file', async () => {
    const L = byName(leadA), F = byName(follA);
    const text = STADIUM.replace(/^site:.*$/m, 'site: site-a').replace('demo-gate-north-token', 'rotated-gate-north-token');
    const put = await fetch(`http://127.0.0.1:${port(L, 'site-a')}/v1/config`, { method: 'PUT', headers: { authorization: 'Bearer demo-admin-token' }, body: text });
    assert.equal(put.status, 200, await put.text());
    const lh = (await health(L, 'site-a'))!;
    await until('the follower applied the reload', 20_000, async () => ((await health(F, 'site-a'))?.streamSeq === lh.streamSeq ? true : undefined), 100);
    const open = (token: string): Promise<number> => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port(F, 'site-a')}/v1/controller`, { headers: { authorization: `Bearer ${token}` } });
      ws.once('open', () => { ws.terminate(); resolve(101); });
      ws.once('unexpected-response', (_q, res) => { ws.terminate(); resolve(res.statusCode ?? 0); });
      ws.once('error', () => resolve(0));
    });
    assert.equal(await open('rotated-gate-north-token'), 101);
    assert.equal(await open(TOKENS['gate-north']!), 401);
  });

  it('snapshots trim the stream; a node that joins empty starts from one, and serves both sites once alone', async () => {
    const L = byName(leadA);
    // the follower uploads a snapshot every 200 records; the stream is trimmed behind the older of the two kept
    const nc = await connect({ servers: nats[0]!.url });
    let first = 0;
    try {
      const jsm = await jetstreamManager(nc);
      first = await until('the journal stream trimmed', 30_000, async () => {
        const s = (await jsm.streams.info('APB_site-a')).state;
        return s.first_seq > 1 ? s.first_seq : undefined;
      }, 200);
      const snaps = (await jsm.streams.info('APB_SNAP_site-a')).state;
      assert.ok(snaps.messages >= 2, `snapshot stream holds ${snaps.messages} messages`);
    } finally { await nc.close(); }
    assert.ok(first > 1);

    try { await C().start(60_000); } catch (e) { throw new Error(`${(e as Error).message}; its log: ${C().err.slice(-4000)} ${C().out.slice(-4000)}`); }
    const lh = (await health(L, 'site-a'))!;
    const ch = await untilNodes('node c caught up on site-a', 30_000, async () => {
      const h = await health(C(), 'site-a');
      return h && h.streamSeq === lh.streamSeq && h.lag === 0 ? h : undefined;
    });
    assert.equal(ch.startedFromSnapshot, true);
    assert.equal(ch.journalSeq, lh.journalSeq);
    for (let c = 0; c < N_CREDS; c++) {
      const cred = c % 17 === 0 ? `s:s-${c}` : String(1000 + c);
      const [f, l] = [await (await get(C(), 'site-a', `/v1/credentials/${cred}`)).json() as Record<string, unknown>,
        await (await get(L, 'site-a', `/v1/credentials/${cred}`)).json() as Record<string, unknown>];
      assert.deepEqual({ location: f.location, lastMoveAt: f.lastMoveAt }, { location: l.location, lastMoveAt: l.lastMoveAt }, cred);
    }

    await A().stop();
    await B().stop();
    await untilNodes('node c leading both sites', 30_000, async () => {
      const l = await leaders();
      return l && l['site-a'] === 'c' && l['site-b'] === 'c' ? true : undefined;
    });
    // the last 160 acknowledged messages (journaled after the older kept snapshot, the one a node
    // joining empty starts from: at most two snapshot periods back): identical replies
    const ws = await Controller.open({ port: port(C(), 'site-a') } as ApbNode, 'turnstiles');
    assert.ok(ws, 'c takes the controller');
    try {
      for (const f of ctrl.frames.slice(-20)) assert.deepEqual(await Controller.exchange(ws!, enc(f.msgs)), f.reply);
    } finally { ws!.terminate(); }
  });
});
