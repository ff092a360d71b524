/**
 * The leader lease (src/cluster/lease.ts) and the fence, against one real nats-server (JetStream):
 * compare-and-swap means one winner, expiry is judged from the lease's own deadline plus the margin,
 * a renewal with a stale revision tells the holder it was deposed, and a publish that expects an
 * older last sequence is refused (the error a deposed leader gets). Plus the CLI's cluster flags.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

describe('cluster names and flags', () => {
  it('site keys, node names and server lists are checked', () => {
    assert.deepEqual(siteNames('demo stadium'), { key: 'demo_stadium', stream: 'APB_demo_stadium', subject: 'apb.demo_stadium.journal', forward: 'apb.demo_stadium.forward' });
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
      [['--cluster', 'nats://127.0.0.1:1'], /--cluster needs --node/],
      [['--cluster', 'http://x:1', '--node', 'n1'], /must be nats:\/\/HOST:PORT/],
      [['--cluster', 'nats://127.0.0.1:1', '--node', 'n1', '--stream-replicas', '9'], /--stream-replicas must be an integer 1-5/],
      [['--cluster', 'nats://127.0.0.1:1', '--node', 'n1', '--lease-ms', '10'], /--lease-ms must be an integer 500-60000/],
    ];
    for (const [args, re] of cases) {
      const r = apb(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    const c = spawnSync(process.execPath, [join(ROOT, 'build', 'src', 'cli', 'main.js'), 'cluster', 'stats', '--cluster', 'nats://127.0.0.1:1'], { encoding: 'utf8' });
    assert.equal(c.status, 2);
    assert.match(c.stderr, /one subcommand: status/);
  });
});
