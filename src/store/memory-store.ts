/**
 * The Store contract in memory: `--data :memory:` and the baseline of the
 * durable-vs-memory benchmark. Same behaviour as the LMDB store (the contract
 * suite runs over both) except that nothing survives the process, and
 * append() resolves at once (there is nothing to commit).
 *
 * The log is one array of entries: a general event record (one seq) or a
 * compact group (appendCompact: n seqs, its records materialised only when
 * read, so the fast path allocates nothing per record here either).
 */
import { ApbError } from '../errors.js';
import {
  HealthListeners, RETENTION_DEFAULTS, configOf, normalizeId, padId, validateAppend,
} from './common.js';
import type { EventPage, EventPageQuery, EventQuery, EventRecord, IdemRecord, SnapshotInfo, Store, StoreOptions, StoreStats } from './types.js';
import { cursorKey, legacySpec, pageAsc, pageDesc, pageSpec, type BatchView } from './event-cursor.js';
import { compactRecords, f64At, groupEvents, groupProblem, recordLength, type CompactGroup } from './compact-journal.js';
import { compactReply } from '../engine/wire-reply.js';
import { IdLog } from './id-log.js';
import { GroupRun } from './group-run.js';

/** a dropped snapshot's buffer is kept for the next one only from this size (below it a fresh one costs little) */
const SPARE_MIN_BYTES = 1 << 16;

/**
 * What appendCompact answers: one resolved promise for every call, so the hub handles the frames of
 * one turn as one group (fast-flight.ts) instead of one promise each.
 */
const RESOLVED: Promise<void> = Promise.resolve();

/** rough per-event size, for the size-based retention of the memory log */
const EVENT_BYTES = 160;

/** the log: general-path events, and runs of compact groups (group-run.ts: no object per group) */
type Entry = EventRecord | GroupRun;
const isRun = (x: Entry): x is GroupRun => x instanceof GroupRun;
const firstSeq = (x: Entry): number => (isRun(x) ? x.firstSeq : x.seq!);
const endSeq = (x: Entry): number => (isRun(x) ? x.endSeq : x.seq!);
/** group i of run r as the event pager (event-cursor.ts) reads it */
const groupView = (r: GroupRun, i: number): BatchView => {
  const s = r.seqOf(i);
  return { s, end: r.end(i), n: r.records(i), a0: r.firstAt(i), a1: r.lastAt(i), events: () => [...groupEvents(r.group(i), s)] };
};
const eventView = (x: EventRecord): BatchView => ({ s: x.seq!, end: x.seq!, n: 1, a0: x.at, a1: x.at, events: () => [x] });

/** a reply: the bytes (general path), or the seq of the compact record it is re-encoded from */
type Reply = Uint8Array | number;

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private log: Entry[] = [];
  /** a dropped snapshot's bytes, written over by the next snapshot (saveSnapshot) */
  private spare: Uint8Array | undefined;
  private eventCount = 0;
  /**
   * idempotency replies of the fast path whose ids rise (the usual case): controller → IdLog
   * (typed arrays, no entry object or hash insert per message).
   */
  private rising = new Map<string, IdLog>();
  /**
   * every other reply (general path, ids that do not rise): controller → normalized id → reply.
   * An entry here is newer than a rising-log entry of the same id (it came after a larger id), so
   * it is looked up first. Retention order in parallel arrays (no object per entry): the controller,
   * id and seq of each entry as appended; idemReply keeps the value so compaction only deletes an
   * entry that was not replaced since.
   */
  private idem = new Map<string, Map<number | string, Reply>>();
  private idemCtl: string[] = [];
  private idemId: (number | string)[] = [];
  private idemSeq: number[] = [];
  private idemReply: Reply[] = [];
  private idemHead = 0;
  /** per controller: largest numeric id (-1 none) and largest string id, zero-padded */
  private high = new Map<string, { num: number; big: string | undefined }>();
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

  private noteId(ctl: string, id: number | string): void {
    let h = this.high.get(ctl);
    if (!h) this.high.set(ctl, (h = { num: -1, big: undefined }));
    if (typeof id === 'number') { if (id > h.num) h.num = id; } else { const p = padId(id); if (h.big === undefined || p > h.big) h.big = p; }
  }

  private idemMap(ctl: string): Map<number | string, Reply> {
    let m = this.idem.get(ctl);
    if (!m) { m = new Map(); this.idem.set(ctl, m); }
    return m;
  }

  append(events: EventRecord[], idem: IdemRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new ApbError('storage_unavailable', 'the store is closed'));
    try { validateAppend(events, idem); } catch (e) { return Promise.reject(e); }
    for (const e of events) {
      e.seq = ++this.seq;
      this.log.push(e);
      const text = configOf(e);
      if (text !== undefined) this.config = text;
    }
    this.eventCount += events.length;
    if (events.length === 0 && idem.length > 0) this.seq++; // an idem-only append consumes a seq, as in LMDB
    let ctl = '', m: Map<number | string, Reply> | undefined;
    for (const r of idem) {
      if (m === undefined || r.controller !== ctl) { ctl = r.controller; m = this.idemMap(ctl); }
      const id = typeof r.id === 'number' ? r.id : normalizeId(r.id);
      m.set(id, r.reply);
      this.noteId(ctl, id);
      this.idemCtl.push(ctl); this.idemId.push(id); this.idemSeq.push(this.seq); this.idemReply.push(r.reply);
    }
    return Promise.resolve();
  }

  appendCompact(g: CompactGroup): Promise<void> {
    if (this.closed) return Promise.reject(new ApbError('storage_unavailable', 'the store is closed'));
    const bad = groupProblem(g);
    if (bad) return Promise.reject(new ApbError('internal', `store.appendCompact: ${bad}`));
    if (g.n === 0) return RESOLVED;
    const s = this.seq + 1;
    const bytes = g.b;
    let log = this.rising.get(g.c);
    if (!log) this.rising.set(g.c, (log = new IdLog()));
    const m = this.idem.get(g.c);
    let a1 = 0, off = 0, maxId = -1;
    for (let k = 0; k < g.n; k++) {
      const at = f64At(bytes, off), id = f64At(bytes, off + 8);
      if (at > a1) a1 = at;
      if (id > log.last) {
        log.push(id, s + k);
        if (m !== undefined && m.size > 0 && m.has(id)) m.delete(id); // an older reply of this id is replaced
      } else {
        this.idemMap(g.c).set(id, s + k);
        this.idemCtl.push(g.c); this.idemId.push(id); this.idemSeq.push(s + k); this.idemReply.push(s + k);
      }
      if (id > maxId) maxId = id;
      off += recordLength(g, off);
    }
    this.noteId(g.c, maxId);
    this.seq += g.n;
    this.eventCount += g.n;
    const last = this.log[this.log.length - 1];
    const run = last !== undefined && isRun(last) && !last.full ? last : new GroupRun();
    if (run !== last) this.log.push(run);
    run.add(g, s, f64At(bytes, 0), a1);
    return RESOLVED;
  }

  maxId(controller: string): number {
    const h = this.high.get(controller);
    if (!h) return -1;
    return h.big !== undefined ? Infinity : h.num;
  }

  /** index of the first entry whose last seq is > afterSeq */
  private after(afterSeq: number): number {
    let lo = 0, hi = this.log.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (endSeq(this.log[mid]!) <= afterSeq) lo = mid + 1; else hi = mid; }
    return lo;
  }

  getIdem(controller: string, id: number | string | bigint): Uint8Array | undefined {
    const nid = typeof id === 'number' ? id : normalizeId(id);
    const r = this.idem.get(controller)?.get(nid) ?? (typeof nid === 'number' ? this.rising.get(controller)?.find(nid) : undefined);
    if (r === undefined || r instanceof Uint8Array) return r;
    // a compact record: re-encoded from the journal entry at seq r
    const e = this.log[this.after(r - 1)];
    if (!e || !isRun(e)) return undefined;
    const i = e.after(r - 1);
    if (i === e.count || r < e.seqOf(i)) return undefined;
    let k = e.seqOf(i);
    for (const rec of compactRecords(e.group(i))) if (k++ === r) return compactReply(rec);
    return undefined;
  }

  query(q: EventQuery): EventRecord[] {
    const spec = legacySpec(q);
    return pageDesc(this.down(spec.pos), spec, undefined).events;
  }

  /** cursors die with the process, like the log itself */
  private readonly cursorSecret = cursorKey();

  page(q: EventPageQuery): EventPage {
    const spec = pageSpec(q, this.cursorSecret);
    return spec.order === 'asc' ? pageAsc(this.up(spec.pos), spec, this.cursorSecret) : pageDesc(this.down(spec.pos), spec, this.cursorSecret);
  }

  /** batches newest first, from the one holding seq pos-1 (or an older one) down */
  private *down(pos: number): Generator<BatchView> {
    for (let i = Math.min(pos === Infinity ? this.log.length : this.after(pos - 2), this.log.length - 1); i >= 0; i--) {
      const x = this.log[i]!;
      if (!isRun(x)) { yield eventView(x); continue; }
      for (let k = Math.min(pos === Infinity ? x.count : x.after(pos - 2), x.count - 1); k >= x.first; k--) yield groupView(x, k);
    }
  }

  /** batches oldest first, from the one holding seq pos+1 up */
  private *up(pos: number): Generator<BatchView> {
    for (let i = this.after(pos); i < this.log.length; i++) {
      const x = this.log[i]!;
      if (!isRun(x)) { yield eventView(x); continue; }
      for (let k = x.after(pos); k < x.count; k++) yield groupView(x, k);
    }
  }

  *since(afterSeq: number): Iterable<EventRecord> {
    for (let i = this.after(afterSeq); i < this.log.length; i++) {
      const x = this.log[i]!;
      if (!isRun(x)) { yield x; continue; }
      for (let k = x.after(afterSeq); k < x.count; k++) {
        for (const e of groupEvents(x.group(k), x.seqOf(k))) if (e.seq! > afterSeq) yield e;
      }
    }
  }

  *range(sinceAt?: number, untilAt?: number): Iterable<EventRecord> {
    for (const x of this.log) {
      if (!isRun(x)) {
        if ((sinceAt === undefined || x.at >= sinceAt) && (untilAt === undefined || x.at <= untilAt)) yield x;
        continue;
      }
      for (let k = x.first; k < x.count; k++) {
        if (sinceAt !== undefined && x.lastAt(k) < sinceAt) continue;
        for (const e of groupEvents(x.group(k), x.seqOf(k))) {
          if (sinceAt !== undefined && e.at < sinceAt) continue;
          if (untilAt !== undefined && e.at > untilAt) continue;
          yield e;
        }
      }
    }
  }

  saveSnapshot(seq: number, engineBytes: Uint8Array, configText?: string, at = this.now()): Promise<void> {
    if (this.closed) return Promise.reject(new ApbError('storage_unavailable', 'the store is closed'));
    // kept as given, not copied: callers hand over a fresh image (engine.snapshot()) and never touch
    // it again, and a copy wrote another 46 MB of fresh memory on the event loop at every snapshot of
    // a 1 M-credential engine (first-touched memory costs ~0.4 ms per MB on this kind of VM)
    const info: SnapshotInfo = { seq, at, bytes: engineBytes };
    if (configText !== undefined) info.configText = configText;
    const kept = [...this.snaps.filter((s) => s.seq !== seq), info].sort((a, b) => a.seq - b.seq).slice(-2);
    // the dropped image's buffer is the next snapshot's (takeSnapshotBuffer): at 1 M credentials an image
    // into a fresh 45 MB took 25-29 ms on the event loop, into a used one 7 ms (and fresh memory costs 7x
    // more past ~1.3 GB resident on this kind of VM); nothing reads a dropped snapshot (recovery reads the
    // kept ones synchronously)
    for (const s of this.snaps) {
      if (kept.some((k) => k.bytes.buffer === s.bytes.buffer)) continue; // still kept (itself, or a view of its buffer)
      // only a large image's own buffer (engine.snapshot's start at 0): never a small one that may share a pool
      if (s.bytes.byteOffset === 0 && s.bytes.buffer.byteLength >= SPARE_MIN_BYTES) this.spare = new Uint8Array(s.bytes.buffer);
    }
    this.snaps = kept;
    return Promise.resolve();
  }

  /** the dropped image's buffer, or an empty one (none yet: the engine then allocates with room to spare) */
  takeSnapshotBuffer(): Uint8Array {
    const b = this.spare ?? new Uint8Array(0);
    this.spare = undefined;
    return b;
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
    // whole entries first (n of them), then a run's groups from its front
    let n = 0, gone = 0, lastDeleted = -1;
    const expired = (end: number, newest: number): boolean =>
      end <= snap.seq && (newest < cutoffAt || this.eventCount - gone > maxEvents); // never what recovery replays
    while (n < this.log.length) {
      const x = this.log[n]!;
      if (!isRun(x)) {
        if (!expired(x.seq!, x.at)) break;
        gone++; lastDeleted = x.seq!; n++;
        continue;
      }
      while (!x.empty && expired(x.end(x.first), x.lastAt(x.first))) { gone += x.records(x.first); lastDeleted = x.end(x.first); x.dropFirst(); }
      if (!x.empty) break;
      n++;
    }
    if (gone === 0) return 0;
    this.log.splice(0, n);
    this.eventCount -= gone;
    while (this.idemHead < this.idemSeq.length && this.idemSeq[this.idemHead]! <= lastDeleted) {
      const h = this.idemHead++;
      const m = this.idem.get(this.idemCtl[h]!);
      if (m && m.get(this.idemId[h]!) === this.idemReply[h]) m.delete(this.idemId[h]!);
    }
    for (const log of this.rising.values()) log.trim(lastDeleted);
    if (this.idemHead > 4096 && this.idemHead * 2 > this.idemSeq.length) {
      const h = this.idemHead;
      this.idemCtl = this.idemCtl.slice(h); this.idemId = this.idemId.slice(h); this.idemSeq = this.idemSeq.slice(h); this.idemReply = this.idemReply.slice(h);
      this.idemHead = 0;
    }
    return gone;
  }

  stats(): StoreStats {
    return {
      events: this.eventCount,
      firstSeq: this.log[0] ? firstSeq(this.log[0]) : 0,
      lastSeq: this.seq,
      bytes: this.eventCount * EVENT_BYTES,
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
