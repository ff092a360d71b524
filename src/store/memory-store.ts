/**
 * The Store contract in memory: `--data :memory:` and the baseline of the
 * durable-vs-memory benchmark. Same behaviour as the LMDB store (the contract
 * suite runs over both) except that nothing survives the process, and
 * append() resolves at once (there is nothing to commit).
 */
import { ApbError } from '../errors.js';
import {
  HealthListeners, RETENTION_DEFAULTS, clampLimit, configOf, redact, matches, normalizeId, validateAppend,
} from './common.js';
import type { EventQuery, EventRecord, IdemRecord, SnapshotInfo, Store, StoreOptions, StoreStats } from './types.js';

/** rough per-event size, for the size-based retention of the memory log */
const EVENT_BYTES = 160;

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private events: EventRecord[] = [];
  /**
   * idempotency replies: controller → normalized id → reply bytes (number ids hash cheaply, no key
   * string per message). Retention order in three parallel arrays (no object per entry): the
   * controller, id and seq of each entry as appended; idemReply keeps the bytes so compaction only
   * deletes an entry that was not replaced since.
   */
  private idem = new Map<string, Map<number | string, Uint8Array>>();
  private idemCtl: string[] = [];
  private idemId: (number | string)[] = [];
  private idemSeq: number[] = [];
  private idemReply: Uint8Array[] = [];
  private idemHead = 0;
  private snaps: SnapshotInfo[] = [];
  private config: string | undefined;
  private seq = 0;
  private closed = false;
  private readonly listeners = new HealthListeners();
  private readonly retention: Required<typeof RETENTION_DEFAULTS>;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: StoreOptions = {}) {
    this.retention = { ...RETENTION_DEFAULTS, ...opts.retention };
    this.now = opts.now ?? Date.now;
    if (this.retention.intervalMs > 0) {
      this.timer = setInterval(() => { void this.compact(); }, this.retention.intervalMs);
      this.timer.unref();
    }
  }

  get lastSeq(): number { return this.seq; }
  get healthy(): boolean { return !this.closed; }
  get failures(): number { return 0; }
  onHealthChange(cb: (healthy: boolean, error?: Error) => void): () => void { return this.listeners.add(cb); }

  append(events: EventRecord[], idem: IdemRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new ApbError('storage_unavailable', 'the store is closed'));
    try { validateAppend(events, idem); } catch (e) { return Promise.reject(e); }
    for (const e of events) {
      e.seq = ++this.seq;
      this.events.push(e);
      const text = configOf(e);
      if (text !== undefined) this.config = text;
    }
    if (events.length === 0 && idem.length > 0) this.seq++; // an idem-only append consumes a seq, as in LMDB
    let ctl = '', m: Map<number | string, Uint8Array> | undefined;
    for (const r of idem) {
      if (m === undefined || r.controller !== ctl) {
        ctl = r.controller;
        m = this.idem.get(ctl);
        if (!m) { m = new Map(); this.idem.set(ctl, m); }
      }
      const id = typeof r.id === 'number' ? r.id : normalizeId(r.id);
      m.set(id, r.reply);
      this.idemCtl.push(ctl); this.idemId.push(id); this.idemSeq.push(this.seq); this.idemReply.push(r.reply);
    }
    return Promise.resolve();
  }

  getIdem(controller: string, id: number | string | bigint): Uint8Array | undefined {
    return this.idem.get(controller)?.get(typeof id === 'number' ? id : normalizeId(id));
  }

  query(q: EventQuery): EventRecord[] {
    const limit = clampLimit(q);
    const out: EventRecord[] = [];
    for (let i = this.events.length - 1; i >= 0 && out.length < limit; i--) {
      const e = this.events[i]!;
      if (q.since !== undefined && e.at < q.since) break; // `at` is the engine clock: non-decreasing with seq
      if (matches(e, q)) out.push(redact(e));
    }
    return out;
  }

  *since(afterSeq: number): Iterable<EventRecord> {
    let lo = 0, hi = this.events.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.events[mid]!.seq! <= afterSeq) lo = mid + 1; else hi = mid; }
    for (let i = lo; i < this.events.length; i++) yield this.events[i]!;
  }

  *range(sinceAt?: number, untilAt?: number): Iterable<EventRecord> {
    for (const e of this.events) {
      if (sinceAt !== undefined && e.at < sinceAt) continue;
      if (untilAt !== undefined && e.at > untilAt) continue;
      yield e;
    }
  }

  saveSnapshot(seq: number, engineBytes: Uint8Array, configText?: string, at = this.now()): Promise<void> {
    if (this.closed) return Promise.reject(new ApbError('storage_unavailable', 'the store is closed'));
    const info: SnapshotInfo = { seq, at, bytes: Uint8Array.from(engineBytes) };
    if (configText !== undefined) info.configText = configText;
    this.snaps = [...this.snaps.filter((s) => s.seq !== seq), info].sort((a, b) => a.seq - b.seq).slice(-2);
    return Promise.resolve();
  }

  latestSnapshot(): SnapshotInfo | undefined { return this.snaps[this.snaps.length - 1]; }

  saveConfig(text: string): Promise<void> { this.config = text; return Promise.resolve(); }
  configText(): string | undefined { return this.config; }

  whenCommitted(): Promise<void> { return Promise.resolve(); }

  async compact(): Promise<number> {
    // recovery needs every event after the older kept snapshot (the fallback), and all of them before any
    const snap = this.snaps[0];
    if (!snap) return 0;
    const cutoffAt = this.now() - this.retention.maxAgeMs;
    const maxEvents = Math.floor(this.retention.maxBytes / EVENT_BYTES);
    let n = 0;
    while (n < this.events.length) {
      const e = this.events[n]!;
      if (e.seq! > snap.seq) break; // never what recovery replays
      if (e.at >= cutoffAt && this.events.length - n <= maxEvents) break;
      n++;
    }
    if (n === 0) return 0;
    const lastDeleted = this.events[n - 1]!.seq!;
    this.events.splice(0, n);
    while (this.idemHead < this.idemSeq.length && this.idemSeq[this.idemHead]! <= lastDeleted) {
      const h = this.idemHead++;
      const m = this.idem.get(this.idemCtl[h]!);
      if (m && m.get(this.idemId[h]!) === this.idemReply[h]) m.delete(this.idemId[h]!);
    }
    if (this.idemHead > 4096 && this.idemHead * 2 > this.idemSeq.length) {
      const h = this.idemHead;
      this.idemCtl = this.idemCtl.slice(h); this.idemId = this.idemId.slice(h); this.idemSeq = this.idemSeq.slice(h); this.idemReply = this.idemReply.slice(h);
      this.idemHead = 0;
    }
    return n;
  }

  stats(): StoreStats {
    return {
      events: this.events.length,
      firstSeq: this.events[0]?.seq ?? 0,
      lastSeq: this.seq,
      bytes: this.events.length * EVENT_BYTES,
      indexedSeq: this.seq,
      snapshots: this.snaps.map((s) => s.seq),
    };
  }

  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    return Promise.resolve();
  }
}
