import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SiteCalendar } from '../../src/config/calendar.js';
import { loadSiteText } from '../../src/config/load.js';

const H = 3_600_000, DAY = 24 * H;
const at = (iso: string) => Date.parse(iso);

function calendar(timezone: string, areas: Record<string, unknown>[]) {
  const text = JSON.stringify({ site: 's', timezone, areas });
  const { site } = loadSiteText(text);
  return new SiteCalendar(site);
}

/** Independent check of a local wall time: "YYYY-MM-DD HH:MM" in the zone. */
function local(zone: string, t: number): string {
  const f = new Intl.DateTimeFormat('sv-SE', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return f.format(t);
}

const resets = (c: SiteCalendar, from: string, to: string) => c.resetsBetween(at(from), at(to)).map((r) => [r.area, new Date(r.at).toISOString()]);

test('resetAt on an ordinary day, winter and summer time', () => {
  const c = calendar('Europe/London', [{ id: 'a', resetAt: ['03:00'] }]);
  assert.deepEqual(resets(c, '2025-01-15T00:00Z', '2025-01-16T00:00Z'), [[1, '2025-01-15T03:00:00.000Z']]);
  assert.deepEqual(resets(c, '2025-07-15T00:00Z', '2025-07-16T00:00Z'), [[1, '2025-07-15T02:00:00.000Z']]);
});

test('resetAt in a spring-forward gap happens at the first instant after the gap', () => {
  // London 2025-03-30: 01:00 GMT -> 02:00 BST (01:00Z). 01:30 does not exist.
  const lon = calendar('Europe/London', [{ id: 'a', resetAt: ['01:30'] }]);
  assert.deepEqual(resets(lon, '2025-03-30T00:00Z', '2025-03-31T00:00Z'), [[1, '2025-03-30T01:00:00.000Z']]);
  assert.equal(local('Europe/London', at('2025-03-30T01:00Z')), '2025-03-30 02:00');
  // New York 2025-03-09: 02:00 EST -> 03:00 EDT (07:00Z). 02:30 happens at 03:00 local; 01:30 exists (EST).
  const ny = calendar('America/New_York', [{ id: 'a', resetAt: ['02:30'] }, { id: 'b', resetAt: ['01:30'] }]);
  assert.deepEqual(resets(ny, '2025-03-09T00:00Z', '2025-03-10T00:00Z'), [[2, '2025-03-09T06:30:00.000Z'], [1, '2025-03-09T07:00:00.000Z']]);
  assert.equal(local('America/New_York', at('2025-03-09T07:00Z')), '2025-03-09 03:00');
  // two reset times in one gap reach the area once
  const two = calendar('America/New_York', [{ id: 'a', resetAt: ['02:10', '02:50'] }]);
  assert.deepEqual(resets(two, '2025-03-09T00:00Z', '2025-03-10T00:00Z'), [[1, '2025-03-09T07:00:00.000Z']]);
});

test('resetAt in a fall-back overlap happens once, at the first occurrence', () => {
  // London 2025-10-26: 02:00 BST -> 01:00 GMT; 01:30 happens at 00:30Z and 01:30Z.
  const lon = calendar('Europe/London', [{ id: 'a', resetAt: ['01:30'] }]);
  assert.deepEqual(resets(lon, '2025-10-25T12:00Z', '2025-10-27T00:00Z'), [[1, '2025-10-26T00:30:00.000Z']]);
  // New York 2025-11-02: 02:00 EDT -> 01:00 EST; 01:30 EDT = 05:30Z, 01:30 EST = 06:30Z.
  const ny = calendar('America/New_York', [{ id: 'a', resetAt: ['01:30'] }]);
  assert.deepEqual(resets(ny, '2025-11-01T12:00Z', '2025-11-03T00:00Z'), [[1, '2025-11-02T05:30:00.000Z']]);
  assert.deepEqual(resets(ny, '2025-11-02T05:30Z', '2025-11-02T07:00Z'), [], 'nothing at the second 01:30');
});

test('resetsBetween: (from, to] bounds, order by instant then area', () => {
  const c = calendar('UTC', [{ id: 'a', resetAt: ['04:00', '01:00'] }, { id: 'b', resetAt: ['01:00'] }]);
  const r = at('2025-05-01T01:00Z');
  assert.deepEqual(c.resetsBetween(r - 1, r).map((x) => x.area), [1, 2]);
  assert.deepEqual(c.resetsBetween(r, r + 1), []);
  assert.deepEqual(c.resetsBetween(r, r), []);
  assert.deepEqual(c.resetsBetween(r, r - 5), []);
  assert.deepEqual(resets(c, '2025-05-01T00:00Z', '2025-05-02T02:00Z'), [
    [1, '2025-05-01T01:00:00.000Z'], [2, '2025-05-01T01:00:00.000Z'], [1, '2025-05-01T04:00:00.000Z'],
    [1, '2025-05-02T01:00:00.000Z'], [2, '2025-05-02T01:00:00.000Z'],
  ]);
  assert.deepEqual(calendar('UTC', [{ id: 'a' }]).resetsBetween(0, 10 * 365 * DAY), []);
});

test('resetsBetween over 400 days equals the union of many small spans, every one at 03:00 local', () => {
  const zone = 'America/New_York';
  const c = calendar(zone, [{ id: 'a', resetAt: ['03:00'] }, { id: 'b', resetAt: ['00:00', '12:30'] }]);
  const from = at('2025-01-01T00:00Z'), to = from + 400 * DAY;
  const all = c.resetsBetween(from, to);
  assert.equal(all.length, 400 * 3);
  for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.at < all[i]!.at || (all[i - 1]!.at === all[i]!.at && all[i - 1]!.area < all[i]!.area));
  for (const r of all) {
    const hm = local(zone, r.at).slice(11);
    assert.ok(r.area === 1 ? hm === '03:00' : hm === '00:00' || hm === '12:30', `${r.area} ${hm}`);
  }
  // the same span in uneven steps (a fresh calendar, and one reused)
  for (const cal of [c, calendar(zone, [{ id: 'a', resetAt: ['03:00'] }, { id: 'b', resetAt: ['00:00', '12:30'] }])]) {
    const pieces: { area: number; at: number }[] = [];
    let t = from, k = 0;
    while (t < to) { const next = Math.min(to, t + 1 + ((k++ * 7919) % (5 * H))); pieces.push(...cal.resetsBetween(t, next)); t = next; }
    assert.deepEqual(pieces, all);
  }
});

test('schedule windows: from <= local < to; an overnight window belongs to the day it starts on', () => {
  const c = calendar('Europe/London', [
    { id: 'always' },
    { id: 'night', schedule: [{ days: ['fri'], from: '22:00', to: '06:00' }] },
    { id: 'office', schedule: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }] },
  ]);
  // 2025-01-10 is a Friday; London is on GMT then, so local = UTC.
  const cases: [string, boolean, boolean][] = [
    ['2025-01-10T21:59:59.999Z', false, false],
    ['2025-01-10T22:00:00.000Z', true, false],
    ['2025-01-11T05:59:59.999Z', true, false],
    ['2025-01-11T06:00:00.000Z', false, false],
    ['2025-01-09T23:00:00.000Z', false, false], // Thursday night
    ['2025-01-11T23:00:00.000Z', false, false], // Saturday night
    ['2025-01-12T01:00:00.000Z', false, false], // Sunday early (the window started Friday only)
    ['2025-01-10T08:00:00.000Z', false, true],
    ['2025-01-10T17:59:00.000Z', false, true],
    ['2025-01-10T18:00:00.000Z', false, false],
    ['2025-01-11T12:00:00.000Z', false, false], // Saturday
  ];
  for (const [iso, night, office] of cases) {
    assert.equal(c.scheduleActive(1, at(iso)), true);
    assert.equal(c.scheduleActive(2, at(iso)), night, `night ${iso}`);
    assert.equal(c.scheduleActive(3, at(iso)), office, `office ${iso}`);
  }
  // summer: local = UTC+1
  assert.equal(c.scheduleActive(3, at('2025-07-04T07:00Z')), true);
  assert.equal(c.scheduleActive(3, at('2025-07-04T06:59Z')), false);
});

test('nextScheduleChange walks the window edges; Infinity when nothing ever changes', () => {
  const c = calendar('Europe/London', [{ id: 'night', schedule: [{ days: ['fri'], from: '22:00', to: '06:00' }] }]);
  let t = at('2025-01-08T12:00Z');
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) { t = c.nextScheduleChange(t); seen.push(new Date(t).toISOString()); }
  assert.deepEqual(seen, ['2025-01-10T22:00:00.000Z', '2025-01-11T06:00:00.000Z', '2025-01-17T22:00:00.000Z', '2025-01-18T06:00:00.000Z']);
  assert.equal(calendar('UTC', [{ id: 'a' }]).nextScheduleChange(0), Infinity);
  const whole = calendar('UTC', [{ id: 'a', schedule: [
    { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '12:00' },
    { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '12:00', to: '00:00' }] }]);
  assert.equal(whole.nextScheduleChange(at('2025-01-01T00:00Z')), Infinity);
  assert.equal(whole.scheduleActive(1, at('2025-01-01T12:00Z')), true);
});

test('nextScheduleChange finds exactly the minutes where the state flips, across DST both ways', () => {
  for (const [zone, start] of [['America/New_York', '2025-10-29T00:00Z'], ['America/New_York', '2025-03-05T00:00Z'], ['Europe/London', '2025-10-22T00:00Z'], ['Europe/London', '2025-03-26T00:00Z']] as const) {
    const c = calendar(zone, [
      { id: 'a', schedule: [{ days: ['sun'], from: '01:00', to: '01:45' }, { days: ['wed'], from: '23:00', to: '02:30' }] },
      { id: 'b', schedule: [{ days: ['sun'], from: '01:30', to: '03:00' }, { days: ['sat', 'sun'], from: '02:15', to: '02:20' }] },
    ]);
    const state = (t: number) => `${c.scheduleActive(1, t)}${c.scheduleActive(2, t)}`;
    const t0 = at(start), t1 = t0 + 8 * DAY;
    const brute: number[] = [];
    for (let t = t0 + 60_000; t <= t1; t += 60_000) if (state(t) !== state(t - 60_000)) brute.push(t);
    const walked: number[] = [];
    for (let t = c.nextScheduleChange(t0); t <= t1; t = c.nextScheduleChange(t)) walked.push(t);
    assert.deepEqual(walked.map((x) => new Date(x).toISOString()), brute.map((x) => new Date(x).toISOString()), `${zone} ${start}`);
    assert.ok(brute.length >= 6);
  }
});

test('half-hour zones and half-hour DST shifts (Asia/Kolkata, Australia/Lord_Howe)', () => {
  const ind = calendar('Asia/Kolkata', [{ id: 'a', resetAt: ['00:00'] }]);
  assert.deepEqual(resets(ind, '2025-06-01T00:00Z', '2025-06-02T00:00Z'), [[1, '2025-06-01T18:30:00.000Z']]);
  // Lord Howe 2025-10-05: 02:00 (+10:30) -> 02:30 (+11); 02:15 does not exist and happens at 02:30 local.
  const lh = calendar('Australia/Lord_Howe', [{ id: 'a', resetAt: ['02:15'] }]);
  const got = lh.resetsBetween(at('2025-10-04T12:00Z'), at('2025-10-05T12:00Z'));
  assert.equal(got.length, 1);
  assert.equal(local('Australia/Lord_Howe', got[0]!.at), '2025-10-05 02:30');
  assert.equal(local('Australia/Lord_Howe', got[0]!.at - 1), '2025-10-05 01:59');
});
