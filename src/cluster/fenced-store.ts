/**
 * The local store as a cluster node's server sees it: writes refused (storage_unavailable) unless
 * the node may publish (it leads and has fenced the stream); close() leaves the store open (the
 * node owns it across roles).
 */
import { ApbError } from '../errors.js';
import type { LmdbStore } from '../store/lmdb-store.js';
import type { Store } from '../store/types.js';

export function fence(store: LmdbStore, open: () => boolean): Store {
  const refuse = (): Promise<never> => Promise.reject(new ApbError('storage_unavailable', 'this node does not lead the site (cluster)'));
  return new Proxy(store as unknown as Store, {
    get(target, p) {
      if (p === 'append' || p === 'appendCompact' || p === 'saveConfig') {
        const fn = (target as unknown as Record<string, (...a: unknown[]) => Promise<void>>)[p]!;
        return (...a: unknown[]) => (open() ? fn.apply(target, a) : refuse());
      }
      if (p === 'healthy') return target.healthy && open();
      if (p === 'close') return () => target.whenCommitted();
      const v = Reflect.get(target, p, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
