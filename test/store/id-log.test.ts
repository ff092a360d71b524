/**
 * The memory store's idempotency record (src/store/id-log.ts and its use in memory-store.ts):
 *  - IdLog alone: rising ids found by bisection, trimmed from the front, growing and reusing a
 *    trimmed front, against a Map;
 *  - the memory store against the LMDB store on random streams (fast-path groups with rising,
 *    repeated and falling ids, general-path appends with ids of the same controllers): every
 *    getIdem answer is byte-identical, so the newest record of an id answers in both.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { IdLog } from '../../src/store/id-log.js';
import { CompactWriter, seenNone, type CompactGroup } from '../../src/store/compact-journal.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { openStore } from '../../src/store/index.js';
import type { EventRecord, IdemRecord } from '../../src/store/types.js';
import { T0 } from './journal-util.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** a fast-path group of `controller` holding exactly these ids, in this order */
function groupOf(controller: string, ids: number[], salt: number): CompactGroup {
  const w = new CompactWriter(controller);
  const reader = w.readerIndex('r-in');
  for (const id of ids) {
    const granted = (id + salt) % 3 !== 0;
    w.add(T0 + id, id, 2000 + ((id * 7 + salt) % 40), 0, reader, granted, granted ? 0 : 7, granted ? w.areaIndex('stadium') : -1, 0, [], [], seenNone());
  }
  return w.finish();
}

function generalOf(controller: string, ids: number[], salt: number): { events: EventRecord[]; idem: IdemRecord[] } {
  const events: EventRecord[] = [], idem: IdemRecord[] = [];
  for (const id of ids) {
    events.push({ at: T0 + id, kind: 'badge', controller, reader: 'r-in', cred: '7', id, grant: true, reason: 'ok', violations: [], area: 'stadium' });
    idem.push({ controller, id, reply: Uint8Array.from([salt & 255, id & 255, (id >> 8) & 255]) });
  }
  return { events, idem };
}

describe('memory store idempotency record', () => {
  it('IdLog: rising ids found, trimmed from the front, grown, the trimmed front reused', () => {
    const log = new IdLog();
    const model = new Map<number, number>();
    let id = 10, seq = 0;
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < 300; k++) { id += 1 + ((k * 7) % 5); seq++; log.push(id, seq); model.set(id, seq); }
      const cut = seq - 500 - (round % 3) * 100;
      log.trim(cut);
      for (const [i, s] of model) if (s <= cut) model.delete(i);
      assert.equal(log.last, id);
      for (let probe = 0; probe <= id + 2; probe += 1 + (round % 4)) assert.equal(log.find(probe), model.get(probe), `id ${probe} after round ${round}`);
    }
    log.trim(seq);
    assert.equal(log.last, -Infinity);
    assert.equal(log.find(id), undefined);
  });

  it('answers every resend as the LMDB store does, for random mixes of paths and id orders', async () => {
    const step = fc.record({
      ctl: fc.constantFrom('c0', 'c1'),
      general: fc.boolean(),
      // mostly rising from the controller's last id, sometimes repeating or falling back
      deltas: fc.array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.integer({ min: -6, max: 0 }) }), { minLength: 1, maxLength: 6 }),
    });
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
      const dir = mkdtempSync(join(tmpdir(), 'apb-idlog-'));
      dirs.push(dir);
      const mem = new MemoryStore({ retention: { intervalMs: 0 } });
      const disk = await openStore(dir, { retention: { intervalMs: 0 } });
      try {
        const last: Record<string, number> = { c0: 100, c1: 100 };
        const sent = new Set<string>();
        let salt = 0;
        for (const s of steps) {
          const ids: number[] = [];
          for (const d of s.deltas) { last[s.ctl] = Math.max(1, last[s.ctl]! + d); ids.push(last[s.ctl]!); }
          salt++;
          if (s.general) {
            const g = generalOf(s.ctl, ids, salt);
            await mem.append(g.events, g.idem);
            await disk.append(generalOf(s.ctl, ids, salt).events, g.idem);
          } else {
            await mem.appendCompact(groupOf(s.ctl, ids, salt));
            await disk.appendCompact(groupOf(s.ctl, ids, salt));
          }
          for (const id of ids) sent.add(`${s.ctl} ${id}`);
        }
        for (const ctl of ['c0', 'c1']) {
          for (let id = 90; id <= last[ctl]! + 2; id++) {
            const a = mem.getIdem(ctl, id), b = disk.getIdem(ctl, id);
            assert.equal(a === undefined, b === undefined, `${ctl} ${id}: found in one store only`);
            if (a && b) assert.deepEqual(Buffer.from(a), Buffer.from(b), `${ctl} ${id}`);
            if (sent.has(`${ctl} ${id}`)) assert.ok(a, `${ctl} ${id} was sent`);
          }
        }
      } finally {
        await mem.close();
        await disk.close();
      }
    }), { numRuns: 25 });
  });
});
