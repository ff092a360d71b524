/**
 * The two store hooks of cluster mode, on a real LMDB directory (no NATS needed):
 *  - `replicate`: every journal batch is handed over in seq order with its WAL bytes, and an append
 *    resolves only once the hook's promise has (rejects when it rejects: no reply goes);
 *  - appendReplicated: a second store fed those bytes holds the same journal (same seqs, records,
 *    idempotency replies byte for byte, configuration), passes over a batch it already has and
 *    refuses one that would leave a gap.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { createEngine } from '../../src/engine/engine.js';
import { loadSiteText } from '../../src/config/load.js';
import { isApbError } from '../../src/errors.js';
import { STADIUM, decideFrame, randomMessage, rng } from '../store/util.js';

const dirs: string[] = [];
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'apb-repl-')); dirs.push(d); return d; };
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

interface Handed { s: number; e: number; payload: Uint8Array; settle: { resolve(): void; reject(e: Error): void } }

describe('store hooks of cluster mode', () => {
  it('replicate: batches in seq order; an append waits for the hook and fails with it', async () => {
    const handed: Handed[] = [];
    const store = new LmdbStore(tmp(), {
      replicate: (s, e, payload) => new Promise<void>((resolve, reject) => { handed.push({ s, e, payload: Uint8Array.from(payload), settle: { resolve, reject } }); }),
    });
    const engine = createEngine(loadSiteText(STADIUM, 'stadium').site);
    const r = rng(7);
    let id = 1;
    const frame = () => Array.from({ length: 5 }, () => randomMessage(r, 'gate-north', id++, 30, Date.now()));
    let done = false;
    const p1 = decideFrame(engine, store, 'gate-north', frame(), Date.now()).then((d) => { done = true; return d; });
    await new Promise((res) => setTimeout(res, 50)); // the WAL write is long done by now
    assert.equal(handed.length, 1);
    assert.equal(done, false, 'no reply before the hook resolves');
    handed[0]!.settle.resolve();
    await p1;
    assert.equal(done, true);

    const p2 = decideFrame(engine, store, 'gate-north', frame(), Date.now());
    await new Promise((res) => setTimeout(res, 20));
    handed[1]!.settle.reject(new Error('refused'));
    await assert.rejects(p2, /refused/);
    // seqs are contiguous across the handed batches
    assert.equal(handed[0]!.s, 1);
    assert.equal(handed[1]!.s, handed[0]!.e + 1);
    await store.close();
  });

  it('appendReplicated: the same journal, replies byte for byte; duplicates passed over, gaps refused', async () => {
    const handed: { s: number; e: number; payload: Uint8Array }[] = [];
    const leader = new LmdbStore(tmp(), { replicate: async (s, e, payload) => { handed.push({ s, e, payload: Uint8Array.from(payload) }); } });
    const engine = createEngine(loadSiteText(STADIUM, 'stadium').site);
    await leader.append([{ at: Date.now(), kind: 'config', op: { t: 'config', text: STADIUM } }], []);
    const r = rng(9);
    const ids: [string, number][] = [];
    for (let f = 0; f < 20; f++) {
      const controller = f % 2 ? 'gate-north' : 'turnstiles';
      const msgs = Array.from({ length: 4 }, (_, k) => randomMessage(r, controller, f * 10 + k, 30, Date.now()));
      for (const m of msgs) ids.push([controller, m.id as number]);
      await decideFrame(engine, leader, controller, msgs, Date.now() + f);
    }
    const follower = new LmdbStore(tmp(), {});
    for (const h of handed) await follower.appendReplicated(h.s, h.e, h.payload);
    assert.equal(follower.lastSeq, leader.lastSeq);
    assert.deepEqual([...follower.since(0)], [...leader.since(0)]);
    for (const [c, id] of ids) {
      const a = follower.getIdem(c, id), b = leader.getIdem(c, id);
      assert.ok(a && b && Buffer.from(a).equals(Buffer.from(b)), `${c}/${id}: the same reply bytes`);
    }
    assert.equal(follower.maxId('gate-north'), leader.maxId('gate-north'));
    assert.equal(follower.configText(), STADIUM);

    // a batch it already holds: passed over; one past a gap: refused with internal
    await follower.appendReplicated(handed[3]!.s, handed[3]!.e, handed[3]!.payload);
    assert.equal(follower.lastSeq, leader.lastSeq);
    const last = handed.at(-1)!;
    await assert.rejects(follower.appendReplicated(last.e + 5, last.e + 6, last.payload), (e: unknown) => isApbError(e) && e.code === 'internal');
    await leader.close();
    await follower.close();

    // and it survives a reopen (the WAL and the journal hold the replicated batches)
    const again = new LmdbStore(follower.dir, {});
    assert.equal(again.lastSeq, last.e);
    for (const [c, id] of ids.slice(0, 10)) assert.ok(again.getIdem(c, id), `${c}/${id} after reopen`);
    await again.close();
  });
});
