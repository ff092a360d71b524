/**
 * Core benchmark: decisions per second of the WebAssembly core at 100 k /
 * 1 M / 10 M / 50 M stored credentials, against, in the same run:
 *   - the previous memory layout ("layout 2": 24-byte records, a separate
 *     index of record numbers, a linked timeout list), main's core before
 *     the 64-byte buckets (lockdown and supervision included), kept as
 *     test/fixtures/core-layout2.wasm (same ABI, same host, same stream);
 *   - the machine itself: a sequential read (bandwidth) and dependent and
 *     independent random loads (latency, and latency overlapped) over a
 *     buffer the size of the 10 M table;
 *   - the TypeScript reference model through the same apply() API.
 * plus the resident bytes per credential, the restart (restore of a
 * snapshot file) with 10 M credentials, and whether transparent huge pages
 * back the core's memory.
 *
 * Site (a realistic rule mix): campus (entry hard, exit soft, maxOccupancy)
 * > building (entry hard, exit soft, presenceTimeout 1 h, strict) > lab
 * (entry soft, commitOn passage), and an annex no reader leads to (5,000
 * random credentials are put there for the muster row); gate readers with a hard 5 s reuse
 * lockout, building readers with a soft one. Every credential is stored
 * first (one grant at the campus gate), then random credentials badge at
 * random readers, so lookups hit memory at random, and grants, denies,
 * soft violations and pending moves all occur.
 *
 * Rates are medians: each measurement is the median over 64 k-decision
 * chunks, and each row is the median of REPEATS such measurements taken in
 * turn with the other cores of its size (old, new, new without timeouts,
 * again ...), so a burst of other load on the 2 shared cores hits all rows.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';
import { loadSiteText } from '../src/config/load.js';
import type { CompiledSite } from '../src/config/types.js';
import { createWasmCore, type WasmCore } from '../src/engine/wasm-core.js';
import { createReferenceCore } from '../src/engine/reference-core.js';
import type { CoreOp, EngineCore } from '../src/engine/types.js';

const MIX_SITE = `
site: bench-core
timezone: UTC
areas:
  - { id: campus, entry: hard, exit: soft, maxOccupancy: 50000000 }
  - { id: building, parent: campus, entry: hard, exit: soft, strict: true, presenceTimeout: 3600 }
  - { id: lab, parent: building, entry: soft, commitOn: passage, passageTimeout: 10 }
  - { id: annex, parent: campus }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c, reuseLockout: 5, reuseMode: hard }
  - { id: gate-out, from: campus, to: outside, controller: c }
  - { id: b-in, from: campus, to: building, controller: c, reuseLockout: 5, reuseMode: soft }
  - { id: b-out, from: building, to: campus, controller: c }
  - { id: lab-in, from: building, to: lab, controller: c }
  - { id: lab-out, from: lab, to: building, controller: c }
controllers:
  - { id: c, token: bench-long-test-token }
`;
/** same tree and readers, no timeouts */
const PLAIN_SITE = MIX_SITE.replace(', presenceTimeout: 3600', '');

const T0 = Date.UTC(2026, 0, 5, 8);
const READERS = 6;
const REPEATS = 3;
const CHUNK = 1 << 16;
/** the package root (build/bench/core.js → ../..) */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAYOUT2 = join(ROOT, 'test', 'fixtures', 'core-layout2.wasm');

function site(text: string): CompiledSite { return loadSiteText(text, 'bench site').site; }

/** xorshift32: the same stream for every core */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

function gc(): void { (globalThis as { gc?: () => void }).gc?.(); }
/** collects garbage and lets V8 release freed WebAssembly memories before an RSS reading */
async function settle(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 100));
  gc();
}
const mps = (n: number, ms: number): number => n / ms / 1000;
const fmt = (x: number, d = 2): string => x.toFixed(d);

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[v.length >> 1]! : 0;
}

/** stores credentials 0..n-1 through the batch path (one grant each at the campus gate) */
function preloadWasm(core: WasmCore, n: number): void {
  const lo = new Uint32Array(CHUNK), hi = new Uint32Array(CHUNK), rd = new Int32Array(CHUNK), g = new Uint8Array(CHUNK);
  for (let base = 0; base < n; base += CHUNK) {
    const k = Math.min(CHUNK, n - base);
    for (let i = 0; i < k; i++) lo[i] = base + i;
    core.badgeInts(lo.subarray(0, k), hi.subarray(0, k), rd.subarray(0, k), T0, g.subarray(0, k));
  }
}

function preloadApply(core: EngineCore, n: number): void {
  const chunk = 4096;
  for (let base = 0; base < n; base += chunk) {
    const ops: CoreOp[] = [];
    for (let i = base; i < Math.min(n, base + chunk); i++) ops.push({ op: 'badge', cred: { kind: 'int', value: BigInt(i) }, reader: 0 });
    core.apply(ops, T0);
  }
}

/** random badges as CoreOp batches of 256 (what a busy server hands the core per turn) */
function makeOps(n: number, total: number, seed: number): CoreOp[][] {
  const r = rng(seed);
  const batches: CoreOp[][] = [];
  for (let done = 0; done < total;) {
    const b: CoreOp[] = [];
    for (let i = 0; i < 256 && done < total; i++, done++) {
      b.push({ op: 'badge', cred: { kind: 'int', value: BigInt(r() % n) }, reader: r() % READERS });
    }
    batches.push(b);
  }
  return batches;
}

/** decisions/s through EngineCore.apply (median over groups of 16 batches); the clock moves 1 ms per batch */
function timeApply(core: EngineCore, batches: CoreOp[][], start: number): number {
  let now = start;
  const rates: number[] = [];
  for (let g = 0; g < batches.length; g += 16) {
    const group = batches.slice(g, g + 16);
    const t = performance.now();
    for (const b of group) core.apply(b, now++);
    rates.push(mps(group.length * 256, performance.now() - t));
  }
  return median(rates);
}

/** one random stream of `chunks` × 64 k badges (credential < n, random reader) */
interface Stream { lo: Uint32Array[]; rd: Int32Array[] }
function makeStream(n: number, chunks: number, seed: number): Stream {
  const r = rng(seed);
  const s: Stream = { lo: [], rd: [] };
  for (let c = 0; c < chunks; c++) {
    const l = new Uint32Array(CHUNK), d = new Int32Array(CHUNK);
    for (let i = 0; i < CHUNK; i++) { l[i] = r() % n; d[i] = r() % READERS; }
    s.lo.push(l); s.rd.push(d);
  }
  return s;
}

/**
 * decisions/s through the batch ABI: medians over the stream's 64 k chunks of
 * the wall-clock rate and of the rate per CPU second of this process (on 2
 * shared cores the second is the steadier: time the process waited for a
 * core is not in it); the clock moves 1 ms per chunk
 */
function timeBatch(core: WasmCore, s: Stream, start: number): { rate: number; cpuRate: number; grantShare: number } {
  const hi = new Uint32Array(CHUNK), g = new Uint8Array(CHUNK);
  let now = start, granted = 0;
  const rates: number[] = [], cpu: number[] = [];
  for (let c = 0; c < s.lo.length; c++) {
    const c0 = process.cpuUsage();
    const t = performance.now();
    granted += core.badgeInts(s.lo[c]!, hi, s.rd[c]!, now++, g);
    const ms = performance.now() - t;
    const used = process.cpuUsage(c0);
    rates.push(mps(CHUNK, ms));
    cpu.push(mps(CHUNK, (used.user + used.system) / 1000));
  }
  return { rate: median(rates), cpuRate: median(cpu), grantShare: granted / (s.lo.length * CHUNK) };
}

/** timeBatch's measure of lookupInts: the same stream looked up, nothing decided */
function timeLookups(core: WasmCore, s: Stream): { rate: number; cpuRate: number } {
  const hi = new Uint32Array(CHUNK);
  const rates: number[] = [], cpu: number[] = [];
  for (let c = 0; c < s.lo.length; c++) {
    const c0 = process.cpuUsage();
    const t = performance.now();
    const hits = core.lookupInts(s.lo[c]!, hi);
    const ms = performance.now() - t;
    const used = process.cpuUsage(c0);
    if (hits !== CHUNK) throw new Error(`lookups found ${hits} of ${CHUNK} stored credentials`);
    rates.push(mps(CHUNK, ms));
    cpu.push(mps(CHUNK, (used.user + used.system) / 1000));
  }
  return { rate: median(rates), cpuRate: median(cpu) };
}

/**
 * The wasm memory mapping of this process (the one holding at least half of
 * `bytes` resident) collapsed into huge pages by bench/thp-collapse.py;
 * returns the MiB now in huge pages, or why not.
 */
function forceHugePages(bytes: number): { hugeMiB: number } | { why: string } {
  let text: string;
  try { text = readFileSync('/proc/self/smaps', 'utf8'); } catch { return { why: 'no /proc/self/smaps' }; }
  let range: string[] | undefined;
  for (const block of text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const rss = Number(/\nRss:\s+(\d+) kB/.exec(block)?.[1] ?? 0);
    if (rss * 1024 >= bytes * 0.5) { range = block.split(' ')[0]!.split('-'); break; }
  }
  if (!range) return { why: 'wasm memory mapping not found' };
  const r = spawnSync('python3', [join(ROOT, 'bench', 'thp-collapse.py'), String(process.pid), range[0]!, range[1]!], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return { why: `thp-collapse.py failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').pop()}` };
  const hp = hugePages(bytes);
  return hp && hp.anonHugeKiB > 0 ? { hugeMiB: hp.anonHugeKiB / 1024 } : { why: `MADV_COLLAPSE left no huge pages (${r.stdout.trim()})` };
}

/** AnonHugePages (kB) and Rss (kB) of the mapping(s) of this process holding at least `bytes` resident */
function hugePages(bytes: number): { anonHugeKiB: number; rssKiB: number } | null {
  let text: string;
  try { text = readFileSync('/proc/self/smaps', 'utf8'); } catch { return null; }
  let best: { anonHugeKiB: number; rssKiB: number } | null = null;
  for (const block of text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const rss = Number(/\nRss:\s+(\d+) kB/.exec(block)?.[1] ?? 0);
    const huge = Number(/\nAnonHugePages:\s+(\d+) kB/.exec(block)?.[1] ?? 0);
    if (rss * 1024 >= bytes * 0.5 && (!best || rss > best.rssKiB)) best = { anonHugeKiB: huge, rssKiB: rss };
  }
  return best;
}

function thpSetting(): string {
  try { return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown'; } catch { return 'unavailable'; }
}

/**
 * The machine: sequential read bandwidth, dependent random-load latency (a
 * pointer chase through one random cycle) and independent random loads
 * (1 M gathered indexes, the misses overlap) over `bytes` of memory, from JS
 * typed arrays (the core's loads are the same instructions).
 */
function machine(bytes: number): { seqGBs: number; depNs: number; indepNs: number } {
  const n = Math.floor(bytes / 4);
  const a = new Uint32Array(n);
  // Sattolo: one cycle through every element
  const r = rng(99);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) { const j = (r() * 4294967296 + r()) % i; const t = a[i]!; a[i] = a[j]!; a[j] = t; }
  const seq: number[] = [];
  let sink = 0;
  for (let rep = 0; rep < 5; rep++) {
    const t = performance.now();
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i + 3 < n; i += 4) { s0 += a[i]!; s1 += a[i + 1]!; s2 += a[i + 2]!; s3 += a[i + 3]!; }
    seq.push(bytes / (performance.now() - t) / 1e6);
    sink += s0 + s1 + s2 + s3;
  }
  const dep: number[] = [];
  let p = 0;
  for (let rep = 0; rep < 5; rep++) {
    const k = 2_000_000;
    const t = performance.now();
    for (let i = 0; i < k; i++) p = a[p]!;
    dep.push((performance.now() - t) * 1e6 / k);
  }
  const idx = new Uint32Array(1 << 20);
  for (let i = 0; i < idx.length; i++) idx[i] = (r() * 4294967296 + r()) % n;
  const ind: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const t = performance.now();
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += a[idx[i]!]!;
    ind.push((performance.now() - t) * 1e6 / idx.length);
    sink += s;
  }
  if (sink === -1 || p === -1) throw new Error('unreachable');
  return { seqGBs: median(seq), depNs: median(dep), indepNs: median(ind) };
}

/** snapshot of `core` to a temp file, then the median time of `times` restores of it into `into()` */
function restartMs(core: WasmCore, into: () => WasmCore, times: number): { ms: number; bytes: number } {
  const file = join(tmpdir(), `apb-bench-core-${process.pid}.snap`);
  const snap = core.snapshot();
  const fd = openSync(file, 'w');
  try { for (let off = 0; off < snap.length;) off += writeSync(fd, snap, off, Math.min(64 << 20, snap.length - off)); } finally { closeSync(fd); }
  const bytes = snap.length;
  const ms: number[] = [];
  try {
    for (let i = 0; i < times; i++) {
      gc(); // the previous target's linear memory goes first: every restore starts from the same memory pressure
      const target = into();
      const rfd = openSync(file, 'r');
      const t = performance.now();
      try { target.restoreFromFile(rfd, 0, bytes); } finally { closeSync(rfd); }
      ms.push(performance.now() - t);
      if (target.size() !== core.size()) throw new Error(`restore gave ${target.size()} credentials, expected ${core.size()}`);
    }
  } finally { unlinkSync(file); }
  return { ms: median(ms), bytes };
}

interface Variant { name: string; site: CompiledSite; wasm?: Uint8Array }

const STALL_TITLE = 'Muster list at 10 M credentials against the event loop: the first page of 1,000 after a state change, read at once (credentialsIn: the route before issue 15) or in slices (credentialsInAsync: ~1 ms slices, a turn of the event loop between), with the loop otherwise idle or, for the sliced page, deciding a batch of 1,024 random badges at every turn (steady traffic: every slice sees a changed state)';
const STALL_HEADERS = ['core', 'area', 'inside', 'how', 'longest event-loop stall ms (median of 3)', 'page ms (median of 3)', 'loop turns during the page', 'badges decided during the page', 'stall ratio vs one-shot'];

/**
 * One page of 1,000 of `area`, each of 3 times after a state change; the stall is the longest gap
 * between turns of a setImmediate ticker running alongside (what any other callback, a decision,
 * waited), which for a one-shot page is the page itself. With `traffic`, every turn of the loop also
 * decides a batch of 1,024 random badges on the same core (its time is in the gaps too).
 */
async function musterStall(core: WasmCore, area: number, sliced: boolean, traffic: boolean, clock: { t: number }, n: number): Promise<{ stall: number; page: number; turns: number; badges: number }> {
  const stalls: number[] = [], pages: number[] = [], turns: number[] = [], badges: number[] = [];
  const r = rng(4242);
  const k = 1024, lo = new Uint32Array(k), hi = new Uint32Array(k), rd = new Int32Array(k), g = new Uint8Array(k);
  for (let rep = 0; rep < 3; rep++) {
    core.advance(++clock.t); // a state change: nothing cached from the previous page
    let running = true, last = performance.now(), worst = 0, ticks = 0, decided = 0;
    const tick = (): void => {
      if (!running) return;
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
      ticks++;
      if (traffic) {
        for (let i = 0; i < k; i++) { lo[i] = r() % n; rd[i] = r() % READERS; }
        core.badgeInts(lo, hi, rd, ++clock.t, g);
        decided += k;
      }
      setImmediate(tick);
    };
    await new Promise((res) => setImmediate(res));
    last = performance.now();
    setImmediate(tick);
    const t = performance.now();
    const page = sliced ? await core.credentialsInAsync(area, 0, 1000) : core.credentialsIn(area, 0, 1000);
    const ms = performance.now() - t;
    worst = Math.max(worst, performance.now() - last);
    running = false;
    await new Promise((res) => setImmediate(res));
    if (page.rows.length !== Math.min(1000, core.occupancy(area)) && !traffic) throw new Error(`area ${area}: ${page.rows.length} rows`);
    stalls.push(worst); pages.push(ms); turns.push(ticks); badges.push(decided);
  }
  return { stall: median(stalls), page: median(pages), turns: median(turns), badges: median(badges) };
}

/** the stall table's rows for the cores of the mix site at 10 M (layout 2 first when present: one-shot only, it has no slices) */
async function musterStallRows(cores: { name: string; core: WasmCore; old: boolean }[], site: CompiledSite, clock: { t: number }, n: number, log: (l: string) => void): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  // last: the annex topped up past 8 × the page (the walk's threshold): the longest walk, about recCount / 8 records
  for (const area of ['annex', 'building', 'annex, walked']) {
    const x = site.areaIds.indexOf(area.split(',')[0]!);
    if (area === 'annex, walked') addAnnex(cores.map((c) => c.core), site, n, ++clock.t, 8200 - cores[cores.length - 1]!.core.occupancy(x), 100);
    let base = NaN;
    for (const c of cores) {
      const ways: [string, boolean, boolean][] = c.old ? [['one-shot', false, false]]
        : [['one-shot (baseline)', false, false], ['sliced', true, false], ['sliced, traffic', true, true]];
      for (const [how, sliced, traffic] of ways) {
        log(`core: muster stall, ${c.name}, ${area}, ${how}`);
        const m = await musterStall(c.core, x, sliced, traffic, clock, n);
        if (!c.old && how === 'one-shot (baseline)') base = m.stall;
        rows.push([c.name, area, c.core.occupancy(x), how, fmt(m.stall, 1), fmt(m.page, 1), m.turns, m.badges, c.old || Number.isNaN(base) ? '-' : fmt(m.stall / base)]);
      }
    }
  }
  return rows;
}

/**
 * `node --expose-gc build/bench/run.js core-muster`: only the muster stall table (a 10 M core of the
 * rule-mix site, and layout 2's for its one-shot figure), without the rest of the core section.
 */
export async function benchMuster(opts: BenchOptions): Promise<BenchSection> {
  const mix = site(MIX_SITE);
  const n = opts.quick ? 1_000_000 : 10_000_000;
  const old = existsSync(LAYOUT2) ? new Uint8Array(readFileSync(LAYOUT2)) : undefined;
  const cores: { name: string; core: WasmCore; old: boolean }[] = [];
  for (const v of [...(old ? [{ name: 'layout 2', wasm: old }] : []), { name: '64-byte buckets', wasm: undefined }]) {
    opts.log(`core: ${v.name}, ${n} credentials: preloading`);
    const core = createWasmCore(mix, { capacity: n, ...(v.wasm ? { wasm: v.wasm } : {}) });
    preloadWasm(core, n);
    cores.push({ name: v.name, core, old: v.wasm !== undefined });
  }
  // random badges first, as the full section's runs do, so the building fills (well-filled: walked)
  const warm = makeStream(n, opts.quick ? 4 : 32, 3);
  for (const c of cores) { opts.log(`core: ${c.name}: ${warm.lo.length * CHUNK} random badges`); timeBatch(c.core, warm, T0 + 1); }
  const clock = { t: T0 + 60_000 };
  addAnnex(cores.map((c) => c.core), mix, n, clock.t);
  const table: BenchTable = { title: STALL_TITLE.replace('10 M', `${n / 1e6} M`), headers: STALL_HEADERS, rows: await musterStallRows(cores, mix, clock, n, opts.log) };
  return { name: 'core-muster', tables: [table], notes: [`${n / 1e6} M credentials, all stored through the batch path at the campus gate, then ${opts.quick ? 4 : 32} × 64 k random badges (which fill the building: well filled, walked), then 5,000 random ones set into the annex (sparse; last, topped up to about 8,200: past 8 × the page, so walked, the longest walk). A stall is the longest gap between two turns of a setImmediate ticker running during the page: for a one-shot page, the page itself; with traffic, a slice plus one batch of 1,024 decisions.`] };
}

/** `k` (default 5,000) random credentials into the annex (a sparse area), on every core alike */
function addAnnex(cores: EngineCore[], site: CompiledSite, n: number, at: number, k = 5000, seed = 99): void {
  const ops: CoreOp[] = [];
  const rr = rng(seed);
  for (let i = 0; i < k; i++) ops.push({ op: 'setLocation', cred: { kind: 'int', value: BigInt(rr() % n) }, area: site.areaIds.indexOf('annex') });
  for (const c of cores) c.apply(ops, at);
}

export async function bench(opts: BenchOptions): Promise<BenchSection> {
  const mix = site(MIX_SITE), plain = site(PLAIN_SITE);
  const sizes = opts.quick ? [100_000, 1_000_000] : [100_000, 1_000_000, 10_000_000, 50_000_000];
  const notes: string[] = [];
  const old = existsSync(LAYOUT2) ? new Uint8Array(readFileSync(LAYOUT2)) : undefined;
  if (!old) notes.push(`${LAYOUT2} is missing: no layout-2 baseline rows.`);
  const variants: Variant[] = [
    ...(old ? [{ name: 'layout 2 (baseline)', site: mix, wasm: old }] : []),
    { name: '64-byte buckets', site: mix },
    { name: '64-byte buckets, no timeouts', site: plain },
  ];
  const speed: BenchTable = {
    title: 'Core decisions per second, batch ABI (random credentials and readers, rule mix)',
    headers: ['core', 'credentials', 'decisions/s (M), wall', 'per CPU second (M)', 'CPU ns/decision', 'ratio vs layout 2 (wall / CPU)', 'runs, wall (M/s)'],
    rows: [],
  };
  const mem: BenchTable = {
    title: 'Resident bytes per credential',
    headers: ['core', 'credentials', 'WASM memory B/cred', 'RSS delta B/cred', 'ratio vs layout 2'],
    rows: [],
  };
  const apiT: BenchTable = {
    title: 'Core decisions per second through apply() (CoreOp objects in, CoreResult objects out)',
    headers: ['core', 'credentials', 'decisions/s (M)', 'ratio vs reference'],
    rows: [],
  };
  const base: BenchTable = {
    title: 'The machine: memory bandwidth and latency (JS typed arrays, buffer the size of the 10 M table)',
    headers: ['measure', 'value', 'decisions/s it allows (M)', 'ratio vs buckets at 10 M'],
    rows: [],
  };
  const muster: BenchTable = {
    title: 'Muster list at 10 M credentials: the first page of 1,000 after a state change (the clock moved 1 ms), per area: empty, sparse (5,000 random credentials), well filled',
    headers: ['core', 'area', 'inside', 'first page ms (median of 3)', 'ratio vs layout 2'],
    rows: [],
  };
  const stall: BenchTable = { title: STALL_TITLE, headers: STALL_HEADERS, rows: [] };
  const growth: BenchTable = {
    title: 'Growing from empty to 10 M credentials (no capacity given: a server started without a snapshot or expectedCredentials): 1,024 new credentials per batch',
    headers: ['core', 'credentials', 'total s', 'longest batch ms (a growth)', 'WASM memory B/cred after', 'ratio vs layout 2 (longest batch)'],
    rows: [],
  };
  const restart: BenchTable = {
    title: 'Restart: core restore from a snapshot file (page cache warm)',
    headers: ['snapshot', 'credentials', 'snapshot MB', 'restore ms (median of 3)', 'ratio vs layout 2'],
    rows: [],
  };
  let grantShare = 0;
  const rateAt = new Map<string, number>();
  const bytesAt = new Map<string, number>();
  let thpNote = '';
  let indepNs = 0;

  for (const n of sizes) {
    const chunks = n >= 50_000_000 ? 48 : 96;
    const cores: { v: Variant; core: WasmCore; wBytes: number; rssBytes: number }[] = [];
    for (const v of variants) {
      opts.log(`core: ${v.name}, ${n} credentials: preloading`);
      await settle();
      const rss0 = process.memoryUsage().rss;
      const core = createWasmCore(v.site, { capacity: n, ...(v.wasm ? { wasm: v.wasm } : {}) });
      preloadWasm(core, n);
      const rss1 = process.memoryUsage().rss;
      if (core.size() !== n) throw new Error(`${v.name} stored ${core.size()} credentials, expected ${n}`);
      cores.push({ v, core, wBytes: core.memoryBytes() / n, rssBytes: (rss1 - rss0) / n });
    }
    if (n === 10_000_000) {
      const hp = hugePages(cores[cores.length - 1]!.core.memoryBytes());
      thpNote = `Transparent huge pages: the kernel setting is "${thpSetting()}"; the core's linear memory at 10 M credentials was ${hp ? `${Math.round(hp.rssKiB / 1024)} MiB resident of which ${Math.round(hp.anonHugeKiB / 1024)} MiB in huge pages (AnonHugePages in /proc/self/smaps)` : 'not found in /proc/self/smaps'}: V8 does not madvise(MADV_HUGEPAGE) WebAssembly memory and Node offers no way to, so under "madvise" the core runs on 4 KB pages (a TLB miss on nearly every random line at 10 M+).`;
    }
    // warm-up, then REPEATS rounds over every core in turn
    const warm = makeStream(n, 4, 3);
    for (const c of cores) timeBatch(c.core, warm, T0 + 1);
    const runs = cores.map(() => [] as number[]);
    const cpuRuns = cores.map(() => [] as number[]);
    const lookRuns: number[] = [], lookCpu: number[] = [];
    const buckets = cores[cores.length - 2]!; // buckets, mix site
    for (let rep = 0; rep < REPEATS; rep++) {
      const s = makeStream(n, chunks, 11 + rep);
      cores.forEach((c, i) => {
        opts.log(`core: ${c.v.name}, ${n} credentials: run ${rep + 1}/${REPEATS}`);
        const b = timeBatch(c.core, s, T0 + 10_000 + rep * 1000);
        runs[i]!.push(b.rate);
        cpuRuns[i]!.push(b.cpuRate);
        grantShare = b.grantShare;
      });
      const l = timeLookups(buckets.core, s);
      lookRuns.push(l.rate); lookCpu.push(l.cpuRate);
    }
    const oldRate = old ? median(runs[0]!) : NaN;
    const oldCpu = old ? median(cpuRuns[0]!) : NaN;
    const oldBytes = old ? cores[0]!.wBytes : NaN;
    cores.forEach((c, i) => {
      const rate = median(runs[i]!), cpuRate = median(cpuRuns[i]!);
      rateAt.set(`${c.v.name}@${n}`, rate);
      rateAt.set(`${c.v.name}@${n}/cpu`, cpuRate);
      bytesAt.set(`${c.v.name}@${n}`, c.wBytes);
      speed.rows.push([c.v.name, n, fmt(rate), fmt(cpuRate), fmt(1000 / cpuRate, 0), Number.isNaN(oldRate) ? '-' : `${fmt(rate / oldRate)} / ${fmt(cpuRate / oldCpu)}`, runs[i]!.map((x) => fmt(x, 1)).join(' / ')]);
      mem.rows.push([`${c.v.name}${c.v.site === plain ? '' : ' (presenceTimeout site)'}`, n, fmt(c.wBytes, 1), fmt(c.rssBytes, 1), Number.isNaN(oldBytes) ? '-' : fmt(c.wBytes / oldBytes)]);
    });
    {
      const rate = median(lookRuns), cpuRate = median(lookCpu);
      rateAt.set(`lookups@${n}`, rate);
      rateAt.set(`lookups@${n}/cpu`, cpuRate);
      speed.rows.push(['64-byte buckets, lookups alone (hash, touch, find: no rule, no write)', n, fmt(rate), fmt(cpuRate), fmt(1000 / cpuRate, 0),
        Number.isNaN(oldRate) ? '-' : `${fmt(rate / oldRate)} / ${fmt(cpuRate / oldCpu)}`, lookRuns.map((x) => fmt(x, 1)).join(' / ')]);
    }

    if (n === 10_000_000 && !opts.quick) {
      // the bucket core (rule mix) again with its memory forced onto huge pages, against its own 4 KB-page runs
      const nb = buckets;
      const f = forceHugePages(nb.core.memoryBytes());
      if ('why' in f) thpNote += ` Forcing huge pages was not possible here: ${f.why}.`;
      else {
        const hr: number[] = [], hc: number[] = [];
        for (let rep = 0; rep < REPEATS; rep++) {
          const b = timeBatch(nb.core, makeStream(n, chunks, 11 + rep), T0 + 50_000 + rep * 1000);
          hr.push(b.rate); hc.push(b.cpuRate);
        }
        const own = median(runs[cores.length - 2]!), ownCpu = median(cpuRuns[cores.length - 2]!);
        speed.rows.push([`64-byte buckets, memory forced onto 2 MiB pages (${Math.round(f.hugeMiB)} MiB)`, n, fmt(median(hr)), fmt(median(hc)), fmt(1000 / median(hc), 0),
          old ? `${fmt(median(hr) / oldRate)} / ${fmt(median(hc) / oldCpu)}` : '-', hr.map((x) => fmt(x, 1)).join(' / ')]);
        thpNote += ` Forced onto huge pages from outside (bench/thp-collapse.py: process_madvise(MADV_COLLAPSE), ${Math.round(f.hugeMiB)} MiB collapsed), the same core decided ${fmt(median(hr))} M/s wall, ${fmt(median(hc))} M/s per CPU second: ${fmt(median(hr) / own)}x / ${fmt(median(hc) / ownCpu)}x its 4 KB-page runs just before.`;
      }
    }
    if (n === 10_000_000) {
      // layout 2 walks its records in creation order; the buckets walk them too when the area is well
      // filled, else read the table in memory order. 5,000 random credentials go to the annex first (a
      // sparse area); the lab stays empty (the stream has no passages).
      let clock = T0 + 60_000;
      addAnnex(cores.filter((k) => k.v.site === mix).map((k) => k.core), mix, n, clock);
      for (const area of ['lab', 'annex', 'building', 'campus']) {
        const x = mix.areaIds.indexOf(area);
        let base0 = NaN;
        for (const c of cores.filter((k) => k.v.site === mix)) {
          const ms: number[] = [];
          for (let i = 0; i < 3; i++) {
            c.core.advance(++clock); // a state change: nothing cached from the previous page
            const t = performance.now();
            const page = c.core.credentialsIn(x, 0, 1000);
            ms.push(performance.now() - t);
            if (page.rows.length !== Math.min(1000, c.core.occupancy(x))) throw new Error(`${area}: ${page.rows.length} rows`);
          }
          const m = median(ms);
          if (Number.isNaN(base0)) base0 = m;
          muster.rows.push([c.v.name, area, c.core.occupancy(x), fmt(m, 1), fmt(m / base0)]);
        }
      }
      const ck = { t: clock };
      stall.rows.push(...await musterStallRows(cores.filter((k) => k.v.site === mix).map((k) => ({ name: k.v.name, core: k.core, old: k.v.wasm !== undefined })), mix, ck, n, opts.log));
      clock = ck.t;
      const nb = buckets;
      let r0: { ms: number; bytes: number } | undefined;
      if (old) {
        r0 = restartMs(cores[0]!.core, () => createWasmCore(mix, { wasm: old }), 3);
        restart.rows.push(['layout 2 into layout 2 (baseline)', n, fmt(r0.bytes / 1e6, 0), fmt(r0.ms, 0), '1.00']);
      }
      const r1 = restartMs(nb.core, () => createWasmCore(mix), 3);
      restart.rows.push(['buckets into buckets', n, fmt(r1.bytes / 1e6, 0), fmt(r1.ms, 0), r0 ? fmt(r1.ms / r0.ms) : '-']);
      if (old) {
        const rm = restartMs(cores[0]!.core, () => createWasmCore(mix), 3);
        restart.rows.push(['layout 2 migrated into buckets', n, fmt(rm.bytes / 1e6, 0), fmt(rm.ms, 0), fmt(rm.ms / r0!.ms)]);
      }
      if (!opts.quick) {
        // the calendar at its steady state: an hour of clock (the building's presenceTimeout) with moves in every millisecond
        opts.log('core: one hour of clock at 2 badges per ms (the calendar in its steady state)');
        const before = nb.core.memoryBytes(), cal0 = nb.core.calendarBytes();
        const k = 2, hours = 3_600_000;
        const lo = new Uint32Array(k), hi = new Uint32Array(k), rd = new Int32Array(k), g = new Uint8Array(k);
        const r = rng(77);
        let t = clock + 1;
        for (let ms = 0; ms < hours; ms++, t++) {
          for (let i = 0; i < k; i++) { lo[i] = r() % n; rd[i] = r() % READERS; }
          nb.core.badgeInts(lo, hi, rd, t, g);
        }
        clock = t;
        const after = nb.core.memoryBytes(), cal1 = nb.core.calendarBytes();
        mem.rows.push([`64-byte buckets (presenceTimeout site) after 1 h of clock at 2 badges per ms (${fmt(k * hours / 1e6, 1)} M decisions: the expiry calendar in its steady state at that rate)`, n,
          fmt(after / n, 1), '-', old ? fmt(after / n / cores[0]!.wBytes) : '-']);
        notes.push(`Expiry calendar: one hour of clock (the building's presenceTimeout) with 2 random badges per millisecond grew the core's linear memory from ${fmt(before / 1e6, 0)} MB to ${fmt(after / 1e6, 0)} MB (it grows by an eighth at a time); the calendar itself went from ${fmt(cal0 / 1e6, 1)} MB to ${fmt(cal1 / 1e6, 1)} MB (${fmt(cal1 / n, 1)} B per credential at 10 M). The calendar holds an entry per millisecond, location and expiry class with a move in the last presenceTimeout (16 B in its map at a load of at most 3/4, and 16 B in its heap), so it is bounded by time and traffic, not by credentials: at most about 3.6 M entries per location and hour of timeout. The other memory rows are taken with the clock a few seconds past the preload, the calendar nearly empty.`);
      }
    }

    // the apply() API against the reference model (issue 2), at the sizes the reference fits in the heap
    if (n <= 1_000_000) {
      opts.log(`core: reference model, ${n} credentials`);
      const batches = makeOps(n, opts.quick ? 200_000 : 1_000_000, 7);
      const ref = createReferenceCore(mix);
      preloadApply(ref, n);
      timeApply(ref, batches.slice(0, 50), T0 + 1);
      const refRate = timeApply(ref, batches, T0 + 100);
      apiT.rows.push(['reference apply() (baseline)', n, fmt(refRate), '1.00']);
      const nb = buckets;
      const wApply = timeApply(nb.core, batches, T0 + 100_000);
      apiT.rows.push(['WASM apply(), 64-byte buckets', n, fmt(wApply), fmt(wApply / refRate)]);
    }
    cores.length = 0;
    gc();
  }

  if (!opts.quick) {
    // the table grown from empty: layout 2 doubles its index into fresh memory, the buckets grow x1.25 segment by segment
    let base1 = NaN;
    for (const v of variants.filter((x) => x.site === mix)) {
      opts.log(`core: ${v.name}, growing from empty to 10 M`);
      await settle();
      const core = createWasmCore(mix, v.wasm ? { wasm: v.wasm } : {});
      const n = 10_000_000, k = 1024;
      const lo = new Uint32Array(k), hi = new Uint32Array(k), rd = new Int32Array(k), g = new Uint8Array(k);
      let worst = 0;
      const t0 = performance.now();
      for (let b = 0; b < n; b += k) {
        for (let i = 0; i < k; i++) lo[i] = b + i;
        const t = performance.now();
        core.badgeInts(lo, hi, rd, T0, g);
        worst = Math.max(worst, performance.now() - t);
      }
      const total = (performance.now() - t0) / 1000;
      if (Number.isNaN(base1)) base1 = worst;
      growth.rows.push([v.name, n, fmt(total, 1), fmt(worst, 0), fmt(core.memoryBytes() / n, 1), fmt(worst / base1)]);
    }
    opts.log('core: machine baseline');
    await settle();
    const bytes = Math.round(bytesAt.get('64-byte buckets@10000000')! * 10_000_000);
    const m = machine(bytes);
    indepNs = m.indepNs;
    const at10 = rateAt.get('64-byte buckets@10000000/cpu')!;
    base.rows.push(['sequential read (GB/s)', fmt(m.seqGBs), fmt(m.seqGBs * 1e9 / 64 / 1e6, 0) + ' (one 64-byte line each)', fmt(m.seqGBs * 1e9 / 64 / 1e6 / at10)]);
    base.rows.push(['dependent random load (ns)', fmt(m.depNs, 0), fmt(1000 / m.depNs), fmt(1000 / m.depNs / at10)]);
    base.rows.push(['independent random loads (ns each, overlapped)', fmt(m.indepNs, 1), fmt(1000 / m.indepNs), fmt(1000 / m.indepNs / at10)]);
    base.rows.push(['64-byte buckets, batch ABI at 10 M (this build, per CPU second)', fmt(1000 / at10, 0) + ' ns', fmt(at10), '1.00']);
  }

  const top = sizes[sizes.length - 1]!;
  const at10 = rateAt.get('64-byte buckets@10000000');
  if (at10 !== undefined) {
    const cpu10 = rateAt.get('64-byte buckets@10000000/cpu')!;
    const look10 = rateAt.get('lookups@10000000/cpu')!;
    notes.push(`Target >= 30 M decisions/s at 10 M credentials (batch ABI, rule mix): ${fmt(at10)} M/s wall, ${fmt(cpu10)} M/s per CPU second (${Math.max(at10, cpu10) >= 30 ? 'met' : 'NOT met'})${old ? `, ${fmt(at10 / rateAt.get('layout 2 (baseline)@10000000')!)}x / ${fmt(cpu10 / rateAt.get('layout 2 (baseline)@10000000/cpu')!)}x layout 2` : ''}; ${fmt(grantShare * 100, 0)} % of the random badges were granted. The lookups alone (the same stream hashed, touched and found, nothing decided) ran ${fmt(look10)} M/s per CPU second, so finding the credentials costs ${fmt(1000 / look10, 0)} ns of the ${fmt(1000 / cpu10, 0)} ns per decision and the rules and writes the rest${indepNs ? `; the machine's independent random loads (one line each, overlapped as far as the CPU can) allow ${fmt(1000 / indepNs, 1)} M/s with nothing else done` : ''}.`);
    notes.push(`Target <= 24 resident bytes per credential at 10 M: ${fmt(bytesAt.get('64-byte buckets@10000000')!, 1)} B with the presenceTimeout site, ${fmt(bytesAt.get('64-byte buckets, no timeouts@10000000')!, 1)} B without (${bytesAt.get('64-byte buckets@10000000')! <= 24 ? 'met' : 'NOT met'}: a credential is 28 B (key, move word, reader word, record number), two per 64-byte line with 8 B unused, at a load of 4/5 when sized by capacity; the timeout list's 8 B and the record-order array's 4 B per credential are gone).`);
  }
  if (thpNote) notes.push(thpNote);
  notes.push(`Rates are medians of ${REPEATS} runs (each the median over 64 k-decision chunks, wall clock and per CPU second of the process), the cores of one size measured in turn so other load on the 2 shared cores hits every row alike; largest size ${top / 1e6} M. Restart = WasmCore.restoreFromFile of a snapshot file (the engine's restart path minus journal replay).`);
  notes.push('WASM memory B/cred = linear memory size / credentials (the whole core, growth slack included); RSS delta = resident set growth while the core is created and loaded. Run with node --expose-gc for steadier memory figures.');
  const heapLimit = getHeapStatistics().heap_size_limit;
  notes.push(`The reference model runs at 100 k and 1 M only (its 10 M needs a V8 heap of 8 GiB or more; this process has ${fmt(heapLimit / 2 ** 30, 1)} GiB).`);
  return { name: 'core', tables: [speed, mem, growth, base, restart, muster, stall, apiT], notes };
}

