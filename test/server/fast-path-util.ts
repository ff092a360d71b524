/**
 * Helpers of the fast-path tests: a Store wrapper that has the compact
 * journal methods (appendCompact, maxId) whatever the wrapped store has
 * (it uses the store's own when there, else materialises the group's
 * records with groupEvents and their replies with compactReply), and can
 * be broken or slowed like failing-store.ts; a MessagePack writer that
 * picks among every valid encoding (ints, strs, map headers, key order)
 * so the scanner sees what other clients send; a Hub built without a
 * server.
 */
import { ApbError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { compactRecords, groupEvents, type CompactGroup } from '../../src/store/compact-journal.js';
import { compactReply } from '../../src/engine/wire-reply.js';
import type { EventQuery, EventRecord, IdemRecord, SnapshotInfo, Store, StoreStats } from '../../src/store/types.js';
import { Hub, type HubEvent } from '../../src/server/hub.js';
import { Metrics } from '../../src/server/metrics.js';
import { createLogger } from '../../src/server/log.js';
import { loadSiteText } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/engine.js';
import { openDurableEngine } from '../../src/store/recovery.js';

type Compact = { appendCompact(g: CompactGroup): Promise<void>; maxId(c: string): number };

export class CompactStore implements Store {
  readonly kind = 'memory' as const;
  broken = false;
  delayMs = 0;
  /** every group appended, in order (the tests compare their replies with the frames' bytes) */
  readonly groups: CompactGroup[] = [];
  private fails = 0;
  private readonly marks = new Map<string, number>();
  private listeners = new Set<(h: boolean, e?: Error) => void>();
  constructor(readonly inner: Store = new MemoryStore({ retention: { intervalMs: 0 } })) {}

  get native(): boolean { return typeof (this.inner as Partial<Compact>).appendCompact === 'function'; }

  setBroken(b: boolean): void { this.broken = b; for (const l of this.listeners) l(!b); }
  private check(): void { if (this.broken) { this.fails++; throw new ApbError('storage_unavailable', 'disk on fire (test)'); } }
  private mark(c: string | undefined, id: number | string | undefined): void {
    if (c === undefined || id === undefined) return;
    const v = typeof id === 'number' ? id : Infinity;
    if (v > (this.marks.get(c) ?? -1)) this.marks.set(c, v);
  }

  private async settle(p: Promise<void>): Promise<void> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return p;
  }

  async append(events: EventRecord[], idem: IdemRecord[]): Promise<void> {
    if (this.broken) { await Promise.resolve(); this.check(); }
    for (const e of events) this.mark(e.controller, e.id);
    return this.settle(this.inner.append(events, idem));
  }

  async appendCompact(g: CompactGroup): Promise<void> {
    if (this.broken) { await Promise.resolve(); this.check(); }
    this.groups.push(g);
    for (const r of compactRecords(g)) this.mark(g.c, r.id);
    if (this.native) return this.settle((this.inner as unknown as Compact).appendCompact(g));
    const events = [...groupEvents(g, 0)].map((e) => { delete e.seq; return e; });
    const idem = [...compactRecords(g)].map((r) => ({ controller: g.c, id: r.id, reply: compactReply(r) }));
    return this.settle(this.inner.append(events, idem));
  }

  maxId(c: string): number {
    if (this.native) return (this.inner as unknown as Compact).maxId(c);
    if (!this.marks.has(c)) for (const e of this.inner.since(0)) this.mark(e.controller, e.id);
    return this.marks.get(c) ?? -1;
  }

  getIdem(c: string, id: number | string | bigint): Uint8Array | undefined { return this.inner.getIdem(c, id); }
  query(q: EventQuery): EventRecord[] { return this.inner.query(q); }
  since(after: number): Iterable<EventRecord> { return this.inner.since(after); }
  range(a?: number, b?: number): Iterable<EventRecord> { return this.inner.range(a, b); }
  async saveSnapshot(seq: number, bytes: Uint8Array, text?: string, at?: number): Promise<void> { this.check(); return this.inner.saveSnapshot(seq, bytes, text, at); }
  latestSnapshot(): SnapshotInfo | undefined { return this.inner.latestSnapshot(); }
  async saveConfig(text: string): Promise<void> { this.check(); return this.inner.saveConfig(text); }
  configText(): string | undefined { return this.inner.configText(); }
  get lastSeq(): number { return this.inner.lastSeq; }
  get healthy(): boolean { return !this.broken && this.inner.healthy; }
  get failures(): number { return this.fails; }
  onHealthChange(cb: (h: boolean, e?: Error) => void): () => void { this.listeners.add(cb); return () => this.listeners.delete(cb); }
  whenCommitted(): Promise<void> { return this.inner.whenCommitted(); }
  compact(): Promise<number> { return this.inner.compact(); }
  stats(): StoreStats { return this.inner.stats(); }
  close(): Promise<void> { return this.inner.close(); }
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
