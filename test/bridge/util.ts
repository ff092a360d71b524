/** Helpers for the bridge tests (not a test file). */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** package root: build/test/bridge → ../../.. */
export const ROOT = join(here, '..', '..', '..');

/** a vector file copied into test/bridge/vectors/ */
export function loadVectors(name: string): any {
  return JSON.parse(readFileSync(join(ROOT, 'test', 'bridge', 'vectors', `${name}.json`), 'utf8'));
}

export const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

// ── real processes: `apb serve` and `apb bridge` children on 127.0.0.1 ──

export const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

export interface Child { proc: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }

export function spawnApb(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, APB_LOG_LEVEL: 'warn', ...env } });
  let out = '', err = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, out: () => out, err: () => err, exited };
}

/** `apb serve` on a data directory; resolves once /healthz says ready */
export async function startEngine(config: string, data: string, port: number): Promise<Child> {
  const c = spawnApb(['serve', '--config', config, '--data', data, '--port', String(port), '--host', '127.0.0.1']);
  const end = Date.now() + 15_000;
  for (;;) {
    if (c.proc.exitCode !== null) throw new Error(`apb serve exited: ${c.err()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok && ((await r.json()) as { ready: boolean }).ready) return c;
    } catch { /* not listening yet */ }
    if (Date.now() > end) { c.proc.kill('SIGKILL'); throw new Error(`apb serve not ready: ${c.err()}`); }
    await new Promise((r) => setTimeout(r, 30));
  }
}

export async function kill(c: Child, sig: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill(sig);
  return c.exited;
}
