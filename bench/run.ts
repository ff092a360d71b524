/**
 * `node build/bench/run.js <all|core|core-muster|http|ws|store|adapters|scenarios|bridge|cluster> [--quick]` (cluster and core-muster are not part of all)
 *
 * Prints an environment header, runs the bench modules (each exports
 * `bench(opts): Promise<BenchSection>`, bench/types.ts) with progress on
 * stderr, prints every table, and rewrites bench/RESULTS.md from
 * bench/results.json (see report.ts). A failing module prints its error in
 * its section; the run goes on and the exit code is 1 at the end.
 */
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchSection } from './types.js';
import { BenchFailure, SECTION_ORDER, envLine, renderText, sectionResult, writeSection, type EnvInfo } from './report.js';

export type BenchModule = { bench(opts: BenchOptions): Promise<BenchSection> };
export type ModuleLoader = () => Promise<BenchModule>;

const here = dirname(fileURLToPath(import.meta.url));
/** the package root (build/bench/run.js → ../..) */
export const ROOT = resolve(here, '..', '..');

export const MODULES: Record<string, ModuleLoader> = {
  core: () => import('./core.js' as string) as Promise<BenchModule>,
  /** only the core section's muster stall table (not part of all) */
  'core-muster': async () => ({ bench: ((await import('./core.js' as string)) as { benchMuster: BenchModule['bench'] }).benchMuster }),
  store: () => import('./store.js' as string) as Promise<BenchModule>,
  snapshot: () => import('./snapshot-stall.js' as string) as Promise<BenchModule>,
  adapters: () => import('./adapters.js' as string) as Promise<BenchModule>,
  http: () => import('./http.js') as Promise<BenchModule>,
  ws: () => import('./ws.js') as Promise<BenchModule>,
  scenarios: () => import('./scenarios.js') as Promise<BenchModule>,
  bridge: () => import('./bridge.js') as Promise<BenchModule>,
  cluster: () => import('./cluster.js') as Promise<BenchModule>,
};

/** Native uWS or the JS fallback: asks the server's own loader (src/server/uws.ts). */
export async function uwsStatus(): Promise<{ native: boolean | null; detail: string }> {
  try {
    const m = (await import('../src/server/uws.js' as string)) as { loadUws(o: { allowJsFallback?: boolean }): { native: boolean; file: string } };
    const l = m.loadUws({ allowJsFallback: true });
    return { native: l.native, detail: l.file };
  } catch (e) {
    return { native: null, detail: (e as Error).message };
  }
}

export async function environment(): Promise<EnvInfo> {
  const c = cpus();
  const u = await uwsStatus();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version, platform: `${process.platform}-${process.arch}`,
    cpu: (c[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim(), cores: c.length,
    memoryGiB: totalmem() / 2 ** 30, uwsNative: u.native, uwsDetail: u.detail,
  };
}

export interface RunOptions {
  quick: boolean;
  dir: string;                          // where RESULTS.md, results.json and SVGs go
  modules?: Record<string, ModuleLoader>;
  out?: (s: string) => void;            // tables (stdout)
  log?: (s: string) => void;            // progress (stderr)
}

/** Runs the named sections in order; returns the exit code (0 only if all passed). */
export async function runBench(names: string[], o: RunOptions): Promise<number> {
  const modules = o.modules ?? MODULES;
  const out = o.out ?? ((s) => process.stdout.write(s + '\n'));
  const log = o.log ?? ((s) => process.stderr.write(s + '\n'));
  const env = await environment();
  out(`apb bench ${names.join(' ')}${o.quick ? ' --quick' : ''} — ${env.date}\n${envLine(env)}\n`);
  let failed = 0;
  for (const name of names) {
    const load = modules[name];
    const t0 = performance.now();
    log(`[${name}] starting`);
    let section: BenchSection | null = null;
    let error: string | undefined;
    try {
      if (!load) throw new Error(`no bench module "${name}"`);
      const mod = await load();
      section = await mod.bench({ quick: o.quick, log: (l) => log(`[${name}] ${l}`) });
    } catch (e) {
      if (e instanceof BenchFailure) section = e.section;
      error = e instanceof Error ? e.message : String(e);
      if (!(e instanceof BenchFailure) && e instanceof Error && e.stack) log(`[${name}] ${e.stack}`);
      failed++;
    }
    const ms = performance.now() - t0;
    log(`[${name}] ${error ? 'FAILED' : 'done'} in ${(ms / 1000).toFixed(1)} s`);
    const r = sectionResult(name, { ...env, date: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }, o.quick, ms, section, error);
    out(renderText(r));
    writeSection(o.dir, r, section);
  }
  out(`RESULTS.md updated in ${o.dir}${failed ? `; ${failed} section(s) FAILED` : ''}`);
  return failed ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const rest = argv.filter((a) => a !== '--quick');
  const what = rest[0] ?? 'all';
  const bad = rest.slice(1).concat(what === 'all' || what in MODULES ? [] : [what]);
  if (bad.length) {
    process.stderr.write(`usage: node build/bench/run.js <all|${SECTION_ORDER.join('|')}> [--quick]\n`);
    return 2;
  }
  const names = what === 'all' ? [...SECTION_ORDER] : [what];
  return runBench(names, { quick, dir: process.env.APB_BENCH_DIR ?? join(ROOT, 'bench') });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => {
    // child processes and sockets are closed by each module; exit explicitly so a stray handle cannot hang the run
    process.exit(code);
  }, (e: unknown) => { process.stderr.write(String((e as Error)?.stack ?? e) + '\n'); process.exit(1); });
}
