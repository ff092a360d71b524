/**
 * The leader lease (src/cluster/lease.ts) and the fence, against one real nats-server (JetStream):
 * compare-and-swap means one winner, expiry is judged from the lease's own deadline plus the margin,
 * a renewal with a stale revision tells the holder it was deposed, and a publish that expects an
 * older last sequence is refused (the error a deposed leader gets). Plus the CLI's cluster flags.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { isWrongRevision, leaseExpired, readLease, releaseLease, renewLease, tryTakeLease } from '../../src/cluster/lease.js';
import { siteNames, parseServers, checkNodeName } from '../../src/cluster/names.js';
import { isApbError } from '../../src/errors.js';
import { ROOT } from '../store/util.js';
import { SKIP_NO_NATS, startNats, stopAll, type NatsServer } from './harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'apb-lease-'));
let nats: NatsServer[] = [];
let nc: NatsConnection;
let kv: KV;
before(async () => {
  if (SKIP_NO_NATS) return;
  nats = await startNats(tmp, 1);
  nc = await connect({ servers: nats[0]!.url });
  kv = await new Kvm(nc).create('APB_LEASES', { history: 1 });
});
after(async () => { await nc?.close(); await stopAll(); rmSync(tmp, { recursive: true, force: true }); });

describe('lease and fence on JetStream', { skip: SKIP_NO_NATS }, () => {
  it('one winner; expiry from the lease\'s own deadline plus the margin; epoch + 1 at takeover', async () => {
    const t = 1_000_000;
    const a = await tryTakeLease(kv, 'site1', 'a', 1000, 200, t);
    assert.ok(a);
    assert.equal(a.lease.epoch, 1);
    assert.equal(await tryTakeLease(kv, 'site1', 'b', 1000, 200, t + 500), undefined, 'held');
    assert.equal(await tryTakeLease(kv, 'site1', 'b', 1000, 200, t + 1200), undefined, 'within the margin');
    const b = await tryTakeLease(kv, 'site1', 'b', 1000, 200, t + 1201);
    assert.ok(b, 'expired');
    assert.equal(b.lease.epoch, 2);
    assert.equal(b.lease.node, 'b');
    // the old holder's renewal carries a stale revision: deposed
    assert.equal(await renewLease(kv, 'site1', a, 1000, t + 1300), undefined);
    const b2 = await renewLease(kv, 'site1', b, 1000, t + 1300);
    assert.ok(b2 && b2.revision > b.revision);
    assert.equal((await readLease(kv, 'site1')).lease?.expiresAt, t + 2300);
    // released: anyone takes it at once
    await releaseLease(kv, 'site1', b2);
    const c = await tryTakeLease(kv, 'site1', 'c', 1000, 200, t + 1400);
    assert.equal(c?.lease.epoch, 3);
  });

  it('two nodes racing for an absent lease: exactly one wins', async () => {
    const now = Date.now();
    const got = await Promise.all(['x', 'y', 'z'].map((n) => tryTakeLease(kv, 'site2', n, 1000, 200, now)));
    assert.equal(got.filter(Boolean).length, 1);
  });

  it('leaseExpired judges by the deadline plus the margin', () => {
    const l = { node: 'a', epoch: 1, since: 0, renewedAt: 0, expiresAt: 1000 };
    assert.equal(leaseExpired(l, 1100, 100), false);
    assert.equal(leaseExpired(l, 1101, 100), true);
    assert.equal(leaseExpired(undefined, 0, 100), true);
  });

  it('a publish expecting an older last sequence is refused (the deposed leader\'s error)', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'APB_fence', subjects: ['apb.fence.journal'] });
    const js = jetstream(nc);
    await js.publish('apb.fence.journal', new Uint8Array([1]), { expect: { lastSequence: 0 } });
    await js.publish('apb.fence.journal', new Uint8Array([2]), { expect: { lastSequence: 1 } }); // the new leader's fence
    await assert.rejects(js.publish('apb.fence.journal', new Uint8Array([3]), { expect: { lastSequence: 1 } }), (e: unknown) => isWrongRevision(e));
    assert.equal((await jsm.streams.info('APB_fence')).state.last_seq, 2);
    // why pipelined publishes also expect the previous message's id: a later publish that expects,
    // by coincidence, the seq the fence took is stored after it, although the one before was refused
    await assert.rejects(js.publish('apb.fence.journal', new Uint8Array([4]), { expect: { lastSequence: 1 } }), (e: unknown) => isWrongRevision(e));
    const late = await js.publish('apb.fence.journal', new Uint8Array([5]), { expect: { lastSequence: 2 } });
    assert.equal(late.seq, 3);
    // with the id chain it is refused: the last message is not the one it follows
    await js.publish('apb.fence.journal', new Uint8Array([6]), { msgID: 'old.1.10', expect: { lastSequence: 3 } });
    await js.publish('apb.fence.journal', new Uint8Array([7]), { msgID: 'new.2.fence', expect: { lastSequence: 4 } }); // a new leader's fence
    await assert.rejects(js.publish('apb.fence.journal', new Uint8Array([8]), { msgID: 'old.1.11', expect: { lastSequence: 4, lastMsgID: 'old.1.10' } }), /wrong last/);
    await assert.rejects(js.publish('apb.fence.journal', new Uint8Array([9]), { msgID: 'old.1.12', expect: { lastSequence: 5, lastMsgID: 'old.1.11' } }), /wrong last msg ID/);
    assert.equal((await jsm.streams.info('APB_fence')).state.last_seq, 5);
  });
});

describe('the cluster section of the site file', () => {
  const main = join(ROOT, 'build', 'src', 'cli', 'main.js');
  const office = readFileSync(join(ROOT, 'src', 'demo', 'office.yaml'), 'utf8');
  const withSection = (name: string, section: string, text = office): string => {
    const p = join(tmp, name);
    writeFileSync(p, `${text.trimEnd()}\n${section}\n`);
    return p;
  };

  it('apb validate checks it: every bad field named with its path', () => {
    const bad = withSection('bad.yaml', 'cluster:\n  servers: [http://x:1, "nats://h"]\n  node: "a b"\n  streamReplicas: 7\n  leaseMs: 10\n  snapshotEvery: -1\n  extra: 1');
    const r = spawnSync(process.execPath, [main, 'validate', '--config', bad], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    const out = r.stdout + r.stderr;
    for (const path of ['cluster.servers[0]', 'cluster.servers[1]', 'cluster.node', 'cluster.streamReplicas', 'cluster.leaseMs', 'cluster.snapshotEvery', 'cluster.extra']) assert.ok(out.includes(path), `${path} in ${out}`);
    const good = withSection('good.yaml', 'cluster:\n  servers: [nats://127.0.0.1:4222]\n  leaseMs: 1500');
    const ok = spawnSync(process.execPath, [main, 'validate', '--config', good], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  });

  it('apb serve takes its settings from it (flags first), and refuses sites whose sections disagree', () => {
    const serve = (args: string[]) => spawnSync(process.execPath, [main, 'serve', '--data', join(tmp, 'sd'), '--log-level', 'silent', ...args], { encoding: 'utf8', timeout: 20_000 });
    // the section alone is cluster mode: its servers are the ones dialled (none answers on port 1)
    const a = withSection('a.yaml', 'cluster:\n  servers: [nats://127.0.0.1:1]\n  node: from-file');
    const r1 = serve(['--config', a]);
    assert.notEqual(r1.status, 0);
    assert.match(r1.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
    // a flag wins over the file
    const r2 = serve(['--config', a, '--node', 'bad name']);
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /--node must be/);
    // without a node anywhere
    const b = withSection('b.yaml', 'cluster:\n  servers: [nats://127.0.0.1:1]');
    const r3 = serve(['--config', b]);
    assert.equal(r3.status, 2);
    assert.match(r3.stderr, /cluster mode needs --node NAME/);
    // two sites (a directory) whose sections differ
    const dir = join(tmp, 'sites');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '1.yaml'), readFileSync(a));
    writeFileSync(join(dir, '2.yaml'), readFileSync(b).toString().replace(/^site:.*$/m, 'site: other-site'));
    const r4 = serve(['--config', dir]);
    assert.equal(r4.status, 2);
    assert.match(r4.stderr, /cluster\.node differs between .*1\.yaml and .*2\.yaml/);
  });
});

describe('cluster names and flags', () => {
  it('site keys, node names and server lists are checked', () => {
    assert.deepEqual(siteNames('demo stadium'), {
      key: 'demo_stadium', stream: 'APB_demo_stadium', subject: 'apb.demo_stadium.journal', forward: 'apb.demo_stadium.forward',
      snapStream: 'APB_SNAP_demo_stadium', snapData: 'apb.demo_stadium.snap.data', snapManifest: 'apb.demo_stadium.snap.manifest',
    });
    assert.throws(() => siteNames('***'), (e: unknown) => isApbError(e) && e.code === 'usage');
    assert.equal(siteNames('x'.repeat(200)).key.length, 64);
    assert.throws(() => checkNodeName('a b'), /--node/);
    assert.throws(() => checkNodeName('n'.repeat(65)), /--node/);
    assert.deepEqual(parseServers('nats://a:1,nats://b:2'), ['nats://a:1', 'nats://b:2']);
    for (const bad of ['', 'http://a:1', 'nats://a', 'nats://:4222', 'a:1']) assert.throws(() => parseServers(bad), (e: unknown) => isApbError(e) && e.code === 'usage', bad);
  });

  it('apb serve refuses bad cluster flags with a usage error (exit 2), before touching NATS', () => {
    const apb = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'build', 'src', 'cli', 'main.js'), 'serve', '--config', join(ROOT, 'src', 'demo', 'office.yaml'), '--data', join(tmp, 'd'), ...args], { encoding: 'utf8', timeout: 20_000 });
    const cases: [string[], RegExp][] = [
      [['--node', 'n1'], /--node is only for cluster mode/],
      [['--cluster', 'nats://127.0.0.1:1'], /cluster mode needs --node NAME/],
      [['--cluster', 'http://x:1', '--node', 'n1'], /must be nats:\/\/HOST:PORT/],
      [['--cluster', 'nats://127.0.0.1:1', '--node', 'n1', '--stream-replicas', '9'], /--stream-replicas must be an integer 1-5/],
      [['--cluster', 'nats://127.0.0.1:1', '--node', 'n1', '--lease-ms', '10'], /--lease-ms must be an integer 500-60000/],
      [['--cluster', 'nats://127.0.0.1:1', '--node', 'n1', '--snapshot-every', 'x'], /--snapshot-every must be an integer 0-1000000000/],
    ];
    for (const [args, re] of cases) {
      const r = apb(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    // several sites need cluster mode
    const two = apb(['--config', join(ROOT, 'src', 'demo', 'stadium.yaml')]);
    assert.equal(two.status, 2);
    assert.match(two.stderr, /several --config: one process serves several sites in cluster mode only/);
    const c = spawnSync(process.execPath, [join(ROOT, 'build', 'src', 'cli', 'main.js'), 'cluster', 'stats', '--cluster', 'nats://127.0.0.1:1'], { encoding: 'utf8' });
    assert.equal(c.status, 2);
    assert.match(c.stderr, /one subcommand: status/);
  });
});
