import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadSiteFile } from '../../src/config/load.js';
import { movePath, isInside } from '../../src/config/tree.js';
import { diffSites } from '../../src/config/diff.js';
import { MODE_HARD, MODE_OFF, MODE_SOFT } from '../../src/config/types.js';
import { baseDoc, DEMO, load } from './util.js';

test('compileSite: dense tables of the demo stadium', () => {
  const { site } = loadSiteFile(join(DEMO, 'stadium.yaml'));
  assert.deepEqual(site.areaIds, ['outside', 'stadium', 'concourse', 'vip-lounge', 'pitch', 'control-room']);
  assert.deepEqual([...site.areaIndex], [['outside', 0], ['stadium', 1], ['concourse', 2], ['vip-lounge', 3], ['pitch', 4], ['control-room', 5]]);
  assert.deepEqual([...site.parent], [-1, 0, 1, 2, 1, 1]);
  assert.deepEqual([...site.depth], [0, 1, 2, 3, 2, 2]);
  assert.deepEqual([...site.entry], [MODE_OFF, MODE_HARD, MODE_HARD, MODE_HARD, MODE_OFF, MODE_OFF]);
  assert.deepEqual([...site.exit], [MODE_OFF, MODE_SOFT, MODE_OFF, MODE_HARD, MODE_OFF, MODE_OFF]);
  assert.deepEqual([...site.strict], [0, 0, 0, 1, 0, 0]);
  assert.deepEqual([...site.maxOccupancy], [-1, 60000, -1, 200, -1, -1]);
  assert.deepEqual([...site.presenceTimeoutMs], [0, 0, 0, 14_400_000, 0, 43_200_000]);
  assert.deepEqual([...site.commitOnPassage], [0, 0, 1, 0, 0, 0]);
  assert.deepEqual([...site.passageTimeoutMs], [0, 10_000, 8_000, 10_000, 10_000, 10_000]);
  assert.deepEqual([...site.hasSchedule], [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...site.supervision], [MODE_OFF, MODE_OFF, MODE_OFF, MODE_OFF, MODE_OFF, MODE_HARD]);
  assert.equal(site.forgetAfterMs, 604_800_000);
  assert.deepEqual(site.controllerIds, ['gate-north', 'gate-south', 'turnstiles', 'vip', 'staff']);
  const r = (id: string) => site.readerIndex.get(id)!;
  assert.equal(site.readerIds.length, 14);
  assert.equal(r('gate-north-in'), 0);
  assert.deepEqual([site.readerFrom[r('turnstile-1-in')], site.readerTo[r('turnstile-1-in')]], [1, 2]);
  assert.deepEqual([site.readerFrom[r('vip-out')], site.readerTo[r('vip-out')]], [3, 2]);
  assert.equal(site.readerController[r('vip-in')], 3);
  assert.equal(site.readerController[r('turnstile-2-out')], 2);
  assert.equal(site.reuseLockoutMs[r('turnstile-1-in')], 20_000);
  assert.equal(site.reuseLockoutMs[r('gate-north-in')], 0);
  assert.equal(site.reuseHard[r('turnstile-1-in')], 1);
  // turnstiles enter/exit the concourse (commitOn passage, 8 s); gates and the VIP door do not touch it
  assert.equal(site.readerPassageMs[r('turnstile-1-in')], 8000);
  assert.equal(site.readerPassageMs[r('turnstile-2-out')], 8000);
  assert.equal(site.readerPassageMs[r('gate-north-in')], 0);
  assert.equal(site.readerPassageMs[r('vip-in')], 0);
});

test('compileSite: readerPassageMs is the largest passageTimeout among passage areas entered or exited', () => {
  const d = baseDoc();
  d.areas = [
    { id: 'a', commitOn: 'passage', passageTimeout: 5 },
    { id: 'b', parent: 'a', commitOn: 'passage', passageTimeout: 12 },
    { id: 'c', parent: 'b', passageTimeout: 99 }, // commitOn grant: its timeout does not count
    { id: 'd', passageTimeout: 30 },
  ];
  d.readers = [
    { id: 'out-c', from: 'outside', to: 'c', controller: 'c1' }, // enters a, b, c
    { id: 'b-c', from: 'b', to: 'c', controller: 'c1' },         // enters c only
    { id: 'c-a', from: 'c', to: 'a', controller: 'c1' },         // exits c, b
    { id: 'c-d', from: 'c', to: 'd', controller: 'c1' },         // exits c, b, a; enters d
    { id: 'd-out', from: 'd', to: 'outside', controller: 'c1', reuseMode: 'soft', reuseLockout: 3 },
  ];
  const { site } = load(d);
  assert.deepEqual([...site.readerPassageMs], [12000, 0, 12000, 12000, 0]);
  assert.deepEqual([...site.reuseHard], [1, 1, 1, 1, 0]);
  assert.equal(site.reuseLockoutMs[4], 3000);
});

test('movePath: exits innermost first, enters outermost first', () => {
  const d = baseDoc();
  d.areas = [{ id: 'building' }, { id: 'lab', parent: 'building' }, { id: 'office', parent: 'building' }, { id: 'annex' }];
  const { site } = load(d);
  const [out, building, lab, office, annex] = [0, 1, 2, 3, 4];
  const cases: [number, number, number[], number[]][] = [
    [out, lab, [], [building, lab]],
    [lab, out, [lab, building], []],
    [lab, office, [lab], [office]],
    [lab, annex, [lab, building], [annex]],
    [building, lab, [], [lab]],
    [lab, building, [lab], []],
    [annex, lab, [annex], [building, lab]],
    [lab, lab, [], []],
  ];
  for (const [from, to, exited, entered] of cases) {
    assert.deepEqual(movePath(site, from, to), { exited, entered }, `${site.areaIds[from]} -> ${site.areaIds[to]}`);
  }
});

test('movePath agrees with SPEC 1 on random trees: enters what contains B but not A, exits what contains A but not B', () => {
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  for (let round = 0; round < 30; round++) {
    const n = 2 + rnd(14);
    const d = baseDoc();
    d.areas = Array.from({ length: n }, (_, i) => ({ id: `a${i + 1}`, parent: i === 0 || rnd(4) === 0 ? 'outside' : `a${1 + rnd(i)}` }));
    d.readers = [];
    const { site } = load(d);
    const ancestors = (x: number) => { const s: number[] = []; for (; x > 0; x = site.parent[x]!) s.push(x); return s; }; // innermost first
    for (let a = 0; a <= n; a++) for (let b = 0; b <= n; b++) {
      const A = ancestors(a), B = ancestors(b);
      const exited = A.filter((x) => !B.includes(x));
      const entered = B.filter((x) => !A.includes(x)).reverse();
      assert.deepEqual(movePath(site, a, b), { exited, entered });
      assert.equal(isInside(site, a, b), a === b || A.includes(b) || b === 0);
    }
  }
});

test('diffSites: added/removed/changed by id and old->new index maps', () => {
  const prev = loadSiteFile(join(DEMO, 'stadium.yaml'));
  const d = structuredClone(prev.config) as any;
  d.credentials = []; // (bigint-free clone for JSON)
  d.areas = d.areas.filter((a: any) => a.id !== 'vip-lounge');
  d.areas.unshift({ id: 'press-box', parent: 'stadium' });
  d.areas.find((a: any) => a.id === 'concourse').passageTimeout = 9;
  d.readers = d.readers.filter((r: any) => !r.id.startsWith('vip'));
  d.readers.reverse();
  d.readers.push({ id: 'press-in', from: 'stadium', to: 'press-box', controller: 'vip' });
  d.readers.find((r: any) => r.id === 'gate-south-in').reuseLockout = 5;
  d.controllers.find((c: any) => c.id === 'gate-north').token = 'rotated-long-test-token';
  d.controllers.push({ id: 'media', token: 'media-token-long-test-token' });
  const next = load(d);
  const { report, areaMap, readerMap } = diffSites(prev.site, next.site);
  assert.deepEqual(report, {
    areasAdded: ['press-box'], areasRemoved: ['vip-lounge'], areasChanged: ['concourse'],
    readersAdded: ['press-in'], readersRemoved: ['vip-in', 'vip-out'], readersChanged: ['gate-south-in'],
    controllersAdded: ['media'], controllersRemoved: [], controllersChanged: ['gate-north'],
    usersChanged: false, settingsChanged: ['credentials'], locationsDropped: 0,
  });
  // new area order: outside, press-box, stadium, concourse, pitch, control-room
  assert.deepEqual([...areaMap], [0, 2, 3, -1, 4, 5]);
  for (let i = 0; i < prev.site.readerIds.length; i++) {
    const j = readerMap[i]!;
    if (j === -1) assert.ok(prev.site.readerIds[i]!.startsWith('vip'));
    else assert.equal(next.site.readerIds[j], prev.site.readerIds[i]);
  }
  assert.equal(readerMap[0], 11); // gate-north-in is 12th of the reversed 12
  const same = diffSites(prev.site, loadSiteFile(join(DEMO, 'stadium.yaml')).site);
  assert.deepEqual(same.report, { areasAdded: [], areasRemoved: [], areasChanged: [], readersAdded: [], readersRemoved: [], readersChanged: [], controllersAdded: [], controllersRemoved: [], controllersChanged: [], usersChanged: false, settingsChanged: [], locationsDropped: 0 });
  assert.deepEqual([...same.areaMap], [0, 1, 2, 3, 4, 5]);
  d.users[0].role = 'admin';
  assert.equal(diffSites(prev.site, load(d).site).report.usersChanged, true);
  // issue 10 item 20: top-level settings (the UHPPOTE listener, webhooks, ...) are reported too
  d.uhppote = { host: '127.0.0.1', port: 60099 };
  d.webhooks = [{ url: 'http://127.0.0.1:9/hook' }];
  assert.deepEqual(diffSites(prev.site, load(d).site).report.settingsChanged, ['credentials', 'uhppote', 'webhooks']);
});
