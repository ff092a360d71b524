/**
 * The muster list on a real server while badges stream: the page is read in
 * slices (musterSliceMs made small so a table of 40,000 credentials takes
 * many of them) with decisions answered in between. Paging a sparse area
 * while a controller keeps moving people in and out of it: nobody twice,
 * everybody who stayed inside listed, nobody who was never inside listed;
 * several pages asked at once (they queue, one scan at a time) all right;
 * and badges were decided while the pages were being read.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Controller, TOKENS, http, start } from './util.js';

const SITE = `site: muster-stream
timezone: UTC
areas:
  - { id: stadium, entry: hard }
  - { id: annex, parent: stadium }
  - { id: north, parent: stadium }
readers:
  - { id: g-in, from: outside, to: stadium, controller: c1 }
  - { id: a-in, from: stadium, to: annex, controller: c1 }
  - { id: a-out, from: annex, to: stadium, controller: c1 }
  - { id: n-in, from: stadium, to: north, controller: c1 }
controllers:
  - { id: c1, token: ${TOKENS.c1}, rateLimit: 100000000 }
users:
  - { name: vera, token: ${TOKENS.viewer}, role: viewer }
`;

const V = { token: TOKENS.viewer };
const CROWD = 40_000, ANNEX = 500, NORTH = 250;
let srv: Awaited<ReturnType<typeof start>>;
let c1: Controller, c2: Controller;
let id = 1;

async function badge(c: Controller, creds: number[], reader: string): Promise<number[]> {
  const granted: number[] = [];
  for (let i = 0; i < creds.length; i += 500) {
    const part = creds.slice(i, i + 500);
    const replies = (await c.rpc(part.map((cred) => ({ t: 'badge', id: id++, cred, reader })))) as { grant: boolean }[];
    replies.forEach((r, k) => { if (r.grant) granted.push(part[k]!); });
  }
  return granted;
}

before(async () => {
  srv = await start({ data: ':memory:', configText: SITE, musterSliceMs: 0.02 });
  c1 = await Controller.connect(srv.ws, TOKENS.c1);
  c2 = await Controller.connect(srv.ws, TOKENS.c1);
  const crowd = Array.from({ length: CROWD }, (_, i) => 1_000_000 + i);
  await badge(c1, crowd, 'g-in');
  // spread over the records: every 67th into the annex, every 131st into the north stand
  await badge(c1, crowd.filter((_, i) => i % 67 === 0).slice(0, ANNEX), 'a-in');
  await badge(c1, crowd.filter((_, i) => i % 131 === 5 && i % 67 !== 0).slice(0, NORTH), 'n-in');
});
after(async () => { await c1?.close(); await c2?.close(); await srv?.close(); });

/** every page of `area` (limit rows), the cursor followed to the end */
async function listAll(area: string, limit: number): Promise<{ creds: string[]; pages: number; count: number }> {
  const creds: string[] = [];
  let cursor = '', pages = 0, count = -1;
  do {
    const r = await http(srv.url, 'GET', `/v1/areas/${area}/credentials?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, V);
    assert.equal(r.status, 200, r.text);
    creds.push(...r.body.credentials.map((x: { cred: string }) => x.cred));
    count = r.body.count;
    cursor = r.body.next ?? '';
    pages++;
  } while (cursor);
  return { creds, pages, count };
}

test('paging a sparse area while badges stream: nobody twice, every stayer listed, nobody listed who was never inside', async () => {
  const start0 = await listAll('annex', 1000);
  assert.equal(start0.creds.length, ANNEX);
  assert.equal(start0.count, ANNEX);
  const inside = new Set(start0.creds);
  const everInside = new Set(start0.creds);
  const moved = new Set<string>();
  let decided = 0, stop = false;
  let k = 0;
  // the stream: frames of 40 badges, people leaving the annex and others entering it, until the paging is done
  const stream = (async () => {
    while (!stop) {
      const out = [...inside].slice(k % 50, (k % 50) + 3).map(Number);
      const inn = [1_000_001 + ((k * 7919) % CROWD), 1_000_002 + ((k * 104_729) % CROWD)];
      k++;
      const filler = Array.from({ length: 35 }, (_, i) => 1_000_000 + ((k * 35 + i) % CROWD));
      for (const c of await badge(c2, out, 'a-out')) { inside.delete(String(c)); moved.add(String(c)); }
      for (const c of await badge(c2, inn, 'a-in')) { inside.add(String(c)); everInside.add(String(c)); moved.add(String(c)); }
      await badge(c2, filler, 'g-in'); // denied (already inside): decisions all the same
      decided += out.length + inn.length + filler.length;
    }
  })();
  const before = decided;
  const got = await listAll('annex', 25);
  const during = decided - before;
  stop = true;
  await stream;
  assert.ok(got.pages > 10, `${got.pages} pages`);
  assert.ok(moved.size > 20, `${moved.size} moved in or out of the annex during the paging`);
  assert.ok(during > 100, `${during} badges decided while the pages were read`);
  assert.equal(new Set(got.creds).size, got.creds.length, 'nobody twice');
  for (const c of start0.creds) if (!moved.has(c)) assert.ok(got.creds.includes(c), `${c} stayed in the annex and is listed`);
  for (const c of got.creds) assert.ok(everInside.has(c), `${c} was in the annex at some point`);
  // quiet again: the list is the annex exactly, count its occupancy
  const end = await listAll('annex', 1000);
  assert.deepEqual(new Set(end.creds), inside);
  assert.equal(end.count, inside.size);
});

test('several muster pages at once (one scan at a time, in turn) while badges stream: each one right', async () => {
  let stop = false;
  const stream = (async () => {
    for (let k = 0; !stop; k++) await badge(c2, Array.from({ length: 50 }, (_, i) => 1_000_000 + ((k * 50 + i) % CROWD)), 'g-in');
  })();
  const want = { annex: await listAll('annex', 1000), north: await listAll('north', 1000) };
  const asks = ['annex', 'north', 'annex', 'north', 'stadium', 'annex'].map((area) =>
    http(srv.url, 'GET', `/v1/areas/${area}/credentials?limit=1000`, V).then((r) => ({ area, r })));
  const csv = fetch(`${srv.url}/v1/areas/north/credentials?format=csv`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } }).then((r) => r.text());
  for (const { area, r } of await Promise.all(asks)) {
    assert.equal(r.status, 200, r.text);
    const creds = r.body.credentials.map((x: { cred: string }) => x.cred);
    if (area === 'stadium') { assert.equal(creds.length, 1000); assert.equal(r.body.count, CROWD); continue; }
    assert.deepEqual(creds, want[area as 'annex' | 'north'].creds, `${area}: nobody moved, the same list`);
  }
  assert.equal((await csv).trimEnd().split('\r\n').length - 1, want.north.creds.length);
  stop = true;
  await stream;
});
