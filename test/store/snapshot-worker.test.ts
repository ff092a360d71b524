/**
 * Snapshots without a pause (issue 12 item 6): a replica engine in a worker
 * thread, fed from the journal, writes the snapshots; the main thread never
 * calls engine.snapshot(). Real LMDB directories; a real server for the last test.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { openDurableEngine, startSnapshotter } from '../../src/store/recovery.js';
import { restoreFromFile } from '../../src/store/replica.js';
import type { ReplicaSnapshotter } from '../../src/store/replica-snapshotter.js';
import { createEngine } from '../../src/engine/engine.js';
import { loadSiteText } from '../../src/config/load.js';
import type { Engine } from '../../src/engine/types.js';
import type { EventRecord, Store } from '../../src/store/types.js';
import { pino } from 'pino';
import { startServer } from '../../src/server/server.js';
import { CONTROLLERS, STADIUM, STADIUM_SMALL_VIP, decideFrame, engineState, randomMessage, rng } from './util.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'apb-snapw-')); dirs.push(d); return d; };
const N_CREDS = 3000;
const T0 = 1_767_261_600_000; // 2026-01-01 10:00 UTC

/** the engine a snapshot file restores to (as recovery loads it: its configuration, then the bytes) */
function fromNewestSnapshot(store: Store, core: 'wasm' | 'reference'): { seq: number; engine: Engine } {
  const f = store.latestSnapshotFile!()!;
  const engine = createEngine(loadSiteText(f.configText!).site, { core });
  restoreFromFile(engine, f);
  return { seq: f.seq, engine };
}

/** spies on engine.snapshot: counts calls on the calling thread */
function spy(engine: Engine): { calls: number } {
  const s = { calls: 0 };
  const orig = engine.snapshot.bind(engine);
  engine.snapshot = () => { s.calls++; return orig(); };
  return s;
}

async function traffic(engine: Engine, store: Store, r: () => number, frames: number, clock: { now: number; id: number }): Promise<void> {
  for (let f = 0; f < frames; f++) {
    const ctrl = CONTROLLERS[Math.floor(r() * CONTROLLERS.length)]!;
    const msgs = Array.from({ length: 1 + Math.floor(r() * 16) }, () => randomMessage(r, ctrl, ++clock.id, N_CREDS, clock.now));
    clock.now += Math.floor(r() * 500);
    await decideFrame(engine, store, ctrl, msgs, clock.now);
  }
}


for (const core of ['wasm', 'reference'] as const) {
  describe(`snapshot worker, ${core} core`, () => {
    it('writes snapshots on schedule while the main thread never calls engine.snapshot()', async () => {
      const dir = tmp();
      const store = await openStore(dir, { retention: { intervalMs: 0 } });
      const { engine } = await openDurableEngine({ store, configText: STADIUM, core });
      const s = spy(engine);
      const snap = startSnapshotter(store, engine, { everyEvents: 300, checkMs: 10, intervalMs: 1e9, inlineBelow: 0 }) as ReplicaSnapshotter;
      assert.equal(snap.kind, 'replica');
      // a worker takes 0.1-0.5 s to start (longer on a loaded machine); the schedule is what is tested
      await snap.whenReady();
      const r = rng(11);
      const clock = { now: T0, id: 0 };
      const seen = new Set<number>();
      // traffic until two snapshots have appeared (bounded): how long one takes depends on the machine's load
      for (let round = 0; seen.size < 2 && round < 600; round++) {
        await traffic(engine, store, r, 40, clock);
        await new Promise((res) => setTimeout(res, 30));
        const f = store.latestSnapshotFile!();
        if (f) seen.add(f.seq);
      }
      assert.ok(seen.size >= 2, `snapshots appeared while traffic ran (seqs ${[...seen].join(',')})`);
      assert.equal(s.calls, 0, 'the main thread never called engine.snapshot()');
      // last snapshot on stop: a normal restart replays nothing
      await snap.stop();
      // the newest two are kept, files and entries agree, no temporary file is left (none is being written now)
      const files = readdirSync(join(dir, 'snapshots'));
      assert.ok(files.length <= 2 && files.every((f) => f.endsWith('.snap')), `files: ${files.join(',')}`);
      assert.deepEqual(store.stats().snapshots.map((q) => `${String(q).padStart(16, '0')}.snap`).sort(), [...files].sort());
      assert.equal(s.calls, 0);
      await store.close();
      const again = await openStore(dir, { retention: { intervalMs: 0 } });
      const rec = await openDurableEngine({ store: again, configText: STADIUM, core });
      assert.equal(rec.replayed, 0);
      assert.equal(rec.fromSnapshot, again.lastSeq);
      assert.deepEqual(engineState(rec.engine, N_CREDS), engineState(engine, N_CREDS));
      await again.close();
    });

    it('a snapshot written by the replica restores to exactly the live engine at that seq (config change, pending passages)', async () => {
      const dir = tmp();
      const store = await openStore(dir, { retention: { intervalMs: 0 } });
      const { engine } = await openDurableEngine({ store, configText: STADIUM, core });
      const snap = startSnapshotter(store, engine, { everyEvents: 1e9, intervalMs: 1e9, checkMs: 5, onStop: false, inlineBelow: 0 }) as ReplicaSnapshotter;
      const r = rng(core === 'wasm' ? 21 : 22);
      const clock = { now: T0, id: 0 };
      for (let step = 0; step < 4; step++) {
        await traffic(engine, store, r, 150, clock);
        if (step === 1) {
          // a configuration reload, journaled as the server does
          engine.reconfigure(loadSiteText(STADIUM_SMALL_VIP).site);
          await store.append([{ at: engine.clock, kind: 'config', op: { t: 'config', text: STADIUM_SMALL_VIP } } as EventRecord], []);
        }
        // a pending passage (commitOn: passage at the turnstiles) at the very end
        await decideFrame(engine, store, 'turnstiles', [{ t: 'badge', id: ++clock.id, cred: 1001 + step, reader: 'turnstile-1-in' }], clock.now);
        const seq = store.lastSeq;
        const expected = engineState(engine, N_CREDS);
        assert.equal(await snap.snapshotNow(), seq);
        const got = fromNewestSnapshot(store, core);
        assert.equal(got.seq, seq);
        assert.ok(engine.core.size() > 300);
        assert.equal(got.engine.core.size(), engine.core.size());
        assert.deepEqual(engineState(got.engine, N_CREDS), expected, `state at seq ${seq}`);
      }
      await snap.stop();
      await store.close();
    });
  });
}

describe('snapshot worker failures', () => {
  it('a terminated worker does not affect decisions; it is restarted and snapshots resume', async () => {
    const dir = tmp();
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (_o: object, m?: string) => { warnings.push(m ?? ''); } };
    const snap = startSnapshotter(store, engine, { everyEvents: 1e9, intervalMs: 1e9, checkMs: 5, onStop: false, restartMs: 200, log, inlineBelow: 0 }) as ReplicaSnapshotter;
    await snap.whenReady();
    const r = rng(31);
    const clock = { now: T0, id: 0 };
    await traffic(engine, store, r, 60, clock);
    const first = await snap.snapshotNow();
    assert.equal(first, store.lastSeq);

    const w = snap.worker!;
    const exited = new Promise((res) => w.once('exit', res));
    await w.terminate();
    await exited;
    assert.equal(snap.worker, undefined);
    // decisions go on while there is no worker, and a snapshot then is simply skipped
    const t = performance.now();
    await traffic(engine, store, r, 60, clock);
    assert.ok(performance.now() - t < 5000);
    assert.equal(await snap.snapshotNow(), undefined);
    assert.ok(warnings.some((m) => /snapshot worker ended/.test(m)), warnings.join('|'));

    await snap.whenReady();
    assert.equal(snap.restarts, 1);
    await traffic(engine, store, r, 60, clock);
    const seq = store.lastSeq;
    assert.equal(await snap.snapshotNow(), seq);
    const got = fromNewestSnapshot(store, 'wasm');
    assert.equal(got.seq, seq);
    assert.deepEqual(engineState(got.engine, N_CREDS), engineState(engine, N_CREDS));
    await snap.stop();
    await store.close();
  });

  it('while the worker starts, only a small engine is snapshotted inline', async () => {
    const dir = tmp();
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
    const s = spy(engine);
    const clock = { now: T0, id: 0 };
    await traffic(engine, store, rng(51), 20, clock);
    const n = engine.core.size();
    // too large for the fallback: waits for the worker
    const big = startSnapshotter(store, engine, { everyEvents: 1e9, intervalMs: 1e9, onStop: false, inlineBelow: n }) as ReplicaSnapshotter;
    assert.equal(await big.snapshotNow(), store.lastSeq);
    assert.equal(s.calls, 0);
    await big.stop();
    await traffic(engine, store, rng(52), 20, clock);
    // small enough: taken at once, before the worker is up
    const small = startSnapshotter(store, engine, { everyEvents: 1e9, intervalMs: 1e9, onStop: false, inlineBelow: n + 1000 }) as ReplicaSnapshotter;
    const p = small.snapshotNow();
    assert.equal(s.calls, 1);
    assert.equal(await p, store.lastSeq);
    assert.deepEqual(engineState(fromNewestSnapshot(store, 'wasm').engine, N_CREDS), engineState(engine, N_CREDS));
    await small.stop();
    await store.close();
  });

  it('a worker far behind a snapshot that already exists restores it instead of replaying, and its snapshot is still exact', async () => {
    for (const [jumpGap, jumps] of [[50, true], [undefined, false]] as const) {
      const dir = tmp();
      const store = await openStore(dir, { retention: { intervalMs: 0 } });
      const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
      const clock = { now: T0, id: 0 };
      const infos: { obj: object; msg?: string | undefined }[] = [];
      const log = { info: (obj: object, msg?: string) => { infos.push({ obj, msg }); }, warn: (obj: object, msg?: string) => { infos.push({ obj, msg }); } };
      // fed once when ready (the journal is short then), never again (checkMs); no inline snapshots
      const start = store.lastSeq;
      const snap = startSnapshotter(store, engine, { everyEvents: 1e9, intervalMs: 1e9, checkMs: 2 ** 30, onStop: false, inlineBelow: 0, log, ...(jumpGap === undefined ? {} : { jumpGap }) }) as ReplicaSnapshotter;
      await snap.whenReady();
      // the journal grows and a snapshot appears (as the main thread's inline one of a server started on a long journal)
      await traffic(engine, store, rng(61), 20, clock);
      const mid = store.lastSeq;
      assert.ok(mid - start > 50, `${mid - start} records`);
      await store.saveSnapshot(mid, engine.snapshot(), store.configText(), engine.clock);
      await traffic(engine, store, rng(62), 10, clock);
      assert.equal(await snap.snapshotNow(), store.lastSeq);
      const jumped = infos.filter((i) => i.msg === 'snapshot worker: restored a newer snapshot instead of replaying to it');
      if (jumps) {
        assert.equal(jumped.length, 1, JSON.stringify(infos));
        const o = jumped[0]!.obj as { from: number; to: number };
        assert.ok(o.from <= start, `from ${o.from}`);
        assert.equal(o.to, mid);
      } else assert.equal(jumped.length, 0, 'the default gap (1 M records) is not reached by a few hundred');
      // either way the worker's snapshot is the live engine
      const newest = fromNewestSnapshot(store, 'wasm');
      assert.equal(newest.seq, store.lastSeq);
      assert.deepEqual(engineState(newest.engine, N_CREDS), engineState(engine, N_CREDS));
      await snap.stop();
      await store.close();
    }
  });

  it('memory stores keep snapshotting inline, as before', async () => {
    const store = await openStore(':memory:', { retention: { intervalMs: 0 } });
    const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
    const snap = startSnapshotter(store, engine, { everyEvents: 1e9, intervalMs: 1e9, onStop: false });
    assert.equal((snap as Partial<ReplicaSnapshotter>).kind, undefined);
    await traffic(engine, store, rng(41), 20, { now: T0, id: 0 });
    assert.equal(await snap.snapshotNow(), store.lastSeq);
    assert.equal(store.latestSnapshot()!.seq, store.lastSeq);
    await snap.stop();
    await store.close();
  });
});

describe('snapshot worker in the server', () => {
  it('a server on LMDB snapshots through its worker; a clean restart replays nothing', async () => {
    const dir = tmp();
    const logger = pino({ level: 'silent' });
    const s1 = await startServer({ configText: STADIUM, data: dir, port: 0, logger });
    const res = await fetch(`${s1.url}/v1/decide`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer demo-gate-north-token' },
      body: JSON.stringify({ t: 'badge', id: 1, cred: 4242, reader: 'gate-north-in' }),
    });
    assert.equal(res.status, 200, await res.text());
    await s1.close();
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    const f = store.latestSnapshotFile!();
    assert.ok(f && f.seq === store.lastSeq, 'the last snapshot (written by the worker on close) covers the whole journal');
    const rec = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
    assert.equal(rec.replayed, 0);
    const st = rec.engine.state({ kind: 'int', value: 4242n });
    assert.equal(rec.engine.site.areaIds[st.location], 'stadium');
    await store.close();
  });
});
