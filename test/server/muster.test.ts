/**
 * GET /v1/areas/{area}/credentials (the muster list) on a real server and a
 * real LMDB directory: rows of the area and the areas below it with their
 * exact area, `count` equal to the occupancy GET /v1/areas reports, cursor
 * paging while badges go on (nobody twice, nobody who stayed inside
 * missing), `q` search, the CSV export, and precise errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Controller, TOKENS, http, start, tempDir } from './util.js';

const SITE = `site: muster-test
timezone: UTC
areas:
  - { id: stadium, entry: hard }
  - { id: north, parent: stadium, entry: hard }
  - { id: press, parent: north }
readers:
  - { id: g-in, from: outside, to: stadium, controller: c1 }
  - { id: g-out, from: stadium, to: outside, controller: c1 }
  - { id: n-in, from: stadium, to: north, controller: c1 }
  - { id: p-in, from: north, to: press, controller: c1 }
controllers:
  - { id: c1, token: ${TOKENS.c1}, rateLimit: 1000000 }
users:
  - { name: vera, token: ${TOKENS.viewer}, role: viewer }
`;

let srv: Awaited<ReturnType<typeof start>>;
let c1: Controller;
let dir: ReturnType<typeof tempDir>;
let id = 1;
const V = { token: TOKENS.viewer };

/** badges `creds` at `reader` in frames of 100; returns those granted */
async function badge(creds: (number | string)[], reader: string): Promise<(number | string)[]> {
  const granted: (number | string)[] = [];
  for (let i = 0; i < creds.length; i += 100) {
    const part = creds.slice(i, i + 100);
    const replies = await c1.rpc(part.map((cred) => ({ t: 'badge', id: id++, cred, reader })));
    (replies as { grant: boolean }[]).forEach((r, k) => { if (r.grant) granted.push(part[k]!); });
  }
  return granted;
}

const text = (c: number | string): string => (typeof c === 'number' ? String(c) : 's:' + encodeURIComponent(c));
const occupancy = async (area: string): Promise<number> =>
  (await http(srv.url, 'GET', '/v1/areas', V)).body.find((a: { id: string }) => a.id === area).occupancy;

before(async () => {
  dir = tempDir('apb-muster-');
  srv = await start({ data: dir.dir, configText: SITE });
  c1 = await Controller.connect(srv.ws, TOKENS.c1);
  const people = Array.from({ length: 1500 }, (_, i) => 700_000 + i);
  await badge([...people, 'Ticket-7', 'zoë', 'a,b"c'], 'g-in');
  await badge(people.filter((_, i) => i % 5 === 0), 'n-in');
  await badge(people.filter((_, i) => i % 50 === 0), 'p-in');
  await badge(['Ticket-7'], 'n-in');
});
after(async () => { await c1?.close(); await srv?.close(); dir?.cleanup(); });

test('rows of the area and the areas below it, with their exact area; count = the occupancy of GET /v1/areas', async () => {
  for (const area of ['stadium', 'north', 'press', 'outside']) {
    const all: { cred: string; area: string; since: number; reader: string | null }[] = [];
    let cursor = '', pages = 0, count = -1;
    do {
      const r = await http(srv.url, 'GET', `/v1/areas/${area}/credentials?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, V);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body).sort(), ['area', 'count', 'credentials', 'next']);
      assert.equal(r.body.area, area);
      count = r.body.count;
      all.push(...r.body.credentials);
      cursor = r.body.next ?? '';
      pages++;
    } while (cursor);
    assert.equal(count, await occupancy(area), `${area}: count is the occupancy /v1/areas reports`);
    assert.equal(all.length, count, `${area}: every counted credential is listed`);
    assert.ok(area !== 'stadium' || (count === 1503 && pages === 2), `${area}: ${count} in ${pages} pages`);
  }
  const north = (await http(srv.url, 'GET', '/v1/areas/north/credentials?limit=1000', V)).body;
  assert.equal(north.count, 300 + 1, 'every fifth person and the ticket, the press box included');
  const byCred = new Map<string, { area: string; reader: string | null; since: number }>(north.credentials.map((r: { cred: string }) => [r.cred, r]));
  assert.equal(byCred.get('700000')!.area, 'press');
  assert.equal(byCred.get('700000')!.reader, 'p-in');
  assert.equal(byCred.get('700005')!.area, 'north');
  assert.equal(byCred.get('700005')!.reader, 'n-in');
  assert.equal(byCred.get('s:Ticket-7')!.area, 'north');
  const st = (await http(srv.url, 'GET', '/v1/credentials/700005', V)).body;
  assert.equal(byCred.get('700005')!.since, st.lastMoveAt, 'since is the last move');
  const stadium = (await http(srv.url, 'GET', '/v1/areas/stadium/credentials?limit=1000', V)).body;
  assert.ok(stadium.credentials.some((r: { area: string }) => r.area === 'press'), 'the parent lists the grandchild\'s people');
});

test('paging while badges go on: nobody twice, everybody who stayed inside exactly once', async () => {
  const seen: string[] = [];
  const left = new Set<string>();
  let cursor = '', fresh = 900_000, pages = 0;
  do {
    const r = await http(srv.url, 'GET', `/v1/areas/stadium/credentials?limit=37${cursor ? `&cursor=${cursor}` : ''}`, V);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.credentials.length <= 37);
    seen.push(...r.body.credentials.map((x: { cred: string }) => x.cred));
    cursor = r.body.next ?? '';
    // between pages: some leave, new ones arrive
    const leaving = [700_001 + pages * 7, 700_003 + pages * 11].filter((c) => c < 701_500 && c % 5 !== 0);
    for (const c of await badge(leaving, 'g-out')) left.add(text(c));
    await badge([fresh++, fresh++], 'g-in');
    pages++;
  } while (cursor);
  assert.ok(pages > 30 && left.size > 30, `${pages} pages, ${left.size} left meanwhile`);
  assert.equal(new Set(seen).size, seen.length, 'nobody twice');
  for (let i = 0; i < 1500; i++) {
    const c = String(700_000 + i);
    if (!left.has(c)) assert.ok(seen.includes(c), `${c} stayed inside and is listed`);
  }
});

test('q: case-insensitive substring of the credential text (or of a string credential itself); count is of the matches', async () => {
  const q = async (s: string) => (await http(srv.url, 'GET', `/v1/areas/stadium/credentials?q=${encodeURIComponent(s)}`, V)).body;
  assert.deepEqual((await q('TICKET')).credentials.map((r: { cred: string }) => r.cred), ['s:Ticket-7']);
  assert.deepEqual((await q('zoë')).credentials.map((r: { cred: string }) => r.cred), ['s:zo%C3%AB']);
  assert.deepEqual((await q('%C3%AB')).credentials.map((r: { cred: string }) => r.cred), ['s:zo%C3%AB']);
  const nines = await q('7001');
  assert.ok(nines.count >= 50 && nines.credentials.every((r: { cred: string }) => r.cred.includes('7001')));
  // paging a search: cursors keep q, and the pages add up to count
  const all: string[] = [];
  let cursor = '';
  do {
    const r = await http(srv.url, 'GET', `/v1/areas/stadium/credentials?q=7001&limit=7${cursor ? `&cursor=${cursor}` : ''}`, V);
    all.push(...r.body.credentials.map((x: { cred: string }) => x.cred));
    cursor = r.body.next ?? '';
  } while (cursor);
  assert.equal(all.length, nines.count);
  assert.equal((await q('no such credential')).count, 0);
});

test('CSV: every matching row, text/csv, a file name; RFC 4180 quoting', async () => {
  const r = await fetch(`${srv.url}/v1/areas/north/credentials?format=csv`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^text\/csv/);
  assert.match(r.headers.get('content-disposition')!, /^attachment; filename="muster-north-\d{8}T\d{6}Z\.csv"$/);
  const lines = (await r.text()).trimEnd().split('\r\n');
  assert.equal(lines[0], 'cred,area,since_iso,reader');
  assert.equal(lines.length - 1, await occupancy('north'), 'every row, no paging');
  const row = lines.find((l) => l.startsWith('700000,'))!;
  assert.match(row, /^700000,press,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,p-in$/);
  const st = (await http(srv.url, 'GET', '/v1/credentials/700000', V)).body;
  assert.equal(row.split(',')[2], new Date(st.lastMoveAt).toISOString());
  const q = await (await fetch(`${srv.url}/v1/areas/stadium/credentials?format=csv&q=a%2Cb`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } })).text();
  assert.equal(q.split('\r\n')[1]!.split(',')[0], 's:a%2Cb%22c', 'the credential text needs no quoting');
});

test('errors: unknown area 404 unknown_area (as the area reset), bad parameters and cursors 400 bad_message naming them, viewer token required', async () => {
  const nf = await http(srv.url, 'GET', '/v1/areas/nowhere/credentials', V);
  assert.deepEqual([nf.status, nf.body.code], [404, 'unknown_area']);
  assert.match(nf.body.message, /nowhere/);
  const first = await http(srv.url, 'GET', '/v1/areas/stadium/credentials?limit=2', V);
  const c = first.body.next as string;
  const cases: [string, string][] = [
    ['stadium/credentials?limit=0', 'limit'], ['stadium/credentials?limit=1001', 'limit'], ['stadium/credentials?limit=x', 'limit'],
    [`stadium/credentials?q=${'x'.repeat(201)}`, 'q'], ['stadium/credentials?format=xml', 'format'],
    ['stadium/credentials?cursor=' + 'A'.repeat(49), 'cursor'], ['stadium/credentials?cursor=nope', 'cursor'],
    [`north/credentials?cursor=${c}`, 'cursor'], [`stadium/credentials?q=7&cursor=${c}`, 'cursor'],
    [`stadium/credentials?cursor=${c.slice(0, -1)}${c.endsWith('A') ? 'B' : 'A'}`, 'cursor'], [`${'a'.repeat(65)}/credentials`, 'area'],
  ];
  for (const [path, field] of cases) {
    const r = await http(srv.url, 'GET', `/v1/areas/${path}`, V);
    assert.equal(r.status, 400, `${path.slice(0, 80)}: ${r.text.slice(0, 200)}`);
    assert.equal(r.body.code, 'bad_message');
    assert.ok(r.body.message.startsWith(field + ':'), `${path.slice(0, 60)}: ${r.body.message}`);
    assert.ok(r.text.length < 500);
  }
  assert.equal((await http(srv.url, 'GET', `/v1/areas/stadium/credentials?limit=2&cursor=${c}`, V)).status, 200, 'the good cursor still works');
  assert.equal((await http(srv.url, 'GET', '/v1/areas/stadium/credentials')).status, 401);
  assert.equal((await http(srv.url, 'GET', '/v1/areas/stadium/credentials', { token: TOKENS.c1 })).status, 403);
  const mp = await http(srv.url, 'GET', '/v1/areas/press/credentials', { ...V, msgpack: true });
  assert.equal(mp.status, 200);
  assert.equal(mp.body.count, 30);
});
