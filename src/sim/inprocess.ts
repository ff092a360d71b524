/**
 * Runs a scenario through the engine in this process, in simulated time:
 * each event is applied with `now` = its simulated time, so presence
 * timeouts, lockouts, passage deadlines and the midnight reset all happen
 * exactly as the generator's ground truth expects (like `apb replay`).
 */
import { loadSiteText } from '../config/load.js';
import { createEngine } from '../engine/engine.js';
import type { Cred } from '../engine/cred.js';
import type { CoreOp } from '../engine/types.js';
import { Checker, type CheckSummary } from './check.js';
import { BADGE, type Scenario } from './scenario.js';

export interface InProcessResult { summary: CheckSummary; seconds: number; eventsPerSec: number }

export function runInProcess(sc: Scenario, opts: { core?: 'wasm' | 'reference'; events?: Scenario['events'] } = {}): InProcessResult {
  const { site } = loadSiteText(JSON.stringify(sc.config), `${sc.name} site`);
  const engine = createEngine(site, { core: opts.core ?? 'wasm' });
  const readerMap = sc.truth.readers.map((r) => {
    const i = site.readerIndex.get(r.id);
    if (i === undefined) throw new Error(`site has no reader ${r.id}`);
    return i;
  });
  const check = new Checker((r) => sc.truth.readers[r]!.id);
  const events = opts.events ?? sc.events;
  const credCache = new Map<number, Cred>();
  const t0 = performance.now();
  for (const ev of events) {
    let cred = credCache.get(ev.cred);
    if (!cred) { cred = { kind: 'int', value: BigInt(ev.cred) }; credCache.set(ev.cred, cred); }
    const op: CoreOp = { op: ev.kind === BADGE ? 'badge' : 'passage', cred, reader: readerMap[ev.reader]! };
    const [res] = engine.apply([op], ev.at);
    if (res!.op === 'badge') check.badge(ev, res!.grant, res!.violations);
    else check.passage();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { summary: check.s, seconds, eventsPerSec: events.length / seconds };
}
