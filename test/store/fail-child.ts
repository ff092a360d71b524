/**
 * Child of failure.test.ts, started under a small RLIMIT_FSIZE: fills the
 * store until a commit really fails, checks the failure behaviour, waits for
 * the parent to lift the limit, then checks that storage recovered by itself.
 * Prints one line per stage: ACKED n / FAILED / HEALTHY / DONE seq.
 */
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { ApbError } from '../../src/errors.js';
import type { EventRecord } from '../../src/store/types.js';

process.on('SIGXFSZ', () => undefined); // the write fails with EFBIG instead of killing the process
const store = new LmdbStore(process.argv[2]!, { probeIntervalMs: 100, retention: { intervalMs: 0 } });
const changes: boolean[] = [];
store.onHealthChange((h) => changes.push(h));
const pad = 'x'.repeat(3000);
let acked = 0;
let failure: unknown;
for (let i = 0; i < 100_000 && failure === undefined; i++) {
  await store.append([{ at: i, kind: 'badge', cred: String(i), why: pad }], [{ controller: 'c', id: i, reply: Uint8Array.of(1) }])
    .then(() => { acked = i + 1; }, (e: unknown) => { failure = e; });
}
const ok = failure instanceof ApbError && failure.code === 'storage_unavailable' && !store.healthy && changes[0] === false;
// while unhealthy, appends are refused at once and the failed batch's idempotency reply is gone
const refused = await store.append([{ at: 0, kind: 'badge' }], []).then(() => false, (e: unknown) => e instanceof ApbError && e.code === 'storage_unavailable');
process.stdout.write(`ACKED ${acked}\nFAILED ${ok && refused && store.getIdem('c', acked) === undefined}\n`);
// the parent lifts the limit, then says so on stdin
await new Promise((r) => process.stdin.once('data', r));
process.stdin.pause();
while (!store.healthy) await new Promise((r) => setTimeout(r, 20));
process.stdout.write(`HEALTHY ${changes[0]},${changes.at(-1)}\n`);
// more than the old limit allowed: the file must grow now
for (let k = 0; k < 1500; k++) await store.append([{ at: 2, kind: 'badge', cred: 'grow', why: pad }], []);
const evs: EventRecord[] = [{ at: 3, kind: 'badge', cred: 'after-recovery' }];
await store.append(evs, [{ controller: 'c', id: 1_000_000, reply: Uint8Array.of(2) }]);
await store.close();
process.stdout.write(`DONE ${evs[0]!.seq}\n`);
