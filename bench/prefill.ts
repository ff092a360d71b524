/**
 * A data directory that already holds N events, for the latency rows that
 * must not grow with the store: denied badges (state-neutral records with no
 * replayable op, so a server opens on it at once), in appends of 256 like a
 * busy day, then indexed, then written to disk (every file fsynced): a
 * store that has held its events for a while has no dirty pages left, and
 * the kernel writing gigabytes back in the middle of a latency run would
 * measure the disk's writeback, not the server. Progress goes to `log`.
 *
 * `node build/bench/prefill.js DIR N` fills DIR alone.
 */
import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmdbStore } from '../src/store/lmdb-store.js';
import type { EventRecord } from '../src/store/types.js';

export async function prefill(dir: string, n: number, readers: string[], controller: string, log: (s: string) => void = () => {}): Promise<{ seconds: number }> {
  const t0 = performance.now();
  const store = new LmdbStore(dir, { retention: { intervalMs: 0 } });
  const per = 256;
  let at = Date.now() - 86_400_000;
  let id = 1;
  let lastLog = 0;
  for (let done = 0; done < n;) {
    const k = Math.min(per, n - done);
    const batch: EventRecord[] = new Array(k);
    for (let i = 0; i < k; i++) {
      batch[i] = { at: at++, kind: 'badge', controller, id: id++, reader: readers[i % readers.length]!, cred: String((done + i) % 1_000_000), grant: false, reason: 'reentry', violations: [] };
    }
    const p = store.append(batch, []);
    done += k;
    // keep a bounded number of appends in flight
    if ((done / per) % 64 === 0) await p;
    if (performance.now() - lastLog > 2000) { lastLog = performance.now(); log(`prefill: ${done.toLocaleString('en-US')} / ${n.toLocaleString('en-US')} events`); }
  }
  await store.whenCommitted();
  log('prefill: indexing');
  await store.settle(600_000);
  await store.close();
  log('prefill: writing to disk');
  flushTree(dir);
  return { seconds: (performance.now() - t0) / 1000 };
}

/** fsync every file and directory under `path` */
export function flushTree(path: string): void {
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.isDirectory()) flushTree(join(path, e.name));
    else if (e.isFile()) { const fd = openSync(join(path, e.name), 'r'); try { fsyncSync(fd); } finally { closeSync(fd); } }
  }
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, n] = process.argv.slice(2);
  if (!dir || !n) { process.stderr.write('usage: node build/bench/prefill.js DIR N\n'); process.exit(2); }
  prefill(dir, Number(n), ['r-in', 'r-out'], 'c', (s) => process.stderr.write(s + '\n')).then((r) => { process.stdout.write(`${r.seconds.toFixed(1)} s\n`); });
}
