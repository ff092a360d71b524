/**
 * Cluster snapshots (src/cluster/snapshots.ts) on a real nats-server: uploads in chunks, the two
 * newest kept and fetchable byte for byte, older chunks purged, the journal stream trimmed behind
 * the older kept snapshot, and the snapshot a joining node starts from. Skipped without nats-server.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { CHUNK_BYTES, SiteSnapshots } from '../../src/cluster/snapshots.js';
import { siteNames } from '../../src/cluster/names.js';
import { SKIP_NO_NATS, startNats, stopAll, type NatsServer } from './harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'apb-snaps-'));
let nats: NatsServer[] = [];
let nc: NatsConnection;
let jsm: JetStreamManager;

before(async () => {
  if (SKIP_NO_NATS) return;
  nats = await startNats(tmp, 1);
  nc = await connect({ servers: nats[0]!.url });
  jsm = await jetstreamManager(nc);
});
after(async () => { await nc?.close(); await stopAll(); rmSync(tmp, { recursive: true, force: true }); });

describe('cluster snapshots on a snapshot stream', { skip: SKIP_NO_NATS }, () => {
  it('keeps the two newest (fetchable), purges older chunks, trims the journal behind the older, and a joining node starts from the older', async () => {
    const names = siteNames('snaps');
    const js = jetstream(nc);
    await jsm.streams.add({ name: names.stream, subjects: [names.subject] });
    for (let k = 0; k < 30; k++) await js.publish(names.subject, new Uint8Array([k]));
    const snaps = new SiteSnapshots(js, jsm, names, 1);
    await snaps.ensure();
    assert.equal(await snaps.latest(), undefined);
    // one small snapshot (1 chunk), then multi-chunk ones
    const images = [randomBytes(100), randomBytes(CHUNK_BYTES * 2 + 7), randomBytes(CHUNK_BYTES + 1), randomBytes(CHUNK_BYTES * 3)];
    const at = [5, 10, 20, 25];
    const trims: number[] = [];
    for (let k = 0; k < images.length; k++) {
      trims.push(await snaps.upload({ streamSeq: at[k]!, journalSeq: at[k]! * 10, at: Date.now(), configText: `site: snaps\n# ${k}`, idmax: [['c', k, null]], node: 'n' }, images[k]!));
      // after each upload both kept snapshots are whole: a joining node gets the older one
      if (k > 0) {
        const first = (await jsm.streams.info(names.stream)).state.first_seq;
        const j = (await snaps.forJoin(first))!;
        assert.equal(j.streamSeq, at[k - 1]);
        assert.deepEqual(await snaps.fetch(j), images[k - 1]);
        assert.deepEqual(await snaps.fetch((await snaps.latest())!), images[k]);
      }
      // an older (or equal) one than the newest stored is not added
      assert.equal(await snaps.upload({ streamSeq: at[k]!, journalSeq: 0, at: 0, configText: '', idmax: [], node: 'late' }, randomBytes(10)), 0);
    }
    // the first upload trims nothing (no older one kept); then behind the older of the two kept
    assert.deepEqual(trims, [0, 6, 11, 21]);
    assert.equal((await jsm.streams.info(names.stream)).state.first_seq, 21);
    const newest = (await snaps.latest())!;
    assert.equal(newest.streamSeq, 25);
    assert.deepEqual(await snaps.fetch(newest), images[3]);
    const join_ = (await snaps.forJoin(21))!;
    assert.equal(join_.streamSeq, 20, 'the older kept one: the stream holds everything after it');
    assert.deepEqual(await snaps.fetch(join_), images[2]);
    assert.deepEqual(join_.idmax, [['c', 2, null]]);
    // trimmed further than the older one covers: the newest
    assert.equal((await snaps.forJoin(23))!.streamSeq, 25);
    // only the two kept snapshots' chunks and manifests are left
    const st = (await jsm.streams.info(names.snapStream)).state;
    assert.equal(st.messages, join_.chunks.length + newest.chunks.length + 2);
    // a damaged manifest (a chunk it names is gone) is refused, never restored
    await jsm.streams.deleteMessage(names.snapStream, newest.chunks[1]!);
    await assert.rejects(snaps.fetch(newest), /missing or does not fit/);
  });
});
