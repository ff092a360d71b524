/**
 * credentialsIn (the muster list) on both cores: paging by record position
 * while badges go on between the pages. No credential is listed twice, and
 * every credential that stayed inside the whole time is listed; one that
 * moved may or may not be. Nested areas are listed with their exact area,
 * and presence timeouts drop a credential from the list exactly when they
 * drop it from the occupancy count.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CORES, Bench, int, site, str, bin } from './harness.js';
import type { EngineCore, InsideRow } from '../../src/engine/types.js';

const SITE = site(`
areas:
  - { id: stadium, entry: hard }
  - { id: vip, parent: stadium, entry: hard, presenceTimeout: 3600 }
readers:
  - { id: in, from: outside, to: stadium, controller: c }
  - { id: out, from: stadium, to: outside, controller: c }
  - { id: vip-in, from: stadium, to: vip, controller: c }
  - { id: vip-out, from: vip, to: stadium, controller: c }
`);
const T0 = Date.UTC(2026, 5, 1, 12);

function listAll(core: EngineCore, area: number, max: number, between?: (page: number) => void): InsideRow[] {
  const out: InsideRow[] = [];
  for (let from: number | null = 0, page = 0; from !== null; page++) {
    const p = core.credentialsIn(area, from, max);
    assert.ok(p.rows.length <= max);
    out.push(...p.rows);
    from = p.next;
    between?.(page);
  }
  return out;
}

for (const factory of CORES) {
  describe(`credentialsIn (${factory.kind} core)`, () => {
    it('paging while badges go on: nobody twice, everybody who stayed inside exactly once', () => {
      const b = new Bench(SITE, factory.make(SITE));
      const stadium = b.a('stadium'), vip = b.a('vip');
      let t = T0;
      for (let i = 0; i < 3000; i++) b.badge(int(100_000 + i), 'in', t);
      for (let i = 0; i < 3000; i += 6) b.badge(int(100_000 + i), 'vip-in', t);
      assert.equal(listAll(b.core, stadium, 1000).length, b.occ('stadium'));
      assert.equal(b.occ('stadium'), 3000);
      const moved = new Set<string>();
      let fresh = 0;
      const rows = listAll(b.core, stadium, 37, (page) => {
        t += 1000;
        // between pages: people leave, new people arrive, people move inside (stadium <-> vip)
        for (let k = 0; k < 5; k++) {
          const c = 100_000 + ((page * 131 + k * 17) % 3000);
          const s = b.core.state(int(c));
          if (s.location === stadium && b.badge(int(c), k % 2 ? 'out' : 'vip-in', t).grant) moved.add(String(c));
          b.badge(int(900_000 + fresh++), 'in', t);
        }
      });
      const creds = rows.map((r) => r.cred);
      assert.equal(new Set(creds).size, creds.length, 'nobody twice');
      for (let i = 0; i < 3000; i++) {
        const c = String(100_000 + i);
        if (!moved.has(c)) assert.ok(creds.includes(c), `${c} stayed inside and is listed`);
      }
      assert.ok(moved.size > 100 && fresh > 100, `the log moved on (${moved.size} moved, ${fresh} arrived)`);
      // rows say the exact area; the list of the parent includes the child's people
      const now = listAll(b.core, stadium, 500);
      assert.equal(now.length, b.occ('stadium'));
      const inVip = listAll(b.core, vip, 64);
      assert.equal(inVip.length, b.occ('vip'));
      assert.ok(inVip.length > 300 && inVip.every((r) => r.location === vip));
      const vipSet = new Set(inVip.map((r) => r.cred));
      for (const r of now) assert.equal(r.location, vipSet.has(r.cred) ? vip : stadium, r.cred);
      for (const r of now) assert.equal(r.lastReader, b.r(vipSet.has(r.cred) ? 'vip-in' : 'in'));
    });

    it('presence timeout: dropped from the list exactly when dropped from occupancy; string and binary credentials', () => {
      const b = new Bench(SITE, factory.make(SITE));
      const vip = b.a('vip'), stadium = b.a('stadium');
      const creds = [int(7), int(2n ** 64n - 1n), str('ticket 42'), str('zoë'), bin('00ff10')];
      creds.forEach((c, i) => { b.badge(c, 'in', T0 + i); b.badge(c, 'vip-in', T0 + 1000 + i); });
      const list = (a: number) => listAll(b.core, a, 2).map((r) => r.cred);
      assert.deepEqual(list(vip), ['7', '18446744073709551615', 's:ticket%2042', 's:zo%C3%AB', 'x:00ff10']);
      assert.deepEqual(listAll(b.core, vip, 10).map((r) => r.lastMoveAt), [0, 1, 2, 3, 4].map((i) => T0 + 1000 + i));
      b.core.advance(T0 + 1000 + 3_600_000 + 1); // the first two timed out in vip (its own timeout) ...
      assert.deepEqual(list(vip), ['s:ticket%2042', 's:zo%C3%AB', 'x:00ff10']);
      assert.equal(b.occ('vip'), 3);
      assert.equal(list(stadium).length, 5, '... but the stadium (no timeout) still counts them, with their exact area');
      assert.equal(b.occ('stadium'), 5);
      assert.deepEqual(b.core.credentialsIn(99, 0, 10), { rows: [], next: null }, 'an area that does not exist lists nobody');
    });
  });
}
