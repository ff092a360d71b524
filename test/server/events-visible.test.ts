/**
 * Read-your-writes for GET /v1/events: once a decision has been answered
 * (its commit resolved), a query by credential or reader shows it at once,
 * even while the background indexer has not indexed it yet (LMDB store).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Controller, TOKENS, http, start, tempDir, unpack, norm } from './util.js';

test('LMDB: every answered decision is visible to GET /v1/events?cred= and ?reader= immediately', async () => {
  const tmp = tempDir();
  const srv = await start({ data: tmp.dir });
  try {
    const c = await Controller.connect(srv.ws, TOKENS.c1);
    let id = 0;
    for (let round = 0; round < 40; round++) {
      const cred = 5000 + (round % 7);
      // background frames in flight on the same socket, so the indexer always has a tail to catch up on
      const batch = Array.from({ length: 20 }, (_, k) => ({ t: 'badge', id: ++id, cred: 90000 + id * 3 + k, reader: 'g-in' }));
      c.send(batch);
      const mine = ++id;
      c.send({ t: 'badge', id: mine, cred, reader: round & 1 ? 'g-out' : 'g-in' });
      await c.nextRaw();
      const reply = norm(unpack(await c.nextRaw())) as { t: string; id: number };
      assert.equal(reply.id, mine);
      const byCred = await http(srv.url, 'GET', `/v1/events?cred=${cred}&limit=1`, { token: TOKENS.viewer });
      assert.equal(byCred.status, 200);
      assert.equal(byCred.body.events[0]?.id, mine, `round ${round}: the answered decision ${mine} is the newest event of cred ${cred}`);
      const byReader = await http(srv.url, 'GET', `/v1/events?reader=${round & 1 ? 'g-out' : 'g-in'}&limit=1`, { token: TOKENS.viewer });
      assert.equal(byReader.body.events[0]?.id, mine, `round ${round}: and of its reader`);
    }
    await c.close();
  } finally {
    await srv.close();
    tmp.cleanup();
  }
});
