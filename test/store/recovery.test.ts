/**
 * Recovery: newest snapshot + journal replay gives exactly the engine that
 * produced the journal (occupancy, pending passages, every credential),
 * across a configuration change, over LMDB (reopened) and memory.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { openDurableEngine, startSnapshotter } from '../../src/store/recovery.js';
import { loadSiteText } from '../../src/config/load.js';
import type { EventRecord, Store } from '../../src/store/types.js';
import { CONTROLLERS, STADIUM, STADIUM_SMALL_VIP, decideFrame, engineState, randomMessage, rng } from './util.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const N_CREDS = 150;

for (const kind of ['lmdb', 'memory'] as const) {
  for (const core of ['wasm', 'reference'] as const) {
    describe(`recovery over ${kind}, ${core} core`, () => {
      it('snapshot + journal (with a config change) restores the exact engine and idempotency', async () => {
        const dir = kind === 'lmdb' ? mkdtempSync(join(tmpdir(), 'apb-rec-')) : ':memory:';
        if (kind === 'lmdb') dirs.push(dir);
        let store: Store = await openStore(dir, { retention: { intervalMs: 0 } });
        const first = await openDurableEngine({ store, configText: STADIUM, core });
        assert.equal(first.replayed, 0);
        assert.equal(first.fromSnapshot, 0);
        assert.equal(store.configText(), STADIUM, 'a new directory journals its configuration');
        const engine = first.engine;
        const snap = startSnapshotter(store, engine, { intervalMs: 1e9, everyEvents: 1e9, onStop: false });
        const r = rng(kind === 'lmdb' ? 7 : 8);
        let now = 1_767_261_600_000; // 2026-01-01 10:00 UTC
        let id = 0;
        const replies = new Map<string, Buffer>();
        for (let f = 0; f < 300; f++) {
          const ctrl = CONTROLLERS[Math.floor(r() * CONTROLLERS.length)]!;
          const msgs = Array.from({ length: 1 + Math.floor(r() * 8) }, () => randomMessage(r, ctrl, ++id, N_CREDS, now));
          now += Math.floor(r() * 3000);
          for (const d of await decideFrame(engine, store, ctrl, msgs, now)) replies.set(`${ctrl}/${d.id}`, Buffer.from(d.reply));
          if (f === 120) assert.ok((await snap.snapshotNow())! > 0);
          if (f === 200) {
            // a configuration reload, journaled as the server does
            engine.reconfigure(loadSiteText(STADIUM_SMALL_VIP).site);
            await store.append([{ at: engine.clock, kind: 'config', op: { t: 'config', text: STADIUM_SMALL_VIP } } as EventRecord], []);
          }
        }
        // pending passages must survive: badge a turnstile at the very end, no passage yet
        await decideFrame(engine, store, 'turnstiles', [{ t: 'badge', id: ++id, cred: 1001, reader: 'turnstile-1-in' }], now);
        const expected = engineState(engine, N_CREDS);
        const snapSeq = store.latestSnapshot()!.seq;
        const tail = [...store.since(snapSeq)].filter((e) => e.op !== undefined).length;
        await snap.stop();

        if (kind === 'lmdb') { await store.close(); store = await openStore(dir, { retention: { intervalMs: 0 } }); }
        const rec = await openDurableEngine({ store, configText: STADIUM_SMALL_VIP, core });
        assert.equal(rec.fromSnapshot, snapSeq);
        assert.equal(rec.replayed, tail);
        assert.equal(rec.configChanged, false);
        assert.deepEqual(engineState(rec.engine, N_CREDS), expected);
        for (const [k, v] of replies) {
          const [c, i] = k.split('/');
          assert.deepEqual(Buffer.from(store.getIdem(c!, Number(i))!), v, `idempotency reply ${k}`);
        }

        // starting with another configuration: swapped in and journaled
        const before = store.lastSeq;
        const again = await openDurableEngine({ store, configText: STADIUM, core });
        assert.equal(again.configChanged, true);
        assert.equal(store.lastSeq, before + 1);
        assert.equal(store.configText(), STADIUM);
        const third = await openDurableEngine({ store, configText: STADIUM, core });
        assert.equal(third.configChanged, false);
        await store.close();
      });
    });
  }
}

describe('memory store snapshots written over a dropped one', () => {
  it('the fourth image goes into the buffer of the first (dropped at the third), and the engine rebuilt from it is exact', async () => {
    const store = await openStore(':memory:', { retention: { intervalMs: 0 } });
    try {
      const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
      const snap = startSnapshotter(store, engine, { intervalMs: 1e9, everyEvents: 1e9, onStop: false });
      const nCreds = 3000; // an image over the 64 KiB from which a dropped buffer is kept
      let now = 1_767_261_600_000, id = 0;
      for (let c = 0; c < nCreds; c += 50) {
        const msgs = Array.from({ length: 50 }, (_, k) => ({ t: 'badge', id: ++id, cred: 1000 + c + k, reader: 'gate-north-in' }));
        await decideFrame(engine, store, 'gate-north', msgs, now += 1000);
      }
      const buffers: ArrayBufferLike[] = [];
      for (let round = 0; round < 4; round++) {
        // one more badge of a known credential: the image keeps its size
        await decideFrame(engine, store, 'gate-south', [{ t: 'badge', id: ++id, cred: 1000 + round, reader: 'gate-south-out' }], now += 1000);
        assert.ok((await snap.snapshotNow())! > 0);
        buffers.push(store.latestSnapshot()!.bytes.buffer);
      }
      await snap.stop();
      assert.ok(buffers[0]!.byteLength >= 1 << 16, `image buffer ${buffers[0]!.byteLength} bytes`);
      assert.equal(new Set(buffers.slice(0, 3)).size, 3, 'three distinct buffers while none was dropped');
      assert.equal(buffers[3], buffers[0], 'the fourth image is written over the first');
      const rebuilt = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
      assert.equal(rebuilt.fromSnapshot, store.latestSnapshot()!.seq);
      assert.deepEqual(engineState(rebuilt.engine, nCreds), engineState(engine, nCreds));
    } finally { await store.close(); }
  });
});
