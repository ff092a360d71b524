/**
 * Child processes of the benchmarks: the real server (`apb serve`) on a
 * bench site, and the bare uWS baseline (bare-uws.ts), each on 127.0.0.1
 * and a port of its own choosing, ready when GET /healthz answers 200.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../src/cli/node-flags.js';

const here = dirname(fileURLToPath(import.meta.url));
export const BUILD = resolve(here, '..');            // build/
export const MAIN_JS = join(BUILD, 'src', 'cli', 'main.js');

export interface Child { port: number; url: string; wsUrl: string; pid: number; stop(): Promise<void>; stderrTail(): string }

async function waitReady(url: string, child: ChildProcess, tail: () => string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`child exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail()}`);
    try { const r = await fetch(url + '/healthz'); if (r.status === 200) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`child not ready after ${ms} ms:\n${tail()}`);
}

/**
 * Starts a child that listens on port 0 and prints its URL or port on stdout
 * (`apb serving http://127.0.0.1:PORT`, `listening PORT`): no free-port race
 * between parallel tests.
 */
function spawnChild(args: string[], cleanup: () => void, env: NodeJS.ProcessEnv = {}, ms = 30_000): Promise<Child> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let tail = '', out = '';
  child.stderr!.on('data', (d: Buffer) => { tail = (tail + d.toString()).slice(-4000); });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      await gone; clearTimeout(t);
    }
    cleanup();
  };
  const port = new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child printed no port within ${ms} ms:\n${out}${tail}`)), ms);
    child.stdout!.on('data', (d: Buffer) => {
      if (out.length < 4000) out += d.toString();
      const m = /(?:apb serving http:\/\/[\d.]+:|^listening )(\d+)/m.exec(out);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    child.once('exit', (code, sig) => { clearTimeout(t); reject(new Error(`child exited (${code ?? sig}) before listening:\n${out}${tail}`)); });
  });
  return port.then(async (p) => {
    const url = `http://127.0.0.1:${p}`;
    await waitReady(url, child, () => tail, ms);
    return { port: p, url, wsUrl: `ws://127.0.0.1:${p}`, pid: child.pid!, stop, stderrTail: () => tail };
  }).catch(async (e: unknown) => { await stop(); throw e; });
}

/** `apb serve` on the given site text; data in a fresh temp dir (durable) or ':memory:'. */
export async function startServerChild(configText: string, data: 'durable' | ':memory:', dataDir?: string, extra: string[] = []): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'apb-bench-'));
  const cfg = join(dir, 'site.yaml');
  writeFileSync(cfg, configText);
  // the server runs with the flags users' `apb serve` and `npm start` give it (src/cli/node-flags.ts)
  const args = [...NODE_FLAGS, MAIN_JS, 'serve', '--config', cfg, '--data', data === 'durable' ? dataDir ?? join(dir, 'data') : ':memory:', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', ...extra];
  return spawnChild(args, () => rmSync(dir, { recursive: true, force: true }));
}

/** A temporary data directory a benchmark fills before it starts a server on it. */
export function benchDataDir(): { dir: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'apb-bench-data-'));
  return { dir: join(root, 'data'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The bare uWS baseline (echo + fixed-decision HTTP handler). */
export async function startBareChild(): Promise<Child> {
  return spawnChild([join(BUILD, 'bench', 'bare-uws.js'), '0'], () => {});
}

/** The bridge benchmark's baseline engine (bare-controller.ts): fixed replies from memory. */
export async function startBareControllerChild(): Promise<Child> {
  return spawnChild([join(BUILD, 'bench', 'bare-controller.js'), '0'], () => {});
}

/** the package root (build/bench → ../..) */
export const ROOT_DIR = resolve(BUILD, '..');
