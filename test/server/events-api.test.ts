/**
 * GET /v1/events with cursors on a real server and a real LMDB directory
 * whose D/index lags far behind: {events, next}; paging a busy log with a
 * small limit while controllers keep badging returns every record once, in
 * order, newest first and oldest first; since/until as epoch ms and as ISO
 * 8601 date-times (Z and offsets) select the same records; every bad
 * parameter is a 400 bad_message naming it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../../src/store/index.js';
import type { EventRecord, Store } from '../../src/store/types.js';
import { Controller, TOKENS, http, start, tempDir } from './util.js';

let srv: Awaited<ReturnType<typeof start>>;
let store: Store;
let c1: Controller;
let dir: ReturnType<typeof tempDir>;
let nextId = 1;
const V = { token: TOKENS.viewer };

/** one frame of `n` badges at the gates (fast path: a compact journal group), answered */
async function badges(n: number): Promise<void> {
  const frame = Array.from({ length: n }, () => { const id = nextId++; return { t: 'badge', id, cred: 5000 + (id % 60), reader: id % 3 ? 'g-in' : 'g-out' }; });
  await c1.rpc(frame);
}

before(async () => {
  dir = tempDir('apb-events-api-');
  // D/index far behind: queries read the index and the unindexed journal tail
  store = await openStore(dir.dir, { retention: { intervalMs: 0 }, indexer: { delayMs: 300, chunkEvents: 100 } });
  srv = await start({ data: dir.dir, store });
  c1 = await Controller.connect(srv.ws, TOKENS.c1);
  for (let i = 0; i < 40; i++) {
    await badges(50);
    if (i % 8 === 0) await http(srv.url, 'POST', '/v1/credentials/5003/forgive', { token: TOKENS.operator, body: { reason: `round ${i}` } });
  }
});
after(async () => { await c1?.close(); await srv?.close(); dir?.cleanup(); });

const all = (): EventRecord[] => [...store.since(0)];

async function pageAll(q: string, order: 'asc' | 'desc', limit: number): Promise<number[]> {
  const seqs: number[] = [];
  let cursor = '';
  for (let pages = 0; ; pages++) {
    const r = await http(srv.url, 'GET', `/v1/events?${q}&order=${order}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, V);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['events', 'next']);
    seqs.push(...r.body.events.map((e: EventRecord) => e.seq));
    if (order === 'desc' && r.body.next === null) return seqs;
    if (order === 'asc') {
      assert.equal(typeof r.body.next, 'string', 'asc always returns next');
      if (r.body.events.length === 0) return seqs; // caught up
    }
    if (pages % 3 === 1) await badges(5); // new events arrive between pages
    cursor = r.body.next;
    assert.ok(pages < 5000);
  }
}

test('paging a busy log: every record once, in order, both orders, while badges keep arriving', async () => {
  assert.ok(store.stats().indexedSeq < store.lastSeq, 'D/index is behind the journal');
  for (const [q, keep] of [
    ['', (_e: EventRecord) => true],
    ['cred=5003', (e: EventRecord) => e.cred === '5003'],
    ['reader=g-out', (e: EventRecord) => e.reader === 'g-out'],
  ] as const) {
    const before = all().filter(keep).map((e) => e.seq!).reverse();
    assert.ok(before.length > (q ? 20 : 2000), `${q}: ${before.length} records`);
    const desc = await pageAll(q, 'desc', q ? 3 : 97);
    assert.deepEqual(desc, before, `desc ${q}: exactly the records there were, newest first`);
    const asc = await pageAll(q, 'asc', q ? 4 : 113);
    await store.whenCommitted();
    assert.deepEqual(asc, all().filter(keep).map((e) => e.seq!), `asc ${q}: every record, oldest first, including the new ones`);
  }
});

test('since/until: epoch ms and ISO 8601 (Z, offsets, fractions) select the same records', async () => {
  const recs = all();
  const a = recs[Math.floor(recs.length / 3)]!.at, b = recs[Math.floor((2 * recs.length) / 3)]!.at;
  const want = recs.filter((e) => e.at >= a && e.at <= b).map((e) => e.seq!).reverse().slice(0, 10_000);
  const iso = (t: number, offsetMin = 0): string => {
    const d = new Date(t + offsetMin * 60_000).toISOString().replace('Z', '');
    if (!offsetMin) return d + 'Z';
    const s = offsetMin < 0 ? '-' : '+', m = Math.abs(offsetMin);
    return `${d}${s}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  };
  const forms: [string, string][] = [[String(a), String(b)], [iso(a), iso(b)], [iso(a, 120), iso(b, -330)], [iso(a, 60).replace(/:(\d\d)$/, '$1'), iso(b)]];
  for (const [since, until] of forms) {
    const r = await http(srv.url, 'GET', `/v1/events?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}&limit=10000`, V);
    assert.equal(r.status, 200, `${since} ${until}: ${r.text}`);
    assert.deepEqual(r.body.events.map((e: EventRecord) => e.seq), want, `${since} .. ${until}`);
  }
  // an ISO cursor continues an epoch query of the same instants: the filters are the instants, not their spelling
  const p1 = await http(srv.url, 'GET', `/v1/events?since=${a}&until=${b}&limit=5`, V);
  const p2 = await http(srv.url, 'GET', `/v1/events?since=${encodeURIComponent(iso(a))}&until=${encodeURIComponent(iso(b, 90))}&limit=5&cursor=${p1.body.next}`, V);
  assert.equal(p2.status, 200, p2.text);
  assert.deepEqual(p2.body.events.map((e: EventRecord) => e.seq), want.slice(5, 10));
});

test('bad parameters and cursors: 400 bad_message naming the parameter, never echoed in full', async () => {
  const first = await http(srv.url, 'GET', '/v1/events?cred=5003&limit=2', V);
  const c = first.body.next as string;
  assert.ok(c && c.length <= 64);
  const cases: [string, string][] = [
    ['since=yesterday', 'since'], ['since=2026-02-30T00:00:00Z', 'since'], ['since=2026-01-01', 'since'], ['since=2026-01-01T10:00:00', 'since'],
    ['until=2026-01-01T24:00:00Z', 'until'], ['since=' + '9'.repeat(400), 'since'], ['since=-5', 'since'], ['since=2000&until=1000', 'until'],
    ['limit=0', 'limit'], ['limit=10001', 'limit'], ['limit=1.5', 'limit'], ['order=up', 'order'],
    ['cursor=' + 'x'.repeat(65), 'cursor'], ['cursor=' + 'A'.repeat(5000), 'cursor'], ['cursor=not-a-cursor', 'cursor'], ['cursor=%00%ff', 'cursor'],
    [`cred=5004&limit=2&cursor=${c}`, 'cursor'], [`cred=5003&order=asc&cursor=${c}`, 'cursor'], [`cred=5003&since=1&cursor=${c}`, 'cursor'],
    [`cred=5003&cursor=${c.slice(0, -1)}${c.endsWith('A') ? 'B' : 'A'}`, 'cursor'],
  ];
  for (const [q, field] of cases) {
    const r = await http(srv.url, 'GET', `/v1/events?${q}`, V);
    assert.equal(r.status, 400, `${q.slice(0, 80)}: ${r.text.slice(0, 200)}`);
    assert.equal(r.body.code, 'bad_message', q.slice(0, 80));
    assert.ok(r.body.message.startsWith(field + ':'), `${q.slice(0, 80)}: ${r.body.message}`);
    assert.ok(r.text.length < 500, 'not echoed in full');
  }
  // the good cursor still works, in MessagePack too
  const ok = await http(srv.url, 'GET', `/v1/events?cred=5003&limit=2&cursor=${c}`, { ...V, msgpack: true });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.events.length, 2);
  assert.ok(ok.body.events.every((e: EventRecord) => e.cred === '5003' && e.seq! < first.body.events[1].seq));
});
