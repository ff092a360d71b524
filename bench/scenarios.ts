/**
 * Scenario benchmark: the stadium gate opening, the metro rush hour and the
 * office day (src/sim/), each
 *  1. in process, in simulated time (engine clock = each event's time, like
 *     `apb replay`), through the WebAssembly core, and through the
 *     TypeScript reference core on a prefix as the baseline: every rule
 *     including presence timeouts, lockouts, passage deadlines and the
 *     midnight reset is checked;
 *  2. through a real server (durable, child process) over controller
 *     WebSockets, batched. The server's clock is wall time, so that run
 *     plays the stream as fast as possible and leaves out the people whose
 *     outcomes depend on elapsed time (truth.ts 'zero' clock); pass-back,
 *     re-entry, same-gate reuse, exit-not-entered and sequence are checked.
 * Violations found must equal violations injected, badge by badge; any
 * difference fails the benchmark with both counts and samples.
 */
import { describeMismatch, total, type CheckSummary } from '../src/sim/check.js';
import { runInProcess } from '../src/sim/inprocess.js';
import { SCENARIOS, type ScenarioName } from '../src/sim/scenarios.js';
import { siteYaml, simToken } from '../src/sim/sites.js';
import { driveServer } from '../src/sim/wsdriver.js';
import { startServerChild } from './proc.js';
import { BenchFailure } from './report.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';

const SIZES: Record<ScenarioName, { full: number; quick: number; unit: string }> = {
  stadium: { full: 60_000, quick: 6_000, unit: 'ticket holders' },
  metro: { full: 400_000, quick: 20_000, unit: 'trips (2 M card base)' },
  office: { full: 3_000, quick: 600, unit: 'employees' },
};
const REFERENCE_PREFIX = 60_000;
/** wall-time budget of a server run; a prefix of the stream checks exactly like the whole */
const SERVER_BUDGET_MS = (quick: boolean) => (quick ? 20_000 : 60_000);

export async function bench(opts: BenchOptions): Promise<BenchSection> {
  const checkRows: BenchTable['rows'] = [];
  const speedRows: BenchTable['rows'] = [];
  const failures: string[] = [];
  const record = (name: string, run: string, events: number, s: CheckSummary) => {
    checkRows.push([name, run, events, s.badges, total(s.injected), total(s.found), Object.entries(s.injected).map(([k, v]) => `${k} ${v}`).join(', ') || '-', s.mismatches, total(s.errors), s.mismatches === 0 && total(s.errors) === 0 ? 'OK' : 'FAIL']);
    if (s.mismatches || total(s.errors)) failures.push(describeMismatch(`${name} (${run})`, s));
  };
  for (const name of Object.keys(SCENARIOS) as ScenarioName[]) {
    const size = opts.quick ? SIZES[name].quick : SIZES[name].full;
    opts.log(`${name}: generating ${size.toLocaleString('en-US')} ${SIZES[name].unit}`);
    const t0 = performance.now();
    const sc = SCENARIOS[name]({ size, seed: 1 });
    const genS = (performance.now() - t0) / 1000;
    opts.log(`${name}: ${sc.events.length.toLocaleString('en-US')} events generated in ${genS.toFixed(1)} s; in process (wasm)`);
    const wasm = runInProcess(sc, { core: 'wasm' });
    record(name, 'in process, wasm, sim time', sc.events.length, wasm.summary);
    const prefix = sc.events.slice(0, REFERENCE_PREFIX);
    opts.log(`${name}: in process (reference core, first ${prefix.length.toLocaleString('en-US')} events)`);
    const ref = runInProcess(sc, { core: 'reference', events: prefix });
    record(name, `in process, reference, first ${prefix.length.toLocaleString('en-US')}`, prefix.length, ref.summary);
    speedRows.push([name, 'in process, reference core (baseline)', prefix.length, ref.eventsPerSec, '-', '-', 1]);
    speedRows.push([name, 'in process, wasm core', sc.events.length, wasm.eventsPerSec, '-', '-', wasm.eventsPerSec / ref.eventsPerSec]);

    const online = sc.events.filter((e) => !e.timing);
    opts.log(`${name}: server run (durable, ws, batched): ${online.length.toLocaleString('en-US')} events (${sc.timingPersons.toLocaleString('en-US')} of ${sc.persons.toLocaleString('en-US')} people left out: timing-dependent)`);
    const child = await startServerChild(siteYaml(sc.config), 'durable');
    try {
      const tokens = Object.fromEntries(sc.config.controllers.map((c) => [c.id, simToken(c.id)]));
      const r = await driveServer({ url: child.wsUrl, site: sc.truth, tokens, events: online, frame: 64, window: 4096, deadlineMs: SERVER_BUDGET_MS(opts.quick) });
      const label = `server, durable, ws batched${r.sent < online.length ? ` (first ${r.sent.toLocaleString('en-US')}: ${SERVER_BUDGET_MS(opts.quick) / 1000} s budget)` : ''}`;
      record(name, label, r.sent, r.summary);
      speedRows.push([name, label, r.sent, r.eventsPerSec, r.latencyUs.p50 / 1000, r.latencyUs.p99 / 1000, r.eventsPerSec / ref.eventsPerSec]);
    } finally { await child.stop(); }
  }
  const section: BenchSection = {
    name: 'scenarios',
    tables: [
      {
        title: 'Scenarios: violations found against violations injected (ground truth)',
        headers: ['scenario', 'run', 'events', 'badges', 'injected', 'found', 'injected by code', 'mismatched badges', 'errors', 'check'],
        rows: checkRows,
      },
      {
        title: 'Scenarios: speed (ratio to the TypeScript reference core in process)',
        headers: ['scenario', 'run', 'events', 'events/s', 'p50 ms', 'p99 ms', 'ratio'],
        rows: speedRows,
      },
    ],
    notes: [
      'In-process runs use each event\'s simulated time as the engine clock, so presence timeouts, reuse lockouts, passage deadlines and the midnight reset are all exercised and checked.',
      'Server runs use wall time: the stream is played as fast as possible in windows (a window is cut before a credential reappears at another controller) and people whose outcomes depend on elapsed time are left out; latency is the round trip of each batched frame.',
      failures.length ? `FAILED: ${failures.length} run(s) differ from the ground truth (see the error above).` : 'Every run: violations found == violations injected, badge by badge.',
    ],
  };
  if (failures.length) throw new BenchFailure(failures.join('\n\n'), section);
  return section;
}
