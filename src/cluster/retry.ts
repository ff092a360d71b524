/** Small helpers of a cluster node: waiting, retrying JetStream calls at start, a free port. */
import { createServer } from 'node:net';
import { ApbError } from '../errors.js';
import type { Logger } from '../server/log.js';

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

/** how long a node retries a JetStream call it cannot start without (NATS electing after restarts) */
export const START_RETRY_MS = 60_000;

/**
 * `fn`, again with backoff while it fails, for up to START_RETRY_MS (then its error): at start,
 * JetStream may not answer for a while (a NATS server just restarted, the meta group electing).
 * ApbErrors other than storage_unavailable are final.
 */
export async function retrying<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + START_RETRY_MS;
  for (let attempt = 0; ; attempt++) {
    try { return await fn(); } catch (e) {
      if ((e instanceof ApbError && e.code !== 'storage_unavailable') || Date.now() > end) throw e;
      log.warn({ err: (e as Error).message, attempt }, `cluster: cannot read ${what} yet; retrying`);
      await delay(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
    }
  }
}
