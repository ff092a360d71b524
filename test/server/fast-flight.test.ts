/**
 * The fast path's frames wait for their commit in groups (fast-flight.ts), and stream events leave
 * in decision order (stream-order.ts). Unit tests of both; the hub's differential test
 * (fast-path.test.ts) and the socket's order test (controller.test.ts) hold them in a real server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, TOKENS, http, start } from './util.js';
import { FastFlight, FlightGroups } from '../../src/server/fast-flight.js';
import { StreamOrder } from '../../src/server/stream-order.js';
import type { HubEvent } from '../../src/server/hub.js';

const flight = (id: number): FastFlight => new FastFlight('c1', Float64Array.of(id), 1, Uint8Array.of(id), false, null);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function deferred(): { p: Promise<void>; resolve(): void; reject(e: unknown): void } {
  let resolve!: () => void, reject!: (e: unknown) => void;
  const p = new Promise<void>((a, b) => { resolve = a; reject = b; });
  return { p, resolve, reject };
}

describe('fast-path flight groups', () => {
  it('frames that got the same promise settle together, in arrival order, once; commit resolves after their reply is set', async () => {
    const settled: [number, boolean][] = [];
    const groups = new FlightGroups((f, ok) => { settled.push([f.meta[0]!, ok]); f.reply = f.bytes; f.done = true; });
    const a = deferred(), b = deferred();
    const fs = [1, 2, 3, 4].map(flight);
    groups.add(a.p, fs[0]!); groups.add(a.p, fs[1]!); groups.add(b.p, fs[2]!); groups.add(b.p, fs[3]!);
    assert.equal(fs[0]!.commit, fs[1]!.commit, 'one handler for the first two');
    assert.notEqual(fs[1]!.commit, fs[2]!.commit);
    b.reject(new Error('disk'));
    await turn();
    assert.deepEqual(settled, [[3, false], [4, false]]);
    a.resolve();
    assert.equal(await fs[0]!.commit, true);
    assert.deepEqual(fs[0]!.reply, Uint8Array.of(1));
    assert.deepEqual(settled, [[3, false], [4, false], [1, true], [2, true]]);
    assert.equal(await fs[3]!.commit, false);
  });

  it('a settled group is never joined, even for the same (already resolved) promise', async () => {
    const settled: number[] = [];
    const groups = new FlightGroups((f) => { settled.push(f.meta[0]!); });
    const done = Promise.resolve();
    groups.add(done, flight(1));
    groups.add(done, flight(2));
    await turn();
    assert.deepEqual(settled, [1, 2]);
    const late = flight(3);
    groups.add(done, late);
    assert.equal(await late.commit, true);
    assert.deepEqual(settled, [1, 2, 3], 'the late frame settled too, once');
  });
});

describe('stream order', () => {
  it('events leave in the order places were taken, whatever order commits settle in; a failed commit drops its own', async () => {
    const out: string[] = [];
    const order = new StreamOrder((events) => { for (const e of events) out.push(e.kind); });
    const ev = (k: string): HubEvent[] => [{ kind: k, at: 0 }];
    const p1 = order.take(ev('a')), p2 = order.take(ev('b')), p3 = order.take(ev('c')), p4 = order.take(ev('d'));
    order.settle(p3, true);
    order.settle(p2, false);
    await turn();
    assert.deepEqual(out, [], 'nothing before the first place settles');
    order.settle(p1, true);
    await turn();
    assert.deepEqual(out, ['a', 'c'], 'b was dropped, d waits');
    order.settle(p4, true);
    await turn();
    assert.deepEqual(out, ['a', 'c', 'd']);
  });
});

describe('reply order on a durable server', () => {
  it('fast-path, general-path and commit-free frames sent at once: replies in frame order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apb-order-'));
    const srv = await start({ data: join(dir, 'data') });
    try {
      const c = await Controller.connect(srv.ws, TOKENS.c1);
      // rounds of: a fast-path badge, a general-path one (`ts` keeps it off the fast path), a ping (no
      // commit); all in flight together, so later frames' commits may settle before earlier ones' replies go
      const n = 200;
      for (let i = 0; i < n; i++) {
        c.send({ t: 'badge', id: 10 + 3 * i, cred: 40000 + i, reader: 'g-in' });
        c.send({ t: 'badge', id: 11 + 3 * i, cred: 50000 + i, reader: 'g-in', ts: Date.now() });
        c.send({ t: 'ping', id: 12 + 3 * i });
      }
      const ids: number[] = [];
      for (let i = 0; i < 3 * n; i++) ids.push(Number((await c.next() as { id: number }).id));
      assert.deepEqual(ids, Array.from({ length: 3 * n }, (_, i) => 10 + i));
      const m = await http(srv.url, 'GET', '/metrics', { token: TOKENS.viewer });
      assert.match(m.text, new RegExp(`apb_fast_path_messages_total ${n}\n`), 'the plain badges took the fast path');
      await c.close();
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
