/**
 * The background indexer: reads the journal (D/data.mdb `log`) from the
 * index's high-water mark (D/index meta 'indexed') onwards and writes the
 * derived indexes (derived-index.ts) in large sorted batches, in
 * transactions of D/index only, never the journal's.
 *
 * It runs in a worker thread (index-worker.ts), so decoding the journal and
 * sorting the entries cost the main thread nothing; lmdb-js shares one LMDB
 * environment between the threads of a process, so the worker reads the
 * journal the main thread writes. `IndexLoop` is the loop itself (also run
 * inline on the main thread when `indexer: 'inline'`, for measurements and
 * as a fallback); `Indexer` is the main thread's handle.
 *
 * Pace: one D/index transaction at most every INTERVAL_MS while the indexer
 * keeps up (so at low load the index is not rewritten per event), back to
 * back while it is behind, CHUNK_EVENTS journal records per transaction.
 * Between them, the by-credential runs are merged (name-runs.ts) in steps of
 * at most about MAINTAIN_MS: indexing new records always comes first.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-thread.js';
import type { Database } from 'lmdb';
import { ChunkEntries, DerivedIndex, batchEndOf, entriesOf, type BatchSpan, type IndexableBatch } from './derived-index.js';

export const CHUNK_EVENTS = 65_536;
export const INTERVAL_MS = 100;
/** background merging at a time, between index transactions */
export const MAINTAIN_MS = 25;
/** lets the worker's messages (wake, stop) in between background steps */
const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface IndexerKnobs {
  /** 'worker' (default): a worker thread; 'inline': on the main thread (measurements, fallback) */
  mode?: 'worker' | 'inline';
  /** tests: pause this long after every index transaction (an indexer far behind) */
  delayMs?: number;
  /** records per index transaction (default CHUNK_EVENTS) */
  chunkEvents?: number;
}

/** worker → main */
export type IndexerReport =
  | { t: 'indexed'; seq: number; skipped: number }
  | { t: 'idle'; seq: number }
  | { t: 'error'; message: string }
  | { t: 'output'; level: 'error' | 'warn'; text: string }
  | { t: 'stopped' };
/**
 * main → worker. `upTo` (wake): index journal batches up to this seq only: the main thread's committed
 * end, held below a batch whose LMDB put failed while later ones committed (LmdbStore.indexLimit), so
 * the index never passes a hole that will be filled (runs cover disjoint, ascending seq ranges).
 */
export type IndexerCommand = { t: 'wake'; urgent?: boolean; upTo?: number } | { t: 'remove'; batches: BatchSpan[] } | { t: 'stop' };


export class IndexLoop {
  private indexed: number;
  /** batches up to this seq may be indexed (IndexerCommand upTo) */
  private limit: number;
  private running = false;
  private again = false;
  private urgent = false;
  private stopped = false;
  private lastCommit = 0;
  private readonly removals: BatchSpan[][] = [];
  private readonly chunk: number;
  private idleDone: Promise<void> = Promise.resolve();
  /** ends the current pause at once (stop) */
  private wakeSleep: (() => void) | undefined;
  /** the current pause is the gathering interval (an urgent wake ends it), not the test delay */
  private pausing = false;
  /** merges may be due (set by every index transaction, cleared when a step finds nothing to do) */
  private maintenance = true;

  constructor(
    private readonly log: Database<IndexableBatch, number>,
    private readonly ix: DerivedIndex,
    private readonly knobs: IndexerKnobs,
    private readonly report: (r: IndexerReport) => void,
  ) {
    this.indexed = ix.indexedSeq;
    this.limit = ix.indexedSeq;
    this.chunk = knobs.chunkEvents ?? CHUNK_EVENTS;
  }

  /** Background merge steps for up to `ms`; false when there was nothing to do. */
  private maintain(ms: number): boolean {
    if (!this.maintenance) return false;
    const until = Date.now() + ms;
    let worked = false;
    while (Date.now() < until) {
      if (!this.ix.maintain()) { this.maintenance = false; break; }
      worked = true;
    }
    return worked;
  }

  wake(urgent = false, upTo?: number): void {
    if (upTo !== undefined && upTo > this.limit) this.limit = upTo;
    if (urgent) { this.urgent = true; if (this.pausing) this.wakeSleep?.(); }
    if (this.running) { this.again = true; return; }
    this.idleDone = this.run();
  }

  remove(batches: BatchSpan[]): void { this.removals.push(batches); this.wake(true); }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wakeSleep = undefined; resolve(); }, ms);
      this.wakeSleep = () => { clearTimeout(t); this.wakeSleep = undefined; resolve(); };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeSleep?.();
    await this.idleDone.catch(() => undefined);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        while (!this.stopped) {
          const rm = this.removals.shift();
          if (rm) { await this.ix.remove(rm); this.maintenance = true; continue; }
          // keeping up: let records gather for a while (one transaction per interval, not per commit)
          const wait = this.lastCommit + INTERVAL_MS - Date.now();
          if (wait > 0 && !this.urgent) {
            if (this.maintain(Math.min(wait, MAINTAIN_MS))) { await yieldTurn(); continue; }
            this.pausing = true; await this.sleep(wait); this.pausing = false; if (this.stopped) break;
          }
          this.urgent = false;
          const chunk = new ChunkEntries();
          let end = this.indexed;
          for (const { key, value } of this.log.getRange({ start: this.indexed + 1, end: this.limit + 1 })) {
            chunk.begin();
            try { entriesOf(key, value, chunk); } catch { chunk.undo(); chunk.spans.push({ key, a0: null }); chunk.events++; chunk.skipped++; } // a malformed value: skip it
            end = Math.max(end, batchEndOf(value));
            if (chunk.events >= this.chunk) break;
          }
          const events = chunk.events, skipped = chunk.skipped;
          if (chunk.spans.length === 0) {
            if (this.maintain(MAINTAIN_MS)) { await yieldTurn(); continue; }
            // nothing in the journal up to the limit is left (a seq range no batch holds, e.g. a batch whose
            // write-ahead log write failed): say so, or the handle would wake the loop again and again
            this.report({ t: 'idle', seq: Math.max(this.indexed, this.limit) });
            break;
          }
          await this.ix.add(chunk, end);
          this.maintenance = true;
          this.indexed = end;
          this.lastCommit = events >= this.chunk ? 0 : Date.now(); // behind: go on at once
          this.report({ t: 'indexed', seq: end, skipped });
          // behind (a rebuild, or traffic faster than indexing): merge a little between chunks too, so the
          // runs a query reads stay few even when the indexer never waits
          if (this.lastCommit === 0) this.maintain(MAINTAIN_MS);
          if (this.knobs.delayMs) await this.sleep(this.knobs.delayMs);
        }
      } while ((this.again || this.maintenance) && !this.stopped);
    } catch (err) {
      this.report({ t: 'error', message: (err as Error)?.message ?? String(err) });
    } finally {
      this.running = false;
    }
  }
}

/**
 * The main thread's handle on the indexer. `indexedSeq` is the last seq the indexer reported indexed
 * (queries read the index's own meta instead, in their read transaction).
 */
export class Indexer {
  indexedSeq: number;
  skipped = 0;
  private worker: Worker | undefined;
  private loop: IndexLoop | undefined;
  private closed = false;
  private wakePosted = false;
  private committed = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private backoff: NodeJS.Timeout | undefined;
  private waiters: { seq: number; resolve(): void }[] = [];
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: { dir: string; indexDir: string; knobs: IndexerKnobs; log: Database<IndexableBatch, number>; ix: DerivedIndex; onError(message: string): void; committed?: number },
  ) {
    this.indexedSeq = opts.ix.indexedSeq;
    // the journal's committed end at start: the first wake already carries it (committedUpTo raises it)
    this.committed = opts.committed ?? 0;
    this.start();
  }

  get mode(): 'worker' | 'inline' { return this.opts.knobs.mode ?? 'worker'; }

  private start(): void {
    const onReport = (r: IndexerReport): void => this.onReport(r);
    if (this.mode === 'inline') {
      this.loop = new IndexLoop(this.opts.log, this.opts.ix, this.opts.knobs, onReport);
      this.loop.wake(false, this.committed);
      return;
    }
    const w = startWorker(new URL('./index-worker.js', import.meta.url), {
      workerData: { dir: this.opts.dir, indexDir: this.opts.indexDir, knobs: this.opts.knobs },
      // the worker's console goes through the main thread's log (never raw lines on stderr)
      stdout: true, stderr: true,
    });
    for (const stream of [w.stdout, w.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => { for (const line of d.split('\n')) if (line.trim()) this.opts.onError(`index worker: ${line}`); });
    }
    this.worker = w;
    w.unref(); // never keeps the process alive
    w.on('message', onReport);
    let exit!: () => void;
    this.exited = new Promise((r) => { exit = r; });
    w.on('error', (e) => { this.opts.onError(`index worker: ${e.message}`); });
    w.on('exit', () => {
      exit();
      if (this.worker !== w) return;
      this.worker = undefined;
      this.wakePosted = false;
      if (this.closed) return;
      // died (e.g. out of memory): start it again shortly; what it had not indexed is indexed then
      this.restartTimer = setTimeout(() => { this.restartTimer = undefined; if (!this.closed) { this.start(); this.wake(); } }, 1000);
      this.restartTimer.unref();
    });
    this.post({ t: 'wake', upTo: this.committed });
  }

  private post(c: IndexerCommand): void {
    if (this.loop) {
      if (c.t === 'wake') this.loop.wake(c.urgent, c.upTo);
      else if (c.t === 'remove') this.loop.remove(c.batches);
      return;
    }
    this.worker?.postMessage(c);
  }

  private onReport(r: IndexerReport): void {
    if (r.t === 'indexed') {
      if (r.seq > this.indexedSeq) this.indexedSeq = r.seq;
      this.skipped += r.skipped;
      const ready = this.waiters.filter((w) => w.seq <= this.indexedSeq);
      this.waiters = this.waiters.filter((w) => w.seq > this.indexedSeq);
      for (const w of ready) w.resolve();
    } else if (r.t === 'idle') {
      this.wakePosted = false;
      if (this.committed > r.seq) this.wake(); // committed while it was looking: look again
    } else if (r.t === 'output') {
      this.opts.onError(`index worker: ${r.text}`);
    } else if (r.t === 'error') {
      // e.g. a full disk: try again in a while (each attempt logs one line), not at every journal commit
      this.wakePosted = false;
      this.opts.onError(`indexer: ${r.message}`);
      if (!this.backoff) {
        this.backoff = setTimeout(() => { this.backoff = undefined; if (!this.closed) this.wake(); }, 1000);
        this.backoff.unref();
      }
    }
  }

  /** The journal has committed up to `seq` with no hole below it: index it (soon). */
  committedUpTo(seq: number): void {
    if (seq > this.committed) this.committed = seq;
    this.wake();
  }

  private wake(urgent = false): void {
    if (this.backoff || (this.wakePosted && !urgent)) return;
    this.wakePosted = true;
    this.post({ t: 'wake', urgent, upTo: this.committed });
  }

  /** Entries of batches retention deleted from the journal. */
  remove(batches: BatchSpan[]): void { if (batches.length) this.post({ t: 'remove', batches }); }

  /** Resolves once everything committed up to `seq` is indexed, or after maxMs (false). */
  whenIndexed(seq: number, maxMs: number): Promise<boolean> {
    if (this.indexedSeq >= seq || this.closed) return Promise.resolve(this.indexedSeq >= seq);
    this.wake(true);
    return new Promise((resolve) => {
      const w = { seq, resolve: () => { clearTimeout(t); resolve(true); } };
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); resolve(false); }, maxMs);
      this.waiters.push(w);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.backoff);
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    if (this.loop) { await this.loop.stop(); return; }
    const w = this.worker;
    if (!w) return;
    w.postMessage({ t: 'stop' } satisfies IndexerCommand);
    const timer = setTimeout(() => { void w.terminate(); }, 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
