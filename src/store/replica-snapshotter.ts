/**
 * Snapshots without a pause: the main-thread side of the
 * snapshot worker (snapshot-worker.ts).
 *
 * The main thread never copies its engine. Every `checkMs` it tells the worker
 * how far the journal is committed (store.lastSeq read, then
 * store.whenCommitted(): every record up to that seq is in the journal, or its
 * commit failed and it never will be); the worker's replica engine applies
 * those records. When a snapshot is due it asks for one at the committed seq;
 * the worker writes the file, and the main thread only records its entry
 * (store.recordSnapshot: one small LMDB put, pruning of older files by async
 * unlink). Cost on the main thread: two postMessage calls and a put.
 *
 * The replica follows the journal, not the live engine: a record whose commit
 * failed never reaches it, so (unlike an image of the live engine) a snapshot
 * can never hold an effect the journal lacks, and there is nothing to drop
 * after a storage failure. The replica is a second copy of the engine state in
 * memory (plus, while a snapshot is written, the snapshot bytes).
 *
 * A small engine (`inlineBelow` credentials, default 20 000: a copy of
 * well under a megabyte, ~1 ms) is always snapshotted inline: that costs
 * less than handing the work to a thread that takes 0.1-0.5 s to start and
 * runs at a lower priority, so a process killed soon after it starts has
 * snapshots too. A larger engine waits for the worker.
 *
 * If the worker fails, ends or stops answering (`workerTimeoutMs`), it is
 * logged and a new one is started after a back-off (1 s, doubling up to 60 s);
 * decisions never wait for it. Snapshots only shorten restarts: recovery
 * replays the journal after the newest snapshot, whichever that is.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-thread.js';
import type { CoreKind } from '../engine/engine.js';
import type { Engine } from '../engine/types.js';
import type { RecoveryLog, Snapshotter, SnapshotterOptions } from './recovery.js';
import type { FromWorker, SnapshotWorkerData, ToWorker } from './snapshot-worker.js';
import type { SnapshotEntry, Store } from './types.js';

export interface ReplicaSnapshotterOptions extends SnapshotterOptions {
  /** a worker that does not become ready or answer a snapshot request within this is restarted; default 10 min */
  workerTimeoutMs?: number;
  /** first restart delay after the worker failed; doubles up to 60 s; default 1 s */
  restartMs?: number;
  /** while no worker is ready, an engine with fewer credentials than this is snapshotted inline; default 20 000 (0: never) */
  inlineBelow?: number;
  /** records behind an existing snapshot past which the worker restores it instead of replaying; default snapshot-worker.ts JUMP_GAP (tests lower it) */
  jumpGap?: number;
}

export interface ReplicaSnapshotter extends Snapshotter {
  readonly kind: 'replica';
  /** the running worker (tests terminate it), undefined between a failure and its restart */
  readonly worker: Worker | undefined;
  /** workers started after the first (restarts) */
  readonly restarts: number;
  /** resolves once a worker is ready (restored), rejects if stopped first */
  whenReady(): Promise<void>;
}

type FileStore = Store & { dir: string; recordSnapshot(entry: SnapshotEntry): Promise<void> };

export function canSnapshotInWorker(store: Store): store is FileStore {
  return store.kind === 'lmdb' && typeof store.dir === 'string' && typeof store.recordSnapshot === 'function';
}

const WORKER_URL = new URL('./snapshot-worker.js', import.meta.url);
const MAX_BACKOFF_MS = 60_000;

export function startReplicaSnapshotter(store: FileStore, current: () => Engine, opts: ReplicaSnapshotterOptions = {}): ReplicaSnapshotter {
  const core = (): CoreKind => current().core.kind;
  const inlineBelow = opts.inlineBelow ?? 20_000;
  const log: RecoveryLog | undefined = opts.log;
  const intervalMs = opts.intervalMs ?? 60_000;
  const everyEvents = opts.everyEvents ?? 500_000;
  const timeoutMs = opts.workerTimeoutMs ?? 600_000;
  const firstBackoff = opts.restartMs ?? 1000;
  let lastSeq = store.latestSnapshotFile?.()?.seq ?? 0;
  let lastAt = Date.now();
  let stopped = false;
  let running: Promise<number | undefined> | undefined;
  let feeding = false;

  // ── the worker ──
  let worker: Worker | undefined;
  let ready = false;
  let readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  let readyTimer: NodeJS.Timeout | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let backoff = firstBackoff;
  let restarts = -1;
  let posted = 0;
  let nextId = 1;
  const pending = new Map<number, { resolve(e: SnapshotEntry & { ms: number }): void; reject(e: Error): void; timer: NodeJS.Timeout }>();

  const spawn = (): void => {
    restartTimer = undefined;
    if (stopped) return;
    restarts++;
    ready = false;
    posted = 0;
    const data: SnapshotWorkerData = { dir: store.dir, core: core(), configText: store.configText() ?? '' };
    if (opts.jumpGap !== undefined) data.jumpGap = opts.jumpGap;
    const w = startWorker(WORKER_URL, { workerData: data });
    worker = w;
    w.unref(); // never keeps the process alive; stop() ends it
    readyTimer = setTimeout(() => { log?.warn({ timeoutMs }, 'snapshot worker not ready in time: restarting it'); void w.terminate(); }, timeoutMs);
    readyTimer.unref();
    w.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        clearTimeout(readyTimer);
        ready = true;
        log?.info({ position: m.position, fromSnapshot: m.fromSnapshot, ms: Math.round(m.ms) }, 'snapshot worker ready');
        for (const r of readyWaiters.splice(0)) r.resolve();
        feed();
      } else if (m.t === 'done') {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.entry) p.resolve(m.entry); else p.reject(new Error(m.error ?? 'snapshot failed'));
      } else if (m.t === 'log') {
        log?.[m.level]({ ...m.obj, worker: 'snapshot' }, m.msg);
      }
    });
    w.on('error', (err) => { log?.warn({ err: err.message }, 'snapshot worker error'); });
    w.on('exit', (code) => {
      clearTimeout(readyTimer);
      if (worker !== w) return;
      worker = undefined;
      ready = false;
      const err = new Error(`the snapshot worker exited (code ${code})`);
      for (const [id, p] of pending) { clearTimeout(p.timer); pending.delete(id); p.reject(err); }
      if (stopped) { for (const r of readyWaiters.splice(0)) r.reject(err); return; }
      log?.warn({ code, restartInMs: backoff }, 'snapshot worker ended: decisions are unaffected, restarting it');
      restartTimer = setTimeout(spawn, backoff);
      restartTimer.unref();
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    });
  };

  const send = (m: ToWorker): boolean => {
    if (!worker || !ready) return false;
    worker.postMessage(m);
    return true;
  };

  const request = (upTo: number): Promise<SnapshotEntry & { ms: number }> => new Promise((resolve, reject) => {
    const w = worker;
    if (!w || !ready) { reject(new Error('the snapshot worker is not running')); return; }
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`the snapshot worker did not answer within ${timeoutMs} ms`));
      log?.warn({ timeoutMs }, 'snapshot worker not answering: restarting it');
      void w.terminate();
    }, timeoutMs);
    timer.unref();
    pending.set(id, { resolve, reject, timer });
    w.postMessage({ t: 'snapshot', id, upTo } satisfies ToWorker);
    if (upTo > posted) posted = upTo;
  });

  /** reports the committed end of the journal to the worker (one at a time) */
  const feed = (): void => {
    if (feeding || stopped || !ready || !store.healthy) return;
    const seq = store.lastSeq;
    if (seq <= posted) return;
    feeding = true;
    void store.whenCommitted().then(() => {
      if (seq > posted && send({ t: 'advance', upTo: seq })) posted = seq;
    }, () => undefined).finally(() => { feeding = false; });
  };

  // inline snapshots of a small engine while no worker is ready: the image of the live engine is
  // consistent with store.lastSeq read in the same turn; it is written only if no commit failed since
  // (a failed commit means the image may hold an effect the journal lacks; the server then rebuilds
  // the engine, and a new engine lifts the ban)
  let seenEngine: Engine | undefined = current();
  let failuresAtEngine = store.failures;
  const takeInline = async (e: Engine): Promise<number | undefined> => {
    const seq = store.lastSeq;
    const failures = store.failures;
    const bytes = e.snapshot(); // synchronous: consistent with `seq`
    const text = store.configText();
    const at = e.clock;
    await store.whenCommitted();
    if (store.failures !== failures) return undefined;
    const t0 = performance.now();
    await store.saveSnapshot(seq, bytes, text, at);
    lastSeq = Math.max(lastSeq, seq);
    lastAt = Date.now();
    log?.info({ seq, bytes: bytes.length, ms: Math.round(performance.now() - t0), by: 'inline' }, 'snapshot written');
    return seq;
  };

  const take = async (): Promise<number | undefined> => {
    if (!store.healthy) return undefined;
    const seq = store.lastSeq;
    if (seq <= lastSeq) return undefined;
    if (inlineBelow > 0) {
      const e = current();
      if (e !== seenEngine) { seenEngine = e; failuresAtEngine = store.failures; }
      if (store.failures === failuresAtEngine && e.core.size() < inlineBelow) return takeInline(e);
    }
    // every record up to `seq` is in the journal (or its commit failed and it never will be)
    await store.whenCommitted();
    if (!ready) {
      // a worker still restoring is waited for; none at all (failed, restarting later): skipped
      const w = worker;
      if (!w) return undefined;
      await new Promise<void>((resolve, reject) => {
        const gone = (): void => reject(new Error('the snapshot worker exited before it was ready'));
        w.once('exit', gone);
        readyWaiters.push({ resolve: () => { w.off('exit', gone); resolve(); }, reject });
      });
    }
    const entry = await request(seq);
    const t0 = performance.now();
    try {
      await store.recordSnapshot(entry);
    } catch (e) {
      if (entry.seq !== lastSeq) await unlink(join(store.dir, 'snapshots', entry.file)).catch(() => undefined);
      throw e;
    }
    lastSeq = Math.max(lastSeq, entry.seq);
    lastAt = Date.now();
    backoff = firstBackoff;
    log?.info({ seq: entry.seq, bytes: entry.size, ms: Math.round(entry.ms), recordMs: Math.round(performance.now() - t0), by: 'worker' }, 'snapshot written');
    return entry.seq;
  };
  const snapshotNow = (): Promise<number | undefined> => {
    running ??= take().catch((err: unknown) => {
      log?.warn({ err: (err as Error).message }, 'snapshot failed');
      return undefined;
    }).finally(() => { running = undefined; });
    return running;
  };

  const timer = setInterval(() => {
    if (stopped) return;
    feed();
    // a small engine is snapshotted inline (take()), so it need not wait for the worker to be ready
    if (running || (!ready && !(inlineBelow > 0 && current().core.size() < inlineBelow))) return;
    const due = store.lastSeq - lastSeq >= everyEvents || (store.lastSeq > lastSeq && Date.now() - lastAt >= intervalMs);
    if (due) void snapshotNow();
  }, opts.checkMs ?? 1000);
  timer.unref();

  spawn();

  return {
    kind: 'replica',
    get worker() { return worker; },
    get restarts() { return Math.max(0, restarts); },
    whenReady(): Promise<void> {
      if (ready) return Promise.resolve();
      if (stopped) return Promise.reject(new Error('the snapshotter is stopped'));
      return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
    },
    snapshotNow,
    // the replica follows the journal, not the live engine: only the small-engine fallback looks at it
    setEngine(e: Engine): void { seenEngine = e; failuresAtEngine = store.failures; },
    async stop(): Promise<void> {
      if (stopped) return;
      clearInterval(timer);
      await running;
      if (opts.onStop !== false && worker) {
        // a last snapshot (a normal restart replays nothing); a worker still restoring is waited for
        const w = worker;
        if (!ready) {
          await Promise.race([
            new Promise<void>((r) => readyWaiters.push({ resolve: r, reject: () => r() })),
            new Promise<void>((r) => w.once('exit', () => r())),
            new Promise((r) => setTimeout(r, Math.min(timeoutMs, 30_000)).unref()),
          ]);
        }
        await snapshotNow();
      }
      stopped = true;
      clearTimeout(restartTimer);
      for (const r of readyWaiters.splice(0)) r.reject(new Error('the snapshotter is stopped'));
      const w = worker;
      if (w) {
        const exited = new Promise<void>((r) => w.once('exit', () => r()));
        if (ready) w.postMessage({ t: 'close' } satisfies ToWorker); else void w.terminate();
        const t = setTimeout(() => { void w.terminate(); }, 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
