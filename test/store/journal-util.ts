/**
 * Helpers for the journal/index suites: compact groups built with the hub's
 * CompactWriter, general-path records, and a full picture of what a store
 * answers (for "same answers before and after" comparisons).
 */
import { CompactWriter, seenNone, type CompactGroup } from '../../src/store/compact-journal.js';
import type { EventRecord, IdemRecord, Store } from '../../src/store/types.js';

export const T0 = 1_767_261_600_000;
export const READERS = ['r-in', 'r-out', 'gate-2'];
export const AREAS = ['stadium', 'vip'];

/** A compact group of `n` records of `controller` with ids from `firstId`, at T0 + id ms. */
export function group(controller: string, firstId: number, n: number, salt = 0): CompactGroup {
  const w = new CompactWriter(controller);
  for (let k = 0; k < n; k++) {
    const id = firstId + k;
    const x = (id * 2654435761 + salt) >>> 0;
    const reader = w.readerIndex(READERS[x % READERS.length]!);
    const passage = x % 7 === 0;
    if (passage) { w.add(T0 + id, id, 2000 + (x % 40), 1, reader, x % 2 === 0, 0, -1, 0, [], [], seenNone()); continue; }
    const granted = x % 5 !== 0;
    const area = granted ? w.areaIndex(AREAS[x % 2]!) : -1;
    const nv = granted ? 0 : 1;
    const viol = nv ? [2 /* reentry */, 0 /* hard */, w.areaIndex(AREAS[0]!), -1, 0] : [];
    w.add(T0 + id, id, 2000 + (x % 40), 0, reader, granted, granted ? 0 : 7 /* reentry */, area, nv, viol, nv ? [0] : [], seenNone());
  }
  return w.finish();
}

/** General-path records and replies of `controller`, ids from `firstId`. */
export function general(controller: string, firstId: number, n: number): { events: EventRecord[]; idem: IdemRecord[] } {
  const events: EventRecord[] = [], idem: IdemRecord[] = [];
  for (let k = 0; k < n; k++) {
    const id = firstId + k;
    const cred = 2000 + (id % 40), reader = READERS[id % READERS.length]!;
    events.push({ at: T0 + id, kind: 'badge', controller, reader, cred: String(cred), id, grant: true, reason: 'ok', violations: [], area: 'stadium', op: { t: 'badge', cred, reader, ts: T0 + id } });
    idem.push({ controller, id, reply: Uint8Array.from([0xc0 + (id % 16), id & 255, (id >> 8) & 255]) });
  }
  return { events, idem };
}

/** Everything a client could ask (queries, export, idempotency), as comparable JSON. */
export function picture(s: Store, ids: [string, number][]): string {
  const creds = Array.from({ length: 40 }, (_, k) => String(2000 + k));
  const out: unknown[] = [];
  for (const c of creds) out.push(s.query({ cred: c, limit: 10_000 }).map((e) => e.seq));
  for (const r of READERS) out.push(s.query({ reader: r, limit: 10_000 }).map((e) => e.seq));
  out.push(s.query({ cred: '2003', reader: 'r-out', limit: 10_000 }).map((e) => e.seq));
  out.push(s.query({ limit: 500 }));
  out.push([...s.since(0)]);
  out.push([...s.range(T0 + 500, T0 + 3000)].map((e) => e.seq));
  out.push(ids.map(([c, id]) => Buffer.from(s.getIdem(c, id) ?? []).toString('hex')));
  return JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
