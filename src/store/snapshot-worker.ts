/**
 * The snapshot worker: a worker thread holding a replica of
 * the engine, fed from the journal, that writes the snapshot files, so the
 * main thread never stops deciding to copy its engine.
 *
 * It opens the data directory READ-ONLY (lmdb-js shares one LMDB environment
 * between the threads of a process; readers never block the writer), restores
 * the newest snapshot exactly as recovery does (replica.ts), and then only
 * applies records the main thread has reported committed:
 *
 *   main → worker  {t:'advance', upTo}        every record with seq <= upTo is committed (durable
 *                                             as the store promises: fsynced with durability 'flush')
 *                  {t:'snapshot', id, upTo}   the same, then write a snapshot at upTo
 *                  {t:'close'}
 *   worker → main  {t:'ready', position, fromSnapshot, ms}
 *                  {t:'done', id, entry} | {t:'done', id, error}
 *                  {t:'log', level, obj, msg}
 *
 * It never applies a record past the last `upTo` (with durability 'flush' a
 * committed but not yet fsynced record is visible to readers: a snapshot must
 * not hold it). A snapshot file is written as saveSnapshot writes it
 * (`<seq>.snap.worker.tmp`, fsync, rename, fsync of the directory); the main thread
 * then records its entry (store.recordSnapshot) and prunes older ones.
 *
 * Any throw while applying records ends the worker (its replica may be half
 * updated): the main thread logs it and starts a new one, which restores from
 * the newest snapshot again. Decisions never wait for this thread.
 */
import { closeSync, fdatasyncSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { CoreKind } from '../engine/engine.js';
import { openStore } from './index.js';
import { JournalReplica, type ReplicaLog } from './replica.js';
import { lowerThreadPriority } from './thread-priority.js';
import type { SnapshotEntry, Store } from './types.js';

export interface SnapshotWorkerData { dir: string; core: CoreKind; configText: string; jumpGap?: number }
export type ToWorker = { t: 'advance'; upTo: number } | { t: 'snapshot'; id: number; upTo: number } | { t: 'close' };
export type FromWorker =
  | { t: 'ready'; position: number; fromSnapshot: number; ms: number }
  | { t: 'done'; id: number; entry?: SnapshotEntry & { ms: number }; error?: string }
  | { t: 'log'; level: 'info' | 'warn'; obj: object; msg: string };

/** records applied per step; between steps the worker yields so lmdb-js renews its read transaction */
const CHUNK = 50_000;
/**
 * records behind a snapshot that already exists past which the worker restores it instead of replaying
 * (a restore at 10 M credentials takes about as long as replaying 1 M records)
 */
export const JUMP_GAP = 1_000_000;
/** bytes of a snapshot file written between two syncs */
const SYNC_STEP = 16 << 20;

/** the snapshot file name of `seq` (lmdb-store.ts names them the same way) */
export function snapshotFileName(seq: number): string { return `${String(seq).padStart(16, '0')}.snap`; }

/** the worker's temporary files: a suffix of their own, so the worker never removes a file the main
 *  thread is writing (an inline snapshot's `<seq>.snap.tmp`, lmdb-store.ts) */
const WORKER_TMP = '.worker.tmp';

/** Writes `bytes` to dir/file: `*.worker.tmp`, fsync, rename, fsync of the directory. */
export function writeSnapshotFile(dir: string, file: string, bytes: Uint8Array): void {
  const tmp = join(dir, file + WORKER_TMP);
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      // synced in steps: a few hundred MB of dirty pages flushed at once would hold up the journal's
      // own commits and syncs on the same disk for as long
      for (let off = 0; off < bytes.length;) {
        off += writeSync(fd, bytes, off, Math.min(SYNC_STEP, bytes.length - off));
        fdatasyncSync(fd);
      }
      fsyncSync(fd);
    } finally { closeSync(fd); }
    renameSync(tmp, join(dir, file));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  const dh = openSync(dir, 'r');
  try { fsyncSync(dh); } finally { closeSync(dh); }
}

const port = parentPort;
if (port) {
  const post = (m: FromWorker): void => port.postMessage(m);
  const log: ReplicaLog = {
    info: (obj, msg = '') => post({ t: 'log', level: 'info', obj, msg }),
    warn: (obj, msg = '') => post({ t: 'log', level: 'warn', obj, msg }),
  };
  // background work: the kernel runs the deciding main thread first; the snapshot only takes longer
  lowerThreadPriority();
  const data = workerData as SnapshotWorkerData;
  const jumpGap = data.jumpGap ?? JUMP_GAP;
  const snapDir = join(data.dir, 'snapshots');
  const t0 = performance.now();
  const store: Store = await openStore(data.dir, { readOnly: true, retention: { intervalMs: 0 } });
  // a snapshot an earlier worker was writing when it ended
  for (const f of readdirSync(snapDir)) if (f.endsWith(WORKER_TMP)) rmSync(join(snapDir, f), { force: true });
  const replica = new JournalReplica(store, data.core, data.configText, log);
  replica.restoreSnapshot();

  let target = replica.position;
  const requests: { id: number; upTo: number }[] = [];
  let running = false;
  let closing = false;

  const fatal = (e: unknown): never => {
    const error = (e as Error)?.message ?? String(e);
    for (const r of requests.splice(0)) post({ t: 'done', id: r.id, error });
    log.warn({ err: error }, 'snapshot worker failed');
    // the replica may be half updated: end the thread, the main thread starts a new one
    setImmediate(() => process.exit(1));
    throw e;
  };

  const snapshot = (upTo: number): SnapshotEntry & { ms: number } => {
    const ts = performance.now();
    const engine = replica.engine;
    if (!engine) throw new Error('the journal holds no configuration yet: nothing to snapshot');
    const seq = Math.max(upTo, replica.position);
    const bytes = engine.snapshot();
    const file = snapshotFileName(seq);
    writeSnapshotFile(snapDir, file, bytes);
    const entry: SnapshotEntry & { ms: number } = { seq, at: engine.clock, file, size: bytes.length, ms: performance.now() - ts };
    if (replica.text !== undefined) entry.configText = replica.text;
    return entry;
  };

  const run = async (): Promise<void> => {
    while (!closing) {
      // a macrotask boundary: lmdb-js resets its read transaction on a 0 ms timer, so the
      // reads below see every commit the main thread has reported
      await new Promise((r) => setTimeout(r, 0));
      const req = requests[0];
      const goal = req ? Math.max(req.upTo, target) : target;
      if (!req && replica.position >= goal) return;
      let n: number;
      const upTo = req ? req.upTo : goal;
      // far behind a snapshot that is already there: restore it rather than replay up to it
      if (upTo - replica.position > jumpGap) {
        const from = replica.position;
        let jumped = false;
        try { jumped = replica.jumpToSnapshot(upTo, jumpGap); } catch (e) { fatal(e); }
        if (jumped) log.info({ from, to: replica.position }, 'snapshot worker: restored a newer snapshot instead of replaying to it');
      }
      try { n = replica.catchUp(upTo, CHUNK); } catch (e) { fatal(e); }
      if (n! >= CHUNK) continue;
      if (req && replica.position >= req.upTo) {
        requests.shift();
        try { post({ t: 'done', id: req.id, entry: snapshot(req.upTo) }); } catch (e) {
          // a write that failed (disk full): nothing of the replica changed, it can go on
          post({ t: 'done', id: req.id, error: (e as Error).message });
        }
      }
    }
  };
  const kick = (): void => {
    if (running) return;
    running = true;
    void run().catch(() => undefined).finally(() => {
      running = false;
      if (!closing && (requests.length > 0 || replica.position < target)) kick();
    });
  };

  port.on('message', (m: ToWorker) => {
    if (m.t === 'advance') { if (m.upTo > target) target = m.upTo; kick(); }
    else if (m.t === 'snapshot') { requests.push({ id: m.id, upTo: m.upTo }); if (m.upTo > target) target = m.upTo; kick(); }
    else if (m.t === 'close') {
      closing = true;
      for (const r of requests.splice(0)) post({ t: 'done', id: r.id, error: 'the snapshot worker is closing' });
      void store.close().catch(() => undefined).finally(() => process.exit(0));
    }
  });
  post({ t: 'ready', position: replica.position, fromSnapshot: replica.fromSnapshot, ms: performance.now() - t0 });
}
