/**
 * Helpers of the fast-path tests: a Store wrapper that records the compact
 * groups appended and can be broken or slowed (failing-store.ts); a
 * MessagePack writer that
 * picks among every valid encoding (ints, strs, map headers, key order)
 * so the scanner sees what other clients send; a Hub built without a
 * server.
 */
import { MemoryStore } from '../../src/store/memory-store.js';
import type { CompactGroup } from '../../src/store/compact-journal.js';
import type { Store } from '../../src/store/types.js';
import { FailingStore } from './failing-store.js';
import { Hub, type HubEvent } from '../../src/server/hub.js';
import { Metrics } from '../../src/server/metrics.js';
import { createLogger } from '../../src/server/log.js';
import { loadSiteText } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/engine.js';
import { openDurableEngine } from '../../src/store/recovery.js';


/** A FailingStore that also keeps every compact group appended, in order (the tests compare their replies with the frames' bytes). */
export class CompactStore extends FailingStore {
  readonly groups: CompactGroup[] = [];
  constructor(inner: Store = new MemoryStore({ retention: { intervalMs: 0 } })) { super(inner); }

  // not async itself: the commit resolves after as many ticks as append()'s (the stream-order comparisons depend on it)
  override appendCompact(g: CompactGroup): Promise<void> {
    if (!this.broken) this.groups.push(g);
    return super.appendCompact(g);
  }
}

export interface TestHub { hub: Hub; metrics: Metrics; store: CompactStore; events: HubEvent[]; sink: { on: boolean } }

/** A Hub over `store` (a fresh CompactStore by default) with the WASM core, as server.ts builds it. */
export function makeHub(configText: string, fastPath: boolean, store = new CompactStore()): TestHub {
  const { site } = loadSiteText(configText);
  const metrics = new Metrics();
  const events: HubEvent[] = [];
  const sink = { on: false };
  const log = createLogger('silent');
  const hub = new Hub({
    store, engine: createEngine(site, { core: 'wasm' }), configText, log, metrics,
    sink: { active: () => sink.on, emit: (ev) => { events.push(ev); }, changed: () => undefined },
    rebuild: async (t) => (await openDurableEngine({ store, configText: t, core: 'wasm' })).engine,
    retryMs: 10,
    fastPath,
  });
  return { hub, metrics, store, events, sink };
}

// ── MessagePack with a choice of encodings ──

/** how to encode: a source of small random choices (fast-check gives a seeded one) */
export type Pick = (n: number) => number;

function be(n: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = bytes - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) % 256);
  return out;
}

/** a non-negative integer in any valid integer encoding wide enough for it */
export function encUint(n: number, pick: Pick): number[] {
  const forms: number[][] = [];
  if (n < 0x80) forms.push([n]);
  if (n < 0x80) forms.push([0xd0, n]);
  if (n < 0x100) forms.push([0xcc, n]);
  if (n < 0x8000) forms.push([0xd1, ...be(n, 2)]);
  if (n < 0x10000) forms.push([0xcd, ...be(n, 2)]);
  if (n < 0x80000000) forms.push([0xd2, ...be(n, 4)]);
  if (n < 0x100000000) forms.push([0xce, ...be(n, 4)]);
  forms.push([0xcf, ...be(n, 8)], [0xd3, ...be(n, 8)]);
  // the smallest form most of the time, as most encoders write
  return pick(3) === 0 ? forms[pick(forms.length)]! : forms[0]!;
}

export function encStr(s: string, pick: Pick): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  const forms: number[][] = [];
  if (b.length < 32) forms.push([0xa0 | b.length, ...b]);
  if (b.length < 256) forms.push([0xd9, b.length, ...b]);
  forms.push([0xda, ...be(b.length, 2), ...b], [0xdb, ...be(b.length, 4), ...b]);
  return pick(4) === 0 ? forms[pick(forms.length)]! : forms[0]!;
}

export type Val = number | string | boolean | null | { float: number };

export function encVal(v: Val, pick: Pick): number[] {
  if (v === null) return [0xc0];
  if (v === true) return [0xc3];
  if (v === false) return [0xc2];
  if (typeof v === 'string') return encStr(v, pick);
  if (typeof v === 'object') { const b = Buffer.alloc(9); b[0] = 0xcb; b.writeDoubleBE(v.float, 1); return [...b]; }
  if (Number.isInteger(v) && v >= 0) return encUint(v, pick);
  if (Number.isInteger(v) && v >= -32) return [v & 0xff];
  const b = Buffer.alloc(9); b[0] = 0xcb; b.writeDoubleBE(v, 1); return [...b];
}

/** a map of `entries` (written in the order given) with a random valid map header */
export function encMap(entries: [string, Val][], pick: Pick): number[] {
  const n = entries.length;
  const heads: number[][] = [];
  if (n < 16) heads.push([0x80 | n]);
  heads.push([0xde, ...be(n, 2)], [0xdf, ...be(n, 4)]);
  const out = [...(pick(4) === 0 ? heads[pick(heads.length)]! : heads[0]!)];
  for (const [k, v] of entries) out.push(...encStr(k, pick), ...encVal(v, pick));
  return out;
}

export function encFrame(maps: number[][], batch: boolean, pick: Pick): Uint8Array {
  if (!batch) return Uint8Array.from(maps[0]!);
  const n = maps.length;
  const heads: number[][] = [];
  if (n < 16) heads.push([0x90 | n]);
  heads.push([0xdc, ...be(n, 2)], [0xdd, ...be(n, 4)]);
  const head = pick(4) === 0 ? heads[pick(heads.length)]! : heads[0]!;
  return Uint8Array.from([...head, ...maps.flat()]);
}
