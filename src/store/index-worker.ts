/**
 * Worker thread of the background indexer (indexer.ts): opens the journal
 * (the main thread's environment, shared by lmdb-js within the process; this
 * thread only reads it) and D/index (validated by the main thread already;
 * this thread is its only writer), then runs IndexLoop on wake-ups.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { open } from 'lmdb';
import { DerivedIndex, type IndexableBatch } from './derived-index.js';
import { routeLibraryOutput } from './lmdb-output.js';
import { IndexLoop, type IndexerCommand, type IndexerKnobs, type IndexerReport } from './indexer.js';
import { lowerThreadPriority } from './thread-priority.js';

// background work: the deciding main thread and the journal's commits go first (nice 19, Linux)
lowerThreadPriority();

const { dir, indexDir, knobs } = workerData as { dir: string; indexDir: string; knobs: IndexerKnobs };
const port = parentPort!;
const send = (r: IndexerReport): void => port.postMessage(r);

// what lmdb-js would print (a failed commit of D/index, e.g. a full disk) goes to the main thread's log
routeLibraryOutput((level, text) => send({ t: 'output', level, text }));
// lmdb-js rejects a failed commit's shared promise too (lmdb-store.ts installRejectionFilter): the loop has
// seen the failure through its own transaction; anything else ends this worker (the main thread restarts it)
process.on('unhandledRejection', (reason) => {
  const cause = (reason as { commitError?: Promise<unknown> } | undefined)?.commitError;
  if (cause && typeof cause.catch === 'function') { cause.catch(() => undefined); return; }
  send({ t: 'error', message: (reason as Error)?.message ?? String(reason) });
  process.exit(1);
});

const root = open({ path: dir, noSubdir: false, maxDbs: 16, readOnly: true } as never);
const log = root.openDB<IndexableBatch, number>('log', {
  keyEncoding: 'ordered-binary', encoding: 'msgpack', sharedStructuresKey: Symbol.for('structures'),
  encoder: { int64AsType: 'auto', useRecords: false }, // as the store writes them (lmdb-store.ts)
} as never);
// this thread's only job: its D/index transactions commit here, at its lowered priority (derived-index.ts write)
const ix = DerivedIndex.attach(indexDir, true);
const loop = new IndexLoop(log, ix, knobs, send);

port.on('message', (c: IndexerCommand) => {
  if (c.t === 'wake') loop.wake(c.urgent, c.upTo);
  else if (c.t === 'remove') loop.remove(c.batches);
  else if (c.t === 'stop') {
    void loop.stop().then(async () => {
      await ix.close().catch(() => undefined);
      await root.close().catch(() => undefined);
      send({ t: 'stopped' });
      port.close();
    });
  }
});
