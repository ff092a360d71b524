/**
 * A Store that delegates to the real MemoryStore but can be "broken": while
 * broken every write rejects with storage_unavailable and nothing is kept,
 * like a full or failed disk. Used to test that the server answers
 * storage_unavailable, turns unready, rebuilds its engine from what was
 * persisted and turns ready by itself once writes work again.
 */
import { ApbError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { EventPage, EventPageQuery, EventQuery, EventRecord, IdemRecord, SnapshotInfo, Store, StoreStats } from '../../src/store/types.js';
import type { CompactGroup } from '../../src/store/compact-journal.js';

export class FailingStore implements Store {
  readonly kind = 'memory' as const;
  broken = false;
  /** every append takes this long to "commit" (a slow disk) */
  delayMs = 0;
  protected fails = 0;
  protected listeners = new Set<(h: boolean, e?: Error) => void>();
  /** wraps a MemoryStore by default; any Store (an LmdbStore in the fast-path tests) works */
  constructor(readonly inner: Store = new MemoryStore()) {}

  setBroken(b: boolean): void {
    this.broken = b;
    for (const l of this.listeners) l(!b);
  }
  protected check(): void {
    if (this.broken) { this.fails++; throw new ApbError('storage_unavailable', 'disk on fire (test)'); }
  }
  async append(events: EventRecord[], idem: IdemRecord[]): Promise<void> {
    if (this.broken) { await Promise.resolve(); this.check(); }
    const p = this.inner.append(events, idem); // seq assigned now, like LMDB; resolved after the delay
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return p;
  }
  async appendCompact(g: CompactGroup): Promise<void> {
    if (this.broken) { await Promise.resolve(); this.check(); }
    const p = this.inner.appendCompact(g);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return p;
  }
  maxId(c: string): number { return this.inner.maxId(c); }
  getIdem(c: string, id: number | string | bigint): Uint8Array | undefined { return this.inner.getIdem(c, id); }
  query(q: EventQuery): EventRecord[] { return this.inner.query(q); }
  page(q: EventPageQuery): EventPage { return this.inner.page(q); }
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
