/**
 * Child process of crash.test.ts: opens the LMDB store in argv[2], recovers
 * the engine, resends the ids listed in argv[4] (a JSON file), then streams
 * random frames from every controller forever (until SIGKILLed), printing a
 * line per acknowledged message only after its commit:
 *   A <controller> <id> <reply hex> <fresh|dup>
 * argv[3] = seed; argv[5] = first id to use.
 */
import { readFileSync } from 'node:fs';
import { openStore } from '../../src/store/index.js';
import { openDurableEngine, startSnapshotter } from '../../src/store/recovery.js';
import { CONTROLLERS, STADIUM, decideFrame, randomMessage, rng } from './util.js';

const [dir, seedArg, resendFile, firstIdArg] = process.argv.slice(2);
const store = await openStore(dir!, { retention: { intervalMs: 0 } });
const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
startSnapshotter(store, engine, { everyEvents: 400, checkMs: 20, intervalMs: 1e9 });
const r = rng(Number(seedArg));
const resend = JSON.parse(readFileSync(resendFile!, 'utf8')) as { controller: string; msg: Record<string, unknown> }[];
let out = '';
const emit = (ds: { controller: string; id: number; reply: Uint8Array; fresh: boolean }[]): void => {
  for (const d of ds) out += `A ${d.controller} ${d.id} ${Buffer.from(d.reply).toString('hex')} ${d.fresh ? 'fresh' : 'dup'}\n`;
  if (out.length > 4096) { process.stdout.write(out); out = ''; }
};
for (const { controller, msg } of resend) emit(await decideFrame(engine, store, controller, [msg], Date.now()));
process.stdout.write(out + 'READY\n'); out = '';

let id = Number(firstIdArg);
// every controller streams concurrently: frames of several controllers share commits
await Promise.all(CONTROLLERS.map(async (ctrl) => {
  for (;;) {
    const msgs = Array.from({ length: 1 + Math.floor(r() * 6) }, () => randomMessage(r, ctrl, id++, 300, Date.now()));
    emit(await decideFrame(engine, store, ctrl, msgs, Date.now()));
    process.stdout.write(out); out = '';
  }
}));
