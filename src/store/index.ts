/**
 * `openStore(dir | ':memory:', opts)`: the durable LMDB store in a data
 * directory, or the in-memory store (nothing survives the process).
 * A writable directory store first takes the directory's lock (lock.ts):
 * a second writer is refused with data_locked.
 */
import { LmdbStore, checkDataPath } from './lmdb-store.js';
import { lockDataDir } from './lock.js';
import { MemoryStore } from './memory-store.js';
import type { Store, StoreOptions } from './types.js';

export type { Store, StoreOptions, EventRecord, IdemRecord, EventQuery, SnapshotInfo, StoreStats, RetentionOptions } from './types.js';
export { LmdbStore } from './lmdb-store.js';
export { MemoryStore } from './memory-store.js';

export const MEMORY = ':memory:';

export async function openStore(dir: string, opts: StoreOptions = {}): Promise<Store> {
  if (dir === MEMORY) return new MemoryStore(opts);
  checkDataPath(dir);
  if (opts.readOnly || opts.lock) return new LmdbStore(dir, opts);
  const lock = await lockDataDir(dir);
  try {
    return new LmdbStore(dir, { ...opts, lock });
  } catch (e) {
    await lock.release();
    throw e;
  }
}
