/**
 * bench:bridge — the gate side. `apb bridge` runs as a child process on
 * socat pseudo-terminal pairs (up to 32 readers per pair, one `ports` entry
 * each); the simulated readers (test/bridge/sim-pd.ts) answer its polls in
 * this process and time, with performance.now():
 *
 *   card read ──(reader's reply to a poll)──▶ bridge ──▶ engine ──▶ bridge ──(osdp_LED)──▶ reader
 *   t0: the reply carrying the card is written           t1: the LED command arrives
 *
 * 1. card-to-LED latency (t1 − t0), closed loop: each reader presents a new
 *    card 30-50 ms after its LED (it reaches the bridge with the next poll), with the bridge in front of
 *      - the baseline: a bare uWS server answering every badge from memory
 *        with a fixed grant (bare-controller.ts), measured in the same run,
 *      - `apb serve --data :memory:` and `apb serve` on LMDB (durable);
 *    at 1, 8 and 32 readers per bridge; the ratio is to the baseline at the
 *    same number of readers.
 * 2. readers one bridge keeps polling at the poll interval (100 ms, 10
 *    polls/s each; no card traffic): the slowest reader's rate, the
 *    bridge's CPU, for growing numbers of readers.
 * 3. the floor under both: one 8-byte frame there and back over a pty pair
 *    with no bridge at all.
 * A pty has no baud rate: these are the bridge's own limits. On a real
 * RS-485 line at 9600 baud one poll and its answer take about 20 ms, so
 * the wire, not the bridge, limits a bus to about 5 readers at 100 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { CMD } from '../src/bridge/osdp/codes.js';
import { hasSocat, PtyPair, SimBus, type SimReader } from '../test/bridge/sim-pd.js';
import { MAIN_JS, startBareControllerChild, startServerChild, type Child } from './proc.js';
import { BenchFailure } from './report.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';

const TOKEN = 'bench-gate-token-0123456789abcdef';
const POLL_MS = 100;
const PER_PORT = 32;
/** a reader presents its next card THINK_MS-(THINK_MS+20) ms after its LED (short: many samples per row) */
const THINK_MS = 30;

type EngineKind = 'baseline' | 'memory' | 'durable';
const ENGINE_LABEL: Record<EngineKind, string> = {
  baseline: 'baseline: bare uWS, fixed reply from memory',
  memory: 'apb serve --data :memory:',
  durable: 'apb serve (LMDB, default durability)',
};

const siteText = (n: number): string => `site: bench-bridge
timezone: UTC
areas: [{ id: hall, entry: hard }]
readers:
${Array.from({ length: n }, (_, i) => `  - { id: r${i}, from: outside, to: hall, controller: gate }`).join('\n')}
controllers: [{ id: gate, token: ${TOKEN} }]
`;

async function startEngine(kind: EngineKind, n: number): Promise<Child> {
  if (kind === 'baseline') return startBareControllerChild();
  return startServerChild(siteText(n), kind === 'memory' ? ':memory:' : 'durable');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** user + system CPU time of a process so far, ms (/proc/PID/stat, 100 ticks/s) */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(x[11]) + Number(x[12])) * 10;
  } catch { return NaN; }
}

interface Rig { readers: SimReader[]; bridge: ChildProcess; health: string; stop(): Promise<void> }

/** n readers on ceil(n/PER_PORT) pty pairs, `apb bridge` on them, ready (engine link up, every reader online) */
async function rig(n: number, engineUrl: string): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'apb-bench-bridge-'));
  const ptys: PtyPair[] = [], sims: SimBus[] = [], readers: SimReader[] = [];
  let bridge: ChildProcess | null = null;
  const stop = async (): Promise<void> => {
    if (bridge && bridge.exitCode === null && bridge.signalCode === null) {
      const gone = new Promise((r) => bridge!.once('exit', r));
      bridge.kill('SIGTERM');
      const t = setTimeout(() => bridge!.kill('SIGKILL'), 5000);
      await gone; clearTimeout(t);
    }
    for (const s of sims) await s.close().catch(() => undefined);
    for (const p of ptys) await p.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: string[] = [];
    for (let i = 0; i * PER_PORT < n; i++) {
      const pty = await PtyPair.open();
      ptys.push(pty);
      const sim = await SimBus.open(pty.b);
      sims.push(sim);
      const here = Math.min(PER_PORT, n - i * PER_PORT);
      const lines: string[] = [];
      for (let a = 0; a < here; a++) {
        const r = sim.add(a + 1);
        r.record = false;
        readers.push(r);
        lines.push(`      - { id: r${i * PER_PORT + a}, address: ${a + 1}, policy: deny }`);
      }
      ports.push(`  - path: ${pty.a}\n    baud: 115200\n    pollInterval: ${POLL_MS}\n    readers:\n${lines.join('\n')}`);
    }
    writeFileSync(join(dir, 'bridge.yaml'), `engine: { url: "${engineUrl}", token: ${TOKEN} }\ndata: ./data\nhttp: { port: 0 }\nfeedback: { offlineBeep: false }\nports:\n${ports.join('\n')}\n`);
    bridge = spawn(process.execPath, [MAIN_JS, 'bridge', '--config', join(dir, 'bridge.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, APB_LOG_LEVEL: 'error' } });
    let out = '', err = '';
    bridge.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    bridge.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    const until = Date.now() + 60_000;
    let health = '';
    for (;;) {
      if (bridge.exitCode !== null) throw new Error(`apb bridge exited: ${err}`);
      if (Date.now() > until) throw new Error(`apb bridge not ready after 60 s: ${err}`);
      health ||= /health (http:\/\/\S+)\/healthz/.exec(out)?.[1] ?? '';
      if (health) {
        try {
          const h = (await (await fetch(`${health}/healthz`)).json()) as { ready: boolean };
          if (h.ready) break;
        } catch { /* starting */ }
      }
      await sleep(100);
    }
    return { readers, bridge, health, stop };
  } catch (e) { await stop(); throw e; }
}

const pct = (sorted: number[], q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** decisions the bridge took without the engine (past the deadline): from its /metrics */
async function offlineDecisions(health: string): Promise<number> {
  const text = await (await fetch(`${health}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('apb_bridge_decisions_total{source="offline"')).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}

interface LatencyResult { n: number; ports: number; lat: number[]; offline: number; minPollRate: number }

async function latencyRun(kind: EngineKind, n: number, seconds: number): Promise<LatencyResult> {
  const engine = await startEngine(kind, n);
  let rg: Rig | null = null;
  try {
    rg = await rig(n, engine.wsUrl);
    const lat: number[] = [];
    let measuring = false, running = true;
    const polls = new Array<number>(n).fill(0);
    rg.readers.forEach((r, k) => {
      let cardAt = 0, waiting = false, seq = 0;
      const present = (): void => { if (running) r.card(1 + (k % 250), (seq++ % 65000) + 1); };
      r.hooks = {
        cardSent: (t) => { cardAt = t; waiting = true; },
        command: (code, t) => {
          if (code === CMD.POLL) { if (measuring) polls[k]!++; return; }
          if (code !== CMD.LED || !waiting) return;
          waiting = false;
          if (measuring) lat.push(t - cardAt);
          setTimeout(present, THINK_MS + Math.random() * 20);
        },
      };
      setTimeout(present, Math.random() * 150);
    });
    await sleep(1000); // warm-up
    measuring = true;
    const off0 = await offlineDecisions(rg.health);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    measuring = false;
    const secs = (performance.now() - t0) / 1000;
    running = false;
    const offline = (await offlineDecisions(rg.health)) - off0;
    await sleep(300);
    return { n, ports: Math.ceil(n / PER_PORT), lat: lat.sort((a, b) => a - b), offline, minPollRate: Math.min(...polls) / secs };
  } finally { await rg?.stop(); await engine.stop(); }
}

interface PollResult { n: number; ports: number; min: number; median: number; txPerSec: number; cpu: number }

async function pollRun(engineUrl: string, n: number, seconds: number): Promise<PollResult> {
  const rg = await rig(n, engineUrl);
  try {
    const polls = new Array<number>(n).fill(0);
    let measuring = false;
    rg.readers.forEach((r, k) => { r.hooks = { command: (code) => { if (measuring && code === CMD.POLL) polls[k]!++; } }; });
    await sleep(1000);
    const c0 = cpuMs(rg.bridge.pid!);
    measuring = true;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    measuring = false;
    const secs = (performance.now() - t0) / 1000;
    const cpu = (cpuMs(rg.bridge.pid!) - c0) / (secs * 1000);
    const rates = polls.map((p) => p / secs).sort((a, b) => a - b);
    return { n, ports: rg.readers.length ? Math.ceil(n / PER_PORT) : 0, min: rates[0]!, median: pct(rates, 0.5), txPerSec: polls.reduce((a, b) => a + b, 0) / secs, cpu };
  } finally { await rg.stop(); }
}

/** one 8-byte frame written at one end of a pty pair, echoed at the other, read back: no bridge */
async function ptyFloor(rounds: number): Promise<number[]> {
  const pty = await PtyPair.open();
  const open = (path: string): Promise<SerialPort> => new Promise((res, rej) => { const p = new SerialPort({ path, baudRate: 115200, autoOpen: false }); p.open((e) => (e ? rej(e) : res(p))); });
  const a = await open(pty.a), b = await open(pty.b);
  try {
    b.on('data', (d: Buffer) => b.write(d));
    const out: number[] = [];
    const frame = Buffer.from([0x53, 0x01, 0x08, 0x00, 0x04, 0x60, 0x00, 0x00]);
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await new Promise<void>((res) => {
        let got = 0;
        const on = (d: Buffer): void => { got += d.length; if (got >= frame.length) { a.off('data', on); res(); } };
        a.on('data', on);
        a.write(frame);
      });
      out.push(performance.now() - t0);
    }
    return out.sort((x, y) => x - y);
  } finally {
    await new Promise((r) => a.close(r)); await new Promise((r) => b.close(r));
    await pty.close();
  }
}

export async function bench(opts: BenchOptions): Promise<BenchSection> {
  if (!hasSocat()) throw new BenchFailure('socat is not installed (Debian package socat): no pseudo-terminal pairs for the bridge benchmark', { name: 'bridge', tables: [], notes: [] });
  const sizes = opts.quick ? [1, 8] : [1, 8, 32];
  const engines: EngineKind[] = opts.quick ? ['baseline', 'durable'] : ['baseline', 'memory', 'durable'];
  const seconds = opts.quick ? 3 : 20;
  const load0 = loadavg()[0]!;

  const floor = await ptyFloor(opts.quick ? 300 : 2000);
  opts.log(`pty round trip p50 ${r2(pct(floor, 0.5))} ms`);

  const lat: Record<string, LatencyResult> = {};
  for (const n of sizes) {
    for (const kind of engines) {
      opts.log(`latency: ${n} reader(s), ${kind}`);
      lat[`${kind}/${n}`] = await latencyRun(kind, n, seconds);
      const x = lat[`${kind}/${n}`]!;
      opts.log(`  ${x.lat.length} reads, p50 ${r2(pct(x.lat, 0.5))} ms, p99 ${r2(pct(x.lat, 0.99))} ms, offline ${x.offline}`);
    }
  }
  const latTable: BenchTable = {
    title: `Card read to LED at the reader through apb bridge (closed loop: a new card ${THINK_MS}-${THINK_MS + 20} ms after each LED; ${seconds} s per row; ms)`,
    headers: ['engine', 'readers', 'ports', 'reads', 'p50', 'p99', 'max', 'p50 × baseline', 'p99 × baseline', 'decided offline', `slowest reader polls/s (target ${1000 / POLL_MS})`],
    rows: [],
  };
  for (const n of sizes) {
    const base = lat[`baseline/${n}`]!;
    for (const kind of engines) {
      const x = lat[`${kind}/${n}`]!;
      latTable.rows.push([ENGINE_LABEL[kind], n, x.ports, x.lat.length, r2(pct(x.lat, 0.5)), r2(pct(x.lat, 0.99)), r2(x.lat[x.lat.length - 1] ?? NaN),
        r2(pct(x.lat, 0.5) / pct(base.lat, 0.5)), r2(pct(x.lat, 0.99) / pct(base.lat, 0.99)), x.offline, r2(x.minPollRate)]);
    }
  }

  const pollSizes = opts.quick ? [8, 32] : [8, 32, 64, 128, 256];
  const pollRows: PollResult[] = [];
  const engine = await startBareControllerChild();
  try {
    for (const n of pollSizes) {
      opts.log(`polling: ${n} readers`);
      pollRows.push(await pollRun(engine.wsUrl, n, opts.quick ? 2 : 5));
    }
  } finally { await engine.stop(); }
  const target = 1000 / POLL_MS;
  const pollTable: BenchTable = {
    title: `Readers one bridge polls at the poll interval (${POLL_MS} ms: ${target} polls/s each, ${PER_PORT} readers per pty pair, no card traffic, baseline engine)`,
    headers: ['readers', 'ports', 'slowest reader polls/s', 'median polls/s', 'slowest × target', 'transactions/s', 'bridge CPU (1 core = 1)', 'rate kept (≥ 90 %)'],
    rows: pollRows.map((p) => [p.n, p.ports, r2(p.min), r2(p.median), r2(p.min / target), Math.round(p.txPerSec), r2(p.cpu), p.min >= 0.9 * target ? 'yes' : 'no']),
  };
  const floorTable: BenchTable = {
    title: 'The floor: an 8-byte frame there and back over a pty pair, no bridge (ms)',
    headers: ['rounds', 'p50', 'p99', 'max'],
    rows: [[floor.length, r2(pct(floor, 0.5)), r2(pct(floor, 0.99)), r2(floor[floor.length - 1]!)]],
  };

  const missed = pollRows.filter((p) => p.min < 0.9 * target).map((p) => p.n);
  const keptUpTo = pollRows.filter((p) => p.n < (missed[0] ?? Infinity)).map((p) => p.n).pop() ?? 0;
  const notes = [
    `Card to LED with the real engine (durable) at ${sizes.map((n) => `${n} reader${n > 1 ? 's' : ''}: p50 ${r2(pct(lat[`durable/${n}`]!.lat, 0.5))} ms, p99 ${r2(pct(lat[`durable/${n}`]!.lat, 0.99))} ms`).join('; ')} (baseline at the same sizes: ${sizes.map((n) => `${r2(pct(lat[`baseline/${n}`]!.lat, 0.5))}/${r2(pct(lat[`baseline/${n}`]!.lat, 0.99))} ms`).join(', ')}).`,
    `The poll rate (≥ 90 % of it for the slowest reader) was kept at every size up to ${keptUpTo} readers per bridge${missed.length ? `; missed at ${missed.join(', ')}` : ''} (sizes tried: ${pollSizes.join(', ')}). On RS-485 the line is the limit first: about 5 readers per bus at 9600 baud and 100 ms.`,
    `The readers are simulated in the benchmark process and the bridge and engine are child processes on the same machine: all share its cores. Load average (1 min) at the start and the end of this section: ${r2(load0)} and ${r2(loadavg()[0]!)} (other work on the machine shows in the tails and the poll rates).`,
  ];
  return { name: 'bridge', tables: [latTable, pollTable, floorTable], notes };
}
