/**
 * Child process of journal-index.test.ts: opens the LMDB store in argv[2] with the indexer slowed
 * down (argv[4] ms after every index transaction of a few records: far behind), then appends
 * batches forever, alternating general-path appends and compact groups of every controller, and
 * prints one line per acknowledged message only after its commit:
 *   A <controller> <id> <reply hex>
 * argv[3] = first id. Killed with SIGKILL by the test.
 */
import { openStore } from '../../src/store/index.js';
import { general, group } from './journal-util.js';

const [dir, firstArg, delayArg] = process.argv.slice(2);
const store = await openStore(dir!, { retention: { intervalMs: 0 }, indexer: { delayMs: Number(delayArg), chunkEvents: 16 } });
process.stdout.write('READY\n');
let id = Number(firstArg);
const CONTROLLERS = ['c0', 'c1', 'c2'];
// bounded: the write-ahead log acknowledges far faster than the indexer (slowed down) indexes, and the
// parent checks every acknowledged id; a few thousand per round keep that check quick
const LAST = id + 4000;
await Promise.all(CONTROLLERS.map(async (c, ci) => {
  for (let round = 0; id < LAST; round++) {
    const n = 1 + ((round + ci) % 9);
    const first = id; id += n;
    if ((round + ci) % 2 === 0) {
      const g = group(c, first, n);
      await store.appendCompact(g);
    } else {
      const { events, idem } = general(c, first, n);
      await store.append(events, idem);
    }
    let out = '';
    for (let k = first; k < first + n; k++) out += `A ${c} ${k} ${Buffer.from(store.getIdem(c, k)!).toString('hex')}\n`;
    process.stdout.write(out);
  }
}));
setInterval(() => undefined, 1 << 30); // stay alive until the SIGKILL
