/**
 * `openStore(dir | ':memory:', opts)`: the durable LMDB store in a data
 * directory, or the in-memory store (nothing survives the process).
 */
import { LmdbStore } from './lmdb-store.js';
import { MemoryStore } from './memory-store.js';
import type { Store, StoreOptions } from './types.js';

export type { Store, StoreOptions, EventRecord, IdemRecord, EventQuery, SnapshotInfo, StoreStats, RetentionOptions } from './types.js';
export { LmdbStore } from './lmdb-store.js';
export { MemoryStore } from './memory-store.js';

export const MEMORY = ':memory:';

export async function openStore(dir: string, opts: StoreOptions = {}): Promise<Store> {
  if (dir === MEMORY) return new MemoryStore(opts);
  return new LmdbStore(dir, opts);
}
