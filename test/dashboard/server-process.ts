/**
 * The apb server as a child process (`apb serve`), for the browser tests
 * that take the engine away and bring it back, and for the screenshot
 * script. Same port and data directory on restart: what an operator sees
 * when the engine is restarted by systemd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** the package root (build/test/dashboard/ → ../../..) */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');

export interface ServerChild { url: string; port: number; child: ChildProcess; output(): string }

/**
 * Starts `apb serve --config F --data D --port P` (P 0: any free port) and
 * resolves once it prints the URL it serves. Rejects with its output if it
 * exits first or takes longer than `timeoutMs`.
 */
export async function startServerChild(opts: { config: string; data: string; port?: number; timeoutMs?: number; logLevel?: string }): Promise<ServerChild> {
  const args = [MAIN, 'serve', '--config', opts.config, '--data', opts.data, '--port', String(opts.port ?? 0),
    '--host', '127.0.0.1', '--log-level', opts.logLevel ?? 'warn'];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { out += d; });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`apb serve did not start in time:\n${out}`)); }, opts.timeoutMs ?? 20_000);
    child.stdout!.on('data', (d: string) => {
      out += d;
      const m = /apb serving (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`apb serve exited (${code ?? sig}) before serving:\n${out}`)); });
  });
  return { url, port: Number(new URL(url).port), child, output: () => out };
}

/** SIGKILL (the engine vanishes: no close frames, no goodbye) and wait for the exit. */
export async function killServerChild(s: ServerChild | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = once(s.child, 'exit');
  s.child.kill(signal);
  await exited;
}

/**
 * Starts the server again on `port`, retrying while the port is refused with
 * address_in_use. apb listens without SO_REUSEADDR (exclusive port), so the
 * TIME_WAIT connections the killed server leaves behind hold the port for up
 * to a minute on Linux. Resolves with the server and how long it waited.
 */
export async function restartServerChild(opts: { config: string; data: string; port: number; deadlineMs?: number }): Promise<{ server: ServerChild; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    try {
      const server = await startServerChild(opts);
      return { server, waitedMs: Date.now() - t0 };
    } catch (e) {
      if (!String(e).includes('address_in_use') || Date.now() - t0 > (opts.deadlineMs ?? 90_000)) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
