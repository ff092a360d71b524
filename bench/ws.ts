/**
 * WebSocket benchmark: a controller swarm (src/sim/swarm.ts, its own
 * process) against the real server (durable LMDB data, and :memory:) and two
 * baselines in bare-uws.ts, all child processes of this run:
 *  - the bare uWS handler: msgpackr decode of each frame, a fixed decision per
 *    message (its id echoed), msgpackr encode: what any decision server must do
 *    at least; the issue's targets are ratios to it;
 *  - the bare uWS echo: the frame sent back untouched (no decode, no encode): the
 *    socket layer alone, a stricter yardstick also reported.
 *  - closed loop, 1/16/64 messages per frame: peak messages per second;
 *  - open loop at fixed offered rates (fractions of the server's measured
 *    one-message-per-frame peak): p50/p99/p99.9 from intended send times.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { siteYaml, benchSite, simToken } from '../src/sim/sites.js';
import type { SwarmOptions, SwarmResult } from '../src/sim/swarm.js';
import { BUILD, benchDataDir, startBareChild, startServerChild, type Child } from './proc.js';
import { prefill } from './prefill.js';
import { deviceWrittenBytes } from './disk-writes.js';
import { BenchFailure } from './report.js';
import { redisMissing, redisRows, type RedisRow } from './redis.js';
import { barChart, lineChart } from './svg.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';

export function runSwarmChild(o: SwarmOptions, timeoutMs = 120_000): Promise<SwarmResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(BUILD, 'src', 'sim', 'swarm.js'), JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line) { try { resolve(JSON.parse(line) as SwarmResult); return; } catch { /* fall through */ } }
      reject(new Error(`swarm exited ${code}: ${err || out}`));
    });
  });
}

const ms = (us: number) => us / 1000;

/** What has reached the disk holding the server's data directory (disk-writes.ts) and how many journal syncs it made (/metrics). */
async function diskCounters(child: Child): Promise<{ bytes: number; syncs: number | null }> {
  const bytes = deviceWrittenBytes(tmpdir()); // startServerChild's data directories are under tmpdir()
  let syncs: number | null = null;
  try {
    const m = /^apb_storage_syncs_total (\d+)$/m.exec(await (await fetch(`${child.url}/metrics`)).text());
    if (m) syncs = Number(m[1]);
  } catch { /* older server */ }
  return { bytes, syncs };
}

export async function bench(opts: BenchOptions): Promise<BenchSection> {
  const q = opts.quick;
  const N = q ? 4 : 16;                      // connections (one controller each)
  const dur = q ? 800 : 3000;
  const batches = [1, 16, 64];
  const conns = Array.from({ length: N }, (_, i) => ({ token: simToken(`ctl-${i}`), readers: [`ctl-${i}-in`, `ctl-${i}-out`] }));
  /** a just-started process is slow for its first seconds: load it (closed loop, one message per frame) before measuring latency */
  const warmUp = (url: string, echo?: boolean): Promise<SwarmResult> => runSwarmChild({ url, conns, batch: 1, mode: 'closed', inflight: 8, durationMs: q ? 1000 : 3000, echo });
  const site = siteYaml(benchSite(N));
  const HANDLER = 'bare uWS handler (msgpackr decode, fixed decision, encode)';
  const targets: { name: string; start: () => Promise<Child>; echo: boolean; path?: string }[] = [
    { name: 'bare uWS echo', start: startBareChild, echo: true },
    { name: HANDLER, start: startBareChild, echo: false, path: '/handler/v1/controller' },
    { name: 'apb durable (LMDB)', start: () => startServerChild(site, 'durable'), echo: false },
  ];
  // the same server replying only once the write-ahead log is fsynced (survives power loss)
  targets.push({ name: 'apb durable, --durability flush', start: () => startServerChild(site, 'durable', undefined, ['--durability', 'flush']), echo: false });
  if (!q) targets.push({ name: 'apb :memory:', start: () => startServerChild(site, ':memory:'), echo: false });

  const closed = new Map<string, SwarmResult>();
  const disk: (string | number)[][] = [];
  const open: { target: string; r: SwarmResult }[] = [];
  const problems: string[] = [];
  let peak1 = 0;
  for (const t of targets) {
    opts.log(`starting ${t.name}`);
    const child = await t.start();
    try {
      for (const b of batches) {
        opts.log(`${t.name}: closed loop, ${N} connections, ${b} msg/frame`);
        const before = t.name.startsWith('apb') ? await diskCounters(child) : null;
        const w0 = performance.now();
        // the better of two runs, for every target alike: one run of a baseline was seen 2.4x below its usual rate
        // (a shared machine), which made every ratio to it meaningless
        let r = await runSwarmChild({ url: `${child.wsUrl}${t.path ?? '/v1/controller'}`, conns, batch: b, mode: 'closed', inflight: b === 1 ? 8 : 2, durationMs: dur, echo: t.echo });
        let meanRate = r.msgsPerSec;
        if (!q) {
          const again = await runSwarmChild({ url: `${child.wsUrl}${t.path ?? '/v1/controller'}`, conns, batch: b, mode: 'closed', inflight: b === 1 ? 8 : 2, durationMs: dur, echo: t.echo });
          meanRate = (r.msgsPerSec + again.msgsPerSec) / 2;
          if (again.msgsPerSec > r.msgsPerSec) r = again;
        }
        closed.set(`${t.name}|${b}`, r);
        if (before) {
          const after = await diskCounters(child);
          // the swarm's warm-up runs at about the measured rate too: messages ≈ rate × the whole run
          const seconds = (performance.now() - w0) / 1000;
          const msgs = meanRate * seconds;
          const syncs = after.syncs !== null && before.syncs !== null ? after.syncs - before.syncs : NaN;
          // no syncs (:memory:): no ratio (Infinity does not survive results.json)
          disk.push([t.name, b, (after.bytes - before.bytes) / msgs, syncs / seconds, syncs > 0 ? msgs / syncs : 'no syncs']);
        }
        if (Object.keys(r.errors).length) problems.push(`${t.name} batch ${b}: error replies ${JSON.stringify(r.errors)} in ${r.checkedFrames} checked frames`);
      }
      if (t.name === 'apb durable (LMDB)') peak1 = closed.get(`${t.name}|1`)!.msgsPerSec;
    } finally { await child.stop(); }
  }
  // what a user could build instead: Redis + a Lua script, same connection count
  let redis: RedisRow[] = [];
  const noRedis = redisMissing();
  if (noRedis) opts.log(`Redis rows skipped: ${noRedis}`);
  else redis = await redisRows({ clients: N, requests: q ? 20_000 : 200_000, log: opts.log });
  // open loop: offered rates relative to the durable server's one-message-per-frame peak
  const fractions = q ? [0.25, 0.5] : [0.1, 0.25, 0.5, 0.75, 0.9];
  for (const t of targets.filter((x) => !x.name.includes(':memory:'))) {
    const child = await t.start();
    try {
      // a process that has just started is slow for its first seconds (code not optimised, heap not grown:
      // see the 10 M rows below); the first open-loop row met that, so each target is warmed up first, the
      // baselines as apb, and the rows measure the steady state
      const url = `${child.wsUrl}${t.path ?? '/v1/controller'}`;
      opts.log(`${t.name}: warming up (closed loop ${q ? 1 : 3} s)`);
      await warmUp(url, t.echo);
      for (const f of fractions) {
        const rate = Math.max(100, Math.round(peak1 * f));
        opts.log(`${t.name}: open loop at ${rate} msg/s (${f * 100}% of peak)`);
        const r = await runSwarmChild({ url, conns, batch: 1, mode: 'open', rate, durationMs: dur, warmupMs: 300, echo: t.echo });
        open.push({ target: t.name, r });
      }
      // a burst: 10x a sustained rate of 10 % of the durable peak (i.e. the peak itself), for one second
      const burst = Math.max(1000, Math.round(peak1));
      opts.log(`${t.name}: burst at ${burst} msg/s for 1 s (10x of 10 % of peak)`);
      const rb = await runSwarmChild({ url, conns, batch: 1, mode: 'open', rate: burst, durationMs: q ? 500 : 1000, warmupMs: 0, echo: t.echo });
      open.push({ target: `${t.name} (burst)`, r: rb });
    } finally { await child.stop(); }
  }
  // the same half-peak row against a store that already holds many events: latency must not grow with the store
  let indexLagAtStart = NaN;
  /** the big-store rows: warmed up (judged against the targets) and just started */
  let full: { target: string; r: SwarmResult } | undefined, coldRow: typeof full;
  {
    const events = q ? 1_000_000 : 10_000_000;
    const { dir, cleanup } = benchDataDir();
    try {
      opts.log(`prefilling a data directory with ${events.toLocaleString('en-US')} events`);
      await prefill(dir, events, conns[0]!.readers, 'ctl-0', opts.log);
      const child = await startServerChild(site, 'durable', dir);
      try {
        // a prefilled directory has no snapshot: the replica worker replays the journal once and writes one
        // (about 1 s per million events); measure once that one-off work is done, as on a normal restart
        const until = Date.now() + 180_000;
        while (Date.now() < until && !readdirSync(join(dir, 'snapshots')).some((f) => f.endsWith('.snap'))) await new Promise((r) => setTimeout(r, 250));
        // and D/index caught up (prefill indexes, but a lagging indexer would be measured too): a guard, so the
        // row measures the server as it runs on a big store, indexing its live traffic
        const lag = async (): Promise<number> => {
          try { return Number(/^apb_store_index_lag_records (\d+)$/m.exec(await (await fetch(`${child.url}/metrics`)).text())?.[1] ?? NaN); } catch { return NaN; }
        };
        const ixUntil = Date.now() + (q ? 120_000 : 600_000);
        for (let l = await lag(), shown = 0; Date.now() < ixUntil && !(l < 1000); l = await lag()) {
          if (Date.now() - shown > 10_000) { opts.log(`waiting for D/index: ${l.toLocaleString('en-US')} records behind`); shown = Date.now(); }
          await new Promise((r) => setTimeout(r, 500));
        }
        indexLagAtStart = await lag();
        await new Promise((r) => setTimeout(r, 2000));
        const rate = Math.max(100, Math.round(peak1 * 0.5));
        const url = `${child.wsUrl}/v1/controller`;
        // a process that has just started answers its first seconds slowly whatever its store holds (its
        // code is not optimised yet and its heap not grown: the empty-store rows are measured after the
        // closed-loop runs): measured once as it is, then again after the same kind of warm-up, and the
        // target is judged on the second, so the row shows what the store's size costs
        opts.log(`apb durable on ${events.toLocaleString('en-US')} events: open loop at ${rate} msg/s, just started`);
        const cold = await runSwarmChild({ url, conns, batch: 1, mode: 'open', rate, durationMs: dur, warmupMs: 300 });
        coldRow = { target: `apb durable, store holding ${events / 1e6} M events, first seconds after start`, r: cold };
        open.push(coldRow);
        opts.log(`apb durable on ${events.toLocaleString('en-US')} events: warming up (closed loop ${q ? 1 : 3} s, then open loop at ${rate} msg/s for ${q ? 1 : 3} s)`);
        await warmUp(url);
        await runSwarmChild({ url, conns, batch: 1, mode: 'open', rate, durationMs: q ? 1000 : 3000, warmupMs: 0 });
        opts.log(`apb durable on ${events.toLocaleString('en-US')} events: open loop at ${rate} msg/s`);
        const r = await runSwarmChild({ url, conns, batch: 1, mode: 'open', rate, durationMs: dur, warmupMs: 300 });
        full = { target: `apb durable, store holding ${events / 1e6} M events`, r };
        open.push(full);
      } finally { await child.stop(); }
    } finally { cleanup(); }
  }

  const echoOf = (b: number) => closed.get(`bare uWS echo|${b}`)?.msgsPerSec ?? NaN;
  const handlerOf = (b: number) => closed.get(`${HANDLER}|${b}`)?.msgsPerSec ?? NaN;
  const tput: BenchTable = {
    title: `WebSocket throughput, closed loop (${N} connections, ${(dur / 1000).toFixed(1)} s per run${q ? '' : ', the better of two runs per row'})`,
    headers: ['target', 'msgs/frame', 'messages/s', 'frames/s', 'p50 ms', 'p99 ms', 'ratio to handler', 'ratio to echo'],
    rows: [...closed.entries()].map(([k, r]) => {
      const [name, b] = k.split('|') as [string, string];
      return [name, Number(b), r.msgsPerSec, r.framesPerSec, ms(r.latencyUs.p50), ms(r.latencyUs.p99), r.msgsPerSec / handlerOf(Number(b)), r.msgsPerSec / echoOf(Number(b))];
    }).concat(redis.map((r) => [`Redis 7 + Lua, appendfsync ${r.fsync} (redis-benchmark, pipeline ${r.pipeline})`, r.pipeline, r.requestsPerSec, r.requestsPerSec / r.pipeline, r.p50Ms, r.p99Ms, r.requestsPerSec / handlerOf(r.pipeline), r.requestsPerSec / echoOf(r.pipeline)])),
  };
  const lat: BenchTable = {
    title: `WebSocket latency, open loop, 1 message per frame (offered = fraction of apb durable's peak ${Math.round(peak1).toLocaleString('en-US')} msg/s)`,
    headers: ['target', 'offered msg/s', 'achieved msg/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'unanswered'],
    rows: open.map(({ target, r }) => [target, r.offeredPerSec ?? 0, r.msgsPerSec, ms(r.latencyUs.p50), ms(r.latencyUs.p99), ms(r.latencyUs.p999), ms(r.latencyUs.max), r.unanswered]),
  };

  const diskTable: BenchTable = {
    title: 'Disk writes per decided message (what the disk holding the data directory received, device counter after a sync of the file system: the write-ahead log, the LMDB journal, D/index and the file system\'s own journal; syncs = write-ahead log fdatasyncs, the reply path\'s)',
    headers: ['target', 'msgs/frame', 'bytes written per message', 'syncs/s', 'messages per sync'],
    rows: disk,
  };
  const dur1 = closed.get('apb durable (LMDB)|1'), dur64 = closed.get('apb durable (LMDB)|64');
  const half = open.filter((o) => o.target === 'apb durable (LMDB)').sort((a, b) => Math.abs((a.r.offeredPerSec ?? 0) - peak1 / 2) - Math.abs((b.r.offeredPerSec ?? 0) - peak1 / 2))[0];
  const notes: string[] = [];
  if (dur1) {
    const ratio = dur1.msgsPerSec / handlerOf(1);
    notes.push(`One message per frame, durable: ${Math.round(dur1.msgsPerSec).toLocaleString('en-US')} msg/s = ${ratio.toFixed(2)}× the bare handler (target ≥ 0.6×): ${ratio >= 0.6 ? 'MET' : 'NOT MET'}; ${(dur1.msgsPerSec / echoOf(1)).toFixed(2)}× the bare echo.`);
  }
  if (dur64) {
    const ratio = dur64.msgsPerSec / handlerOf(64);
    notes.push(`64 messages per frame, durable: ${Math.round(dur64.msgsPerSec).toLocaleString('en-US')} decisions/s = ${ratio.toFixed(2)}× the bare handler (target ≥ 0.5×): ${ratio >= 0.5 ? 'MET' : 'NOT MET'}; ${(dur64.msgsPerSec / echoOf(64)).toFixed(2)}× the bare echo.`);
  }
  const mem64 = closed.get('apb :memory:|64');
  if (mem64) {
    const ratio = mem64.msgsPerSec / handlerOf(64);
    notes.push(`64 messages per frame, :memory:: ${Math.round(mem64.msgsPerSec).toLocaleString('en-US')} decisions/s = ${ratio.toFixed(2)}× the bare handler (target ≥ 0.8×): ${ratio >= 0.8 ? 'MET' : 'NOT MET'}; ${(mem64.msgsPerSec / echoOf(64)).toFixed(2)}× the bare echo.`);
  }
  if (half) {
    const ok = half.r.latencyUs.p50 <= 1000 && half.r.latencyUs.p99 <= 3000 && half.r.latencyUs.p999 <= 5000;
    notes.push(`Latency at half the peak (${Math.round(half.r.offeredPerSec ?? 0).toLocaleString('en-US')} msg/s offered), durable: p50 ${ms(half.r.latencyUs.p50).toFixed(2)} ms, p99 ${ms(half.r.latencyUs.p99).toFixed(2)} ms, p99.9 ${ms(half.r.latencyUs.p999).toFixed(2)} ms (target p50 ≤ 1 ms, p99 ≤ 3 ms, p99.9 ≤ 5 ms): ${ok ? 'MET' : 'NOT MET'}.`);
  }
  const fl1 = closed.get('apb durable, --durability flush|1'), fl64 = closed.get('apb durable, --durability flush|64');
  const flHalf = open.filter((o) => o.target === 'apb durable, --durability flush').sort((a, b) => Math.abs((a.r.offeredPerSec ?? 0) - peak1 / 2) - Math.abs((b.r.offeredPerSec ?? 0) - peak1 / 2))[0];
  if (fl1 && fl64) notes.push(`--durability flush (each reply waits for the fdatasync of the write-ahead log): 1/frame ${Math.round(fl1.msgsPerSec).toLocaleString('en-US')} msg/s = ${(fl1.msgsPerSec / handlerOf(1)).toFixed(2)}×, 64/frame ${Math.round(fl64.msgsPerSec).toLocaleString('en-US')} = ${(fl64.msgsPerSec / handlerOf(64)).toFixed(2)}× the bare handler.`);
  if (flHalf) notes.push(`--durability flush at ${Math.round(flHalf.r.offeredPerSec ?? 0).toLocaleString('en-US')} msg/s: p50 ${ms(flHalf.r.latencyUs.p50).toFixed(2)} ms, p99 ${ms(flHalf.r.latencyUs.p99).toFixed(2)} ms, p99.9 ${ms(flHalf.r.latencyUs.p999).toFixed(2)} ms.`);
  for (const r of redis.filter((x) => x.fsync === 'always')) {
    const apb = closed.get(`apb durable (LMDB)|${r.pipeline}`);
    if (apb) notes.push(`Against Redis 7 + Lua with appendfsync always, ${r.pipeline} per round trip: apb durable ${(apb.msgsPerSec / r.requestsPerSec).toFixed(2)}× (${Math.round(apb.msgsPerSec).toLocaleString('en-US')} vs ${Math.round(r.requestsPerSec).toLocaleString('en-US')}/s).`);
  }
  if (noRedis) notes.push(`Redis rows skipped: ${noRedis}.`);
  const burstRow = open.find((o) => o.target === 'apb durable (LMDB) (burst)');
  if (full) {
    const ok = full.r.latencyUs.p50 <= 1000 && full.r.latencyUs.p99 <= 3000 && full.r.latencyUs.p999 <= 5000;
    notes.push(`${full.target}, half the peak: p50 ${ms(full.r.latencyUs.p50).toFixed(2)} ms, p99 ${ms(full.r.latencyUs.p99).toFixed(2)} ms, p99.9 ${ms(full.r.latencyUs.p999).toFixed(2)} ms (same targets): ${ok ? 'MET' : 'NOT MET'}; measured once its snapshot was written and D/index was ${Number.isFinite(indexLagAtStart) ? `${indexLagAtStart.toLocaleString('en-US')} records behind` : 'of unknown lag'}.`);
  }
  if (coldRow) notes.push(`${coldRow.target} (measured from 2 s after it was ready, before any warm-up): p50 ${ms(coldRow.r.latencyUs.p50).toFixed(2)} ms, p99 ${ms(coldRow.r.latencyUs.p99).toFixed(2)} ms, p99.9 ${ms(coldRow.r.latencyUs.p999).toFixed(2)} ms.`);
  if (burstRow) notes.push(`Burst (10x a sustained 10 % of the durable peak, ${Math.round(burstRow.r.offeredPerSec ?? 0).toLocaleString('en-US')} msg/s offered for ${q ? 0.5 : 1} s), durable: p99 ${ms(burstRow.r.latencyUs.p99).toFixed(2)} ms (target ≤ 50 ms): ${burstRow.r.latencyUs.p99 <= 50_000 ? 'MET' : 'NOT MET'}.`);
  notes.push('Client and server share the 2 cores: the swarm process and the server (or echo) process compete for CPU, in the baseline rows too.');
  notes.push(...problems.map((p) => `PROBLEM: ${p}`));

  const series = (target: string, pct: 'p50' | 'p99' | 'p999', label: string) => ({
    name: `${target.replace(' (LMDB)', '')} ${label}`,
    points: open.filter((o) => o.target === target).map((o) => [o.r.offeredPerSec ?? 0, ms(o.r.latencyUs[pct])] as [number, number]),
  });
  const svgs = [
    {
      file: 'ws-latency.svg', caption: 'WebSocket latency percentiles against offered load (open loop, 1 message per frame)',
      svg: lineChart({
        title: 'WebSocket latency vs offered load', xLabel: 'offered messages/s', yLabel: 'latency (ms, log)', logY: true,
        series: [series('apb durable (LMDB)', 'p50', 'p50'), series('apb durable (LMDB)', 'p99', 'p99'), series('apb durable (LMDB)', 'p999', 'p99.9'),
          series('apb durable, --durability flush', 'p50', 'p50'), series('apb durable, --durability flush', 'p99', 'p99'),
          series(HANDLER, 'p50', 'p50'), series(HANDLER, 'p99', 'p99'),
          series('bare uWS echo', 'p50', 'p50'), series('bare uWS echo', 'p99', 'p99'), series('bare uWS echo', 'p999', 'p99.9')],
      }),
    },
    {
      file: 'ws-throughput.svg', caption: 'WebSocket messages per second by batch size (closed loop)',
      svg: barChart({
        title: 'WebSocket throughput by messages per frame', yLabel: 'messages/s',
        categories: batches.map((b) => `${b} msg/frame`),
        series: targets.map((t) => ({ name: t.name, values: batches.map((b) => closed.get(`${t.name}|${b}`)?.msgsPerSec ?? null) })),
      }),
    },
  ];
  const section: BenchSection = { name: 'ws', tables: [tput, lat, diskTable], notes, svgs };
  if (problems.length) throw new BenchFailure(`error replies during the WebSocket runs:\n${problems.join('\n')}`, section);
  return section;
}
