/**
 * The journal applier (replica.ts) takes compact groups whole (Store.sinceGroups, no record objects):
 * the engine it builds must be byte for byte the one it builds record by record (Store.since), for
 * whole journals, for catch-ups that stop inside a group (upTo, max), and for a group whose reader
 * names the site does not know or refuses.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { JournalReplica } from '../../src/store/replica.js';
import { CompactWriter, seenNone } from '../../src/store/compact-journal.js';
import type { Store } from '../../src/store/types.js';
import { general, group, T0 } from './journal-util.js';

const SITE = `site: replica-groups
timezone: UTC
areas:
  - { id: stadium, entry: hard, exit: soft }
  - { id: vip, parent: stadium, entry: hard, exit: hard, strict: true }
readers:
  - { id: r-in, from: outside, to: stadium, controller: c }
  - { id: r-out, from: stadium, to: outside, controller: c }
  - { id: gate-2, from: stadium, to: vip, controller: c }
controllers:
  - { id: c, token: replica-groups-controller-token }
`;

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** the same store, without sinceGroups: the applier then reads record by record */
function recordByRecord(s: Store): Store {
  return new Proxy(s, { get: (t, k) => (k === 'sinceGroups' ? undefined : Reflect.get(t, k, t)) }) as Store;
}

/** the engine image after catching up in steps of (upTo, max) */
function image(s: Store, steps: [number, number][]): Buffer {
  const r = new JournalReplica(s, 'wasm', SITE);
  for (const [upTo, max] of steps) r.catchUp(upTo, max);
  r.catchUp();
  return Buffer.from(r.engine!.snapshot());
}

describe('journal applier: compact groups whole', () => {
  it('builds the same engine as record by record, whole and in uneven catch-ups', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apb-replica-groups-')); dirs.push(dir);
    const s = await openStore(dir, { retention: { intervalMs: 0 } });
    try {
      await s.saveConfig(SITE);
      let id = 1;
      for (let round = 0; round < 30; round++) {
        await s.appendCompact(group('c', id, 40, round)); id += 40;
        if (round % 4 === 0) { const g = general('c', id, 5); await s.append(g.events, g.idem); id += 5; }
      }
      // a group naming a reader the site does not have (its records apply with reader -1)
      const w = new CompactWriter('c');
      w.add(T0 + id, id, 2001, 0, w.readerIndex('no-such-reader'), true, 0, w.areaIndex('stadium'), 0, [], [], seenNone()); id++;
      await s.appendCompact(w.finish());
      // and one naming a reader id no site could have (over the id bound): not replayable, skipped
      const bad = new CompactWriter('c');
      bad.add(T0 + id, id, 2002, 0, bad.readerIndex('x'.repeat(5000)), true, 0, bad.areaIndex('stadium'), 0, [], [], seenNone()); id++;
      bad.add(T0 + id, id, 2003, 0, bad.readerIndex('r-in'), true, 0, bad.areaIndex('stadium'), 0, [], [], seenNone()); id++;
      await s.appendCompact(bad.finish());
      await s.whenCommitted();
      const whole = image(s, []);
      assert.deepEqual(image(recordByRecord(s), []), whole, 'whole journal: same engine');
      const last = s.lastSeq;
      for (const steps of [[[17, Infinity], [333, 50], [700, 7]], [[Infinity, 1], [Infinity, 39], [Infinity, 41]], [[last - 3, Infinity]]] as [number, number][][]) {
        assert.deepEqual(image(s, steps), whole, `catch-ups ${JSON.stringify(steps)}: same engine`);
      }
      // and the counters agree
      const a = new JournalReplica(s, 'wasm', SITE), b = new JournalReplica(recordByRecord(s), 'wasm', SITE);
      assert.equal(a.catchUp(), b.catchUp());
      assert.equal(a.replayed, b.replayed);
      assert.equal(a.skipped, b.skipped);
      assert.equal(a.position, b.position);
      assert.ok(a.groups >= 30 && b.groups === 0, `groups applied whole: ${a.groups} and ${b.groups}`);
      assert.ok(a.replayed > 500, `${a.replayed} ops applied`);
      assert.equal(a.skipped, 1, 'the record naming an impossible reader is skipped, the rest of its group applied');
    } finally { await s.close(); }
  });
});
