/**
 * The hub's fast path (hub.fastFrame: native badge/passage frames scanned
 * from their bytes, replies from templates, compact journal groups) must be
 * indistinguishable from the general path: a differential test drives the
 * same random frames (every MessagePack encoding, mixed with frames the
 * fast path must refuse: unknown or foreign readers, ts, extra keys,
 * string/float/64-bit values, pings, offline uploads, resends, falling ids)
 * through a Hub with the fast path and one without, on the same clock, and
 * demands identical reply bytes for every frame, identical journals
 * (store.since(), field for field), identical idempotent replies, stream
 * events, metrics and engine state. Then: the fast path is really taken
 * (apb_fast_path_messages_total, also through a real server socket), a
 * resend waits for the in-flight commit of its fast frame, a failing store
 * answers storage_unavailable and rebuilds, the rate limit still applies.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { frameReply } from '../../src/server/controller-socket.js';
import { concatArray, encodeReply, wireInt } from '../../src/server/codec.js';
import { writeId } from '../../src/server/reply-templates.js';
import { compactRecords } from '../../src/store/compact-journal.js';
import { compactReply } from '../../src/engine/wire-reply.js';
import { CompactStore, encFrame, encMap, makeHub, type Pick, type TestHub, type Val } from './fast-path-util.js';
import { Controller, TOKENS, http, siteYaml, start, until, pack, tempDir } from './util.js';
import { openStore } from '../../src/store/index.js';
import { join } from 'node:path';

const realNow = Date.now;
let clock = 1_760_000_000_000;
Date.now = () => clock;
after(() => { Date.now = realNow; });

const SITE = siteYaml();
/** the differential site: soft and hard modes of every rule, reuse lockouts, occupancy, strict, passage commits, non-ASCII reader ids */
const DIFF_SITE = `site: fast-diff
timezone: UTC
areas:
  - { id: hall, entry: hard, exit: soft, maxOccupancy: 4, resetAt: ["04:00"] }
  - { id: wing, parent: hall, entry: soft, exit: hard, strict: true, presenceTimeout: 60 }
  - { id: vault, parent: wing, entry: hard, exit: hard, strict: true, maxOccupancy: 1 }
  - { id: patio, parent: hall, entry: soft, commitOn: passage, passageTimeout: 5 }
readers:
  - { id: h-in, from: outside, to: hall, controller: c1, reuseLockout: 2, reuseMode: soft }
  - { id: h-out, from: hall, to: outside, controller: c1 }
  - { id: "tür-ein", from: hall, to: wing, controller: c1, reuseLockout: 30, reuseMode: hard }
  - { id: "ゲート", from: wing, to: hall, controller: c1 }
  - { id: v-in, from: wing, to: vault, controller: c2 }
  - { id: v-out, from: vault, to: wing, controller: c2 }
  - { id: p-in, from: hall, to: patio, controller: c2, reuseLockout: 1 }
  - { id: p-out, from: patio, to: hall, controller: c2 }
controllers:
  - { id: c1, token: ${TOKENS.c1}, rateLimit: 1000000 }
  - { id: c2, token: ${TOKENS.c2}, rateLimit: 1000000 }
`;
const OWN: Record<string, string[]> = { c1: ['h-in', 'h-out', 'tür-ein', 'ゲート'], c2: ['v-in', 'v-out', 'p-in', 'p-out'] };

function rng(seed: number): Pick {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

type Kind = 'ok' | 'unknownReader' | 'foreignReader' | 'ts' | 'extraKey' | 'strCred' | 'floatCred' | 'bigId' | 'bigCred'
  | 'ping' | 'offline' | 'resend' | 'lowId' | 'dupKey' | 'noId';
const RARE: Kind[] = ['unknownReader', 'foreignReader', 'ts', 'extraKey', 'strCred', 'floatCred', 'bigId', 'bigCred', 'ping', 'offline', 'resend', 'lowId', 'dupKey', 'noId'];

const msgArb = fc.record({
  kind: fc.oneof({ weight: 40, arbitrary: fc.constant<Kind>('ok') }, { weight: 1, arbitrary: fc.constantFrom<Kind>(...RARE) }),
  t: fc.constantFrom('badge', 'badge', 'passage'),
  reader: fc.nat(3),
  cred: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 32 + 1, 2 ** 53 - 1) }),
  gap: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(2, 200, 70000, 2 ** 32) }),
  x: fc.nat(1000),
});
const frameArb = fc.record({ ctrl: fc.constantFrom('c1', 'c1', 'c2'), batch: fc.boolean(), msgs: fc.array(msgArb, { minLength: 1, maxLength: 40 }), seed: fc.integer() });
const burstArb = fc.record({ step: fc.constantFrom(0, 1, 700, 3000, 61_000, 3_600_000), stream: fc.boolean(), frames: fc.array(frameArb, { minLength: 1, maxLength: 4 }) });

/** The bytes of a frame; `ids` is each controller's id state (shared by both hubs: the frames are the same). */
interface MsgSpec { kind: Kind; t: string; reader: number; cred: number; gap: number; x: number }
interface FrameSpec { ctrl: string; batch: boolean; msgs: MsgSpec[]; seed: number }

function build(f: FrameSpec, ids: Map<string, { next: number; used: number[] }>): Uint8Array {
  const pick = rng(f.seed);
  const st = ids.get(f.ctrl) ?? { next: 1, used: [] };
  ids.set(f.ctrl, st);
  const own = OWN[f.ctrl]!;
  const msgs = f.batch ? f.msgs : f.msgs.slice(0, 1);
  const maps = msgs.map((m) => {
    let id: Val = st.next; st.next += m.gap;
    const reader = own[m.reader % own.length]!;
    let entries: [string, Val][] = [['t', m.t], ['id', id], ['cred', m.cred], ['reader', reader]];
    const set = (k: string, v: Val): void => { const e = entries.find((x) => x[0] === k); if (e) e[1] = v; else entries.push([k, v]); };
    switch (m.kind) {
      case 'unknownReader': set('reader', 'nowhere'); break;
      case 'foreignReader': set('reader', f.ctrl === 'c1' ? 'v-in' : 'h-in'); break;
      case 'ts': set('ts', clock - m.x); break;
      case 'extraKey': set('note', 'x'); break;
      case 'strCred': set('cred', String(m.cred)); break;
      case 'floatCred': set('cred', { float: m.cred }); break;
      case 'bigId': id = 2 ** 53 + 2 * m.x; set('id', id); break;
      case 'bigCred': set('cred', 2 ** 53 + 2 * m.x); break;
      case 'ping': entries = [['t', 'ping'], ['id', id]]; break;
      case 'offline': entries = [['t', 'offline'], ['id', id], ['cred', m.cred], ['reader', reader], ['ts', clock - 5000 - m.x], ['granted', true]]; break;
      case 'resend': if (st.used.length) { id = st.used[m.x % st.used.length]!; set('id', id); } break;
      case 'lowId': id = Math.max(0, st.next - 3 - m.x); set('id', id); break;
      case 'dupKey': entries.push(['t', m.t]); break;
      case 'noId': entries = entries.filter((e) => e[0] !== 'id'); break;
    }
    if (typeof id === 'number' && Number.isSafeInteger(id)) st.used.push(id);
    // keys in any order
    for (let i = entries.length - 1; i > 0; i--) { const j = pick(i + 1); [entries[i], entries[j]] = [entries[j]!, entries[i]!]; }
    return encMap(entries, pick);
  });
  return encFrame(maps, f.batch, pick);
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function journal(h: TestHub): unknown[] { return [...h.store.since(0)]; }

async function compareAll(a: TestHub, b: TestHub, ids: Map<string, { next: number; used: number[] }>): Promise<void> {
  await a.store.whenCommitted(); await b.store.whenCommitted();
  await tick();
  assert.deepEqual(journal(a), journal(b), 'journals (since(0)) differ');
  assert.deepEqual(Buffer.from(a.hub.engine.snapshot()), Buffer.from(b.hub.engine.snapshot()), 'engine state differs');
  for (const [c, st] of ids) {
    for (const id of st.used) {
      const x = a.store.getIdem(c, id), y = b.store.getIdem(c, id);
      assert.deepEqual(x && Buffer.from(x), y && Buffer.from(y), `idempotent reply of ${c}/${id}`);
    }
  }
  assert.deepEqual(a.events, b.events, 'stream events differ');
  for (const k of ['decisions', 'violations', 'messages', 'errors'] as const) assert.deepEqual(a.metrics[k], b.metrics[k], `metrics.${k}`);
  for (const k of ['grants', 'denies', 'recentDecisions', 'storageCommits', 'engineCalls', 'lateViolations'] as const) assert.equal(a.metrics[k], b.metrics[k], `metrics.${k}`);
}

let fastTaken = 0;

/** The differential property over hubs made by `hubs` (a fast one and a general one, fresh per run). */
async function differential(hubs: () => Promise<[TestHub, TestHub]>, numRuns: number, done: (a: TestHub, b: TestHub) => Promise<void>): Promise<void> {
  await fc.assert(fc.asyncProperty(fc.array(burstArb, { minLength: 1, maxLength: 20 }), async (bursts) => {
    const [a, b] = await hubs();
    try {
      assert.equal(a.hub.fastPath, true);
      assert.equal(b.hub.fastPath, false);
      const ids = new Map<string, { next: number; used: number[] }>();
      for (const burst of bursts) {
        clock += burst.step;
        a.sink.on = b.sink.on = burst.stream;
        const frames = burst.frames.map((f) => ({ ctrl: f.ctrl, bytes: build(f, ids) }));
        // every frame of a burst is handed over in the same turn (later ones may resend ids still in flight)
        const ra = frames.map((f) => frameReply(a.hub, a.metrics, a.hub.controller(f.ctrl)!, f.bytes));
        const rb = frames.map((f) => frameReply(b.hub, b.metrics, b.hub.controller(f.ctrl)!, f.bytes));
        const xa = await Promise.all(ra), xb = await Promise.all(rb);
        for (let i = 0; i < frames.length; i++) {
          assert.equal(Buffer.from(xa[i]!).toString('hex'), Buffer.from(xb[i]!).toString('hex'), `reply to frame ${Buffer.from(frames[i]!.bytes).toString('hex')}`);
        }
      }
      await compareAll(a, b, ids);
      assert.equal(b.metrics.fastPathMessages, 0);
      fastTaken += a.metrics.fastPathMessages;
      // every compact record's re-encoded reply (what a resend of an old id gets) is what was sent
      for (const g of a.store.groups) for (const r of compactRecords(g)) assert.deepEqual(Buffer.from(compactReply(r)), Buffer.from(a.store.getIdem(g.c, r.id)!));
    } finally { await done(a, b); }
  }), { numRuns, includeErrorInReport: true });
}

test('differential (memory store): random frames give identical bytes, journals, idempotent replies, events, metrics and engine state with and without the fast path', async () => {
  fastTaken = 0;
  await differential(async () => [makeHub(DIFF_SITE, true), makeHub(DIFF_SITE, false)], 60, async () => undefined);
  assert.ok(fastTaken > 1000, `the fast path took ${fastTaken} messages`);
});

test('differential (LMDB store): the same over the durable store, whose journal holds the compact groups', async () => {
  fastTaken = 0;
  const dirs: { cleanup(): void }[] = [];
  const lmdb = async (): Promise<CompactStore> => { const t = tempDir('apb-fast-'); dirs.push(t); return new CompactStore(await openStore(join(t.dir, 'data'), { retention: { intervalMs: 0 } })); };
  try {
    await differential(async () => [makeHub(DIFF_SITE, true, await lmdb()), makeHub(DIFF_SITE, false, await lmdb())], 12, async (a, b) => { await a.store.close(); await b.store.close(); });
  } finally { for (const d of dirs) d.cleanup(); }
  assert.ok(fastTaken > 100, `the fast path took ${fastTaken} messages`);
});

test('writeId writes ids as the general encoder does', () => {
  fc.assert(fc.property(fc.oneof(fc.nat(300), fc.nat(70000), fc.integer({ min: 0, max: 2 ** 32 + 5 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), (id) => {
    const want = encodeReply({ t: 'ack', id: wireInt(id) });
    const prefix = encodeReply({ t: 'ack', id: 0 }).subarray(0, -1);
    const out = new Uint8Array(prefix.length + 9);
    out.set(prefix);
    const end = writeId(out, prefix.length, id);
    assert.deepEqual(Buffer.from(out.subarray(0, end)), Buffer.from(want));
  }), { numRuns: 2000 });
});

test('the fast path is taken for plain native frames and counted', async () => {
  const a = makeHub(SITE, true);
  const c1 = a.hub.controller('c1')!;
  const r = await frameReply(a.hub, a.metrics, c1, pack([{ t: 'badge', id: 1, cred: 9, reader: 'g-in' }, { t: 'passage', id: 2, cred: 9, reader: 'g-in' }]));
  assert.equal(a.metrics.fastPathMessages, 2);
  assert.equal(a.store.groups.length, 1);
  assert.equal(a.store.groups[0]!.n, 2);
  assert.deepEqual(Buffer.from(r), Buffer.from(concatArray([encodeReply({ t: 'decision', grant: true, reason: 'ok', violations: [], area: 'stadium', id: 1 }), encodeReply({ t: 'ack', id: 2 })])));
  // not for a ts, an adapter controller, a resent id or a falling id
  await frameReply(a.hub, a.metrics, c1, pack({ t: 'badge', id: 3, cred: 9, reader: 'g-out', ts: clock }));
  await frameReply(a.hub, a.metrics, c1, pack({ t: 'badge', id: 2, cred: 9, reader: 'g-out' }));
  await frameReply(a.hub, a.metrics, c1, pack([{ t: 'badge', id: 5, cred: 8, reader: 'g-in' }, { t: 'badge', id: 4, cred: 7, reader: 'g-in' }]));
  assert.equal(a.metrics.fastPathMessages, 2);
  await frameReply(a.hub, a.metrics, c1, pack({ t: 'badge', id: 6, cred: 9, reader: 'g-out' }));
  assert.equal(a.metrics.fastPathMessages, 3);
});

test('a resend of an id whose fast commit is in flight waits for that commit and gets the same bytes', async () => {
  const a = makeHub(SITE, true);
  a.store.delayMs = 30;
  const c1 = a.hub.controller('c1')!;
  let firstDone = false;
  const first = Promise.resolve(frameReply(a.hub, a.metrics, c1, pack([10, 11, 12].map((id) => ({ t: 'badge', id, cred: id, reader: 'g-in' })))));
  void first.then(() => { firstDone = true; });
  assert.equal(a.metrics.fastPathMessages, 3);
  const again = Promise.resolve(frameReply(a.hub, a.metrics, c1, pack({ t: 'badge', id: 11, cred: 11, reader: 'g-in' }))).then((b) => { assert.equal(firstDone, true, 'answered before the commit'); return b; });
  const [f, g] = await Promise.all([first, again]);
  assert.equal(a.metrics.fastPathMessages, 3, 'the resend took the general path');
  const one = encodeReply({ t: 'decision', grant: true, reason: 'ok', violations: [], area: 'stadium', id: 11 });
  assert.deepEqual(Buffer.from(g), Buffer.from(one));
  assert.ok(Buffer.from(f).includes(Buffer.from(one)));
  // and after the commit, from the store
  assert.deepEqual(Buffer.from(await frameReply(a.hub, a.metrics, c1, pack({ t: 'badge', id: 11, cred: 11, reader: 'g-in' }))), Buffer.from(one));
  assert.equal([...a.store.since(0)].length, 3, 'nothing decided twice');
});

test('a failing store on the fast path answers storage_unavailable with the ids, then the engine is rebuilt from the journal', async () => {
  const a = makeHub(SITE, true), b = makeHub(SITE, false);
  const run = async (h: TestHub, frame: unknown): Promise<string> => Buffer.from(await frameReply(h.hub, h.metrics, h.hub.controller('c1')!, pack(frame))).toString('hex');
  const f1 = [{ t: 'badge', id: 1, cred: 1, reader: 'g-in' }];
  const f2 = [{ t: 'badge', id: 2, cred: 2, reader: 'g-in' }, { t: 'badge', id: 3, cred: 1, reader: 'g-out' }];
  const f3 = [{ t: 'badge', id: 4, cred: 2, reader: 'g-in' }, { t: 'badge', id: 5, cred: 1, reader: 'g-out' }];
  for (const h of [a, b]) assert.ok((await run(h, f1)).length > 0);
  a.store.setBroken(true); b.store.setBroken(true);
  const ra = await run(a, f2), rb = await run(b, f2);
  assert.equal(a.metrics.fastPathMessages, 3);
  assert.equal(ra, rb);
  assert.match(Buffer.from(ra, 'hex').toString('latin1'), /storage_unavailable/);
  assert.equal(a.hub.ready, false);
  a.store.setBroken(false); b.store.setBroken(false);
  await until(() => a.hub.ready && b.hub.ready, 5000, 'recovery');
  // the failed frame left nothing behind: cred 2 may enter again, cred 1 is still inside
  const xa = await run(a, f3), xb = await run(b, f3);
  assert.equal(xa, xb);
  assert.equal(a.metrics.fastPathMessages, 5, 'the fast path is taken again after recovery');
  await compareAll(a, b, new Map([['c1', { next: 6, used: [1, 2, 3, 4, 5] }]]));
});

test('the rate limit applies: the fast path only takes a frame the bucket pays for whole', async () => {
  const a = makeHub(SITE, true), b = makeHub(SITE, false);
  const frame = (ids: number[]): Uint8Array => pack(ids.map((id) => ({ t: 'badge', id, cred: id, reader: 'l-in' })));
  const out: string[][] = [[], []];
  for (const [i, h] of [a, b].entries()) {
    const ctl = h.hub.controller('limited')!; // 5 messages/s, a burst of 5
    for (const ids of [[1, 2, 3], [4, 5, 6], [7]]) out[i]!.push(Buffer.from(await frameReply(h.hub, h.metrics, ctl, frame(ids))).toString('hex'));
  }
  assert.deepEqual(out[0], out[1]);
  assert.equal(a.metrics.fastPathMessages, 3, 'only the first frame was paid for whole');
  assert.match(Buffer.from(out[0]![1]!, 'hex').toString('latin1'), /rate_limited/);
  assert.deepEqual(a.metrics.errors, b.metrics.errors);
});

test('through a server socket: the fast path answers and /metrics counts it', async () => {
  Date.now = realNow;
  const srv = await start({ store: new CompactStore() });
  try {
    const c = await Controller.connect(srv.ws, TOKENS.c1);
    const r = await c.rpc([{ t: 'badge', id: 1, cred: 77, reader: 'g-in' }, { t: 'badge', id: 2, cred: 77, reader: 'g-in' }]);
    assert.deepEqual(r.map((x: { grant: boolean; reason: string }) => [x.grant, x.reason]), [[true, 'ok'], [false, 'reentry']]);
    assert.deepEqual(await c.rpc({ t: 'passage', id: 3, cred: 77, reader: 'g-in' }), { t: 'ack', id: 3 });
    const m = await http(srv.url, 'GET', '/metrics', { token: TOKENS.viewer });
    assert.match(m.text, /apb_fast_path_messages_total 3\n/);
    await c.close();
  } finally {
    await srv.close();
    Date.now = () => clock;
  }
});

test('a frame the core decides in two calls (its violation region fills up) answers as the general path', async () => {
  // 60 nested areas, strict and full: a badge from outside into the deepest raises ~100 violations, so the
  // core takes ~650 of a 1024-message frame per call (65536 violation words) and the hub calls it again for the rest
  const depth = 60;
  const areas = Array.from({ length: depth }, (_, i) => `  - { id: a${i}, ${i ? `parent: a${i - 1}, ` : ''}entry: soft, strict: true, maxOccupancy: 1 }`).join('\n');
  const site = `site: deep
timezone: UTC
areas:
${areas}
readers:
  - { id: deep-in, from: outside, to: a${depth - 1}, controller: c1 }
  - { id: deep-out, from: a${depth - 1}, to: outside, controller: c1 }
controllers:
  - { id: c1, token: ${TOKENS.c1}, rateLimit: 1000000 }
`;
  const a = makeHub(site, true), b = makeHub(site, false);
  a.sink.on = b.sink.on = true;
  const frame = (base: number): Uint8Array => pack(Array.from({ length: 1024 }, (_, i) => ({ t: 'badge', id: base + i, cred: i % 300, reader: i % 50 ? 'deep-in' : 'deep-out' })));
  const eng = a.hub.engine as unknown as { decideWire(n: number, now: number): number };
  const decide = eng.decideWire.bind(eng);
  let calls = 0;
  eng.decideWire = (n, now) => { calls++; return decide(n, now); };
  for (const base of [1, 2000]) {
    clock += 1000;
    const [x, y] = [await frameReply(a.hub, a.metrics, a.hub.controller('c1')!, frame(base)), await frameReply(b.hub, b.metrics, b.hub.controller('c1')!, frame(base))];
    assert.equal(Buffer.from(x).toString('hex'), Buffer.from(y).toString('hex'));
  }
  assert.equal(a.metrics.fastPathMessages, 2048);
  assert.ok(calls > 2, `the core was called ${calls} times for 2 frames`);
  assert.equal(a.store.groups.length, 2);
  await compareAll(a, b, new Map());
});

test('a site whose deepest move may raise more than 255 violations (a compact record holds 255) keeps the general path', async () => {
  const depth = 86; // 1 + 3 x 86 = 259
  const areas = Array.from({ length: depth }, (_, i) => `  - { id: a${i}${i ? `, parent: a${i - 1}` : ''} }`).join('\n');
  const site = `site: deeper
timezone: UTC
areas:
${areas}
readers:
  - { id: deep-in, from: outside, to: a${depth - 1}, controller: c1 }
  - { id: a0-in, from: outside, to: a0, controller: c1 }
controllers:
  - { id: c1, token: ${TOKENS.c1}, rateLimit: 1000000 }
`;
  const a = makeHub(site, true);
  const r = await frameReply(a.hub, a.metrics, a.hub.controller('c1')!, pack({ t: 'badge', id: 1, cred: 1, reader: 'a0-in' }));
  assert.deepEqual(Buffer.from(r), Buffer.from(encodeReply({ t: 'decision', grant: true, reason: 'ok', violations: [], area: 'a0', id: 1 })));
  assert.equal(a.metrics.fastPathMessages, 0);
});
