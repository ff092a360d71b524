/**
 * `apb serve` as a child process for the fuzz test: started on a free
 * loopback port, watched for an exit nobody asked for, its stderr kept
 * (the pino lines at level error/fatal and any line that is not JSON are
 * reported as findings), stopped by SIGTERM or SIGKILL. Every process
 * started is remembered so an `after` hook can kill what is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT } from '../../store/util.js';

const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const live = new Set<ChildProcess>();

/** SIGKILLs every server still running (for `after` hooks; only processes this module started). */
export function killAll(): void {
  for (const c of live) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  live.clear();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

export class ServerProc {
  /** stderr lines that are pino errors (level >= 50) or not JSON at all */
  readonly badLines: string[] = [];
  private tail: string[] = [];
  private stopping = false;
  private exit: Exit | null = null;
  readonly exited: Promise<Exit>;

  private constructor(readonly child: ChildProcess, readonly port: number) {
    live.add(child);
    this.exited = new Promise((res) => child.once('exit', (code, signal) => { live.delete(child); this.exit = { code, signal }; res(this.exit); }));
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) { this.line(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    });
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }
  get ws(): string { return `ws://127.0.0.1:${this.port}`; }

  private line(l: string): void {
    if (!l.trim()) return;
    this.tail.push(l.length > 600 ? l.slice(0, 600) + '…' : l);
    if (this.tail.length > 30) this.tail.shift();
    let level = 0;
    try { level = (JSON.parse(l) as { level?: number }).level ?? 0; } catch { this.badLines.push(`(not JSON) ${l.slice(0, 300)}`); return; }
    if (level >= 50) this.badLines.push(l.length > 4000 ? l.slice(0, 4000) + '…' : l);
  }

  stderrTail(): string { return this.tail.join('\n'); }

  /** Non-null when the process exited without being asked to. */
  unexpectedExit(): string | null {
    if (!this.exit || this.stopping) return null;
    return `server exited by itself (code ${this.exit.code}, signal ${this.exit.signal}); stderr tail:\n${this.stderrTail()}`;
  }

  static async start(config: string, data: string): Promise<ServerProc> {
    let lastErr = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const child = spawn(process.execPath, [MAIN, 'serve', '--config', config, '--data', data, '--port', String(port), '--host', '127.0.0.1'], {
        stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, APB_LOG_LEVEL: 'warn' },
      });
      const p = new ServerProc(child, port);
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (p.exit) {
          lastErr = `server exited at startup (code ${p.exit.code}, signal ${p.exit.signal}):\n${p.stderrTail()}`;
          break;
        }
        try {
          const r = await fetch(`${p.url}/healthz`);
          if (r.ok && ((await r.json()) as { ready: boolean }).ready) return p;
        } catch { /* not listening yet */ }
        if (Date.now() > deadline) { await p.stop('SIGKILL'); throw new Error(`server did not become ready in 20 s:\n${p.stderrTail()}`); }
        await new Promise((r) => setTimeout(r, 50));
      }
      // a port taken between freePort and the bind is retried; anything else is the finding
      if (!/address.in.use|EADDRINUSE/i.test(lastErr)) break;
    }
    throw new Error(lastErr);
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<Exit> {
    this.stopping = true;
    if (!this.exit) this.child.kill(signal);
    if (signal === 'SIGTERM') {
      const t = setTimeout(() => { if (!this.exit) this.child.kill('SIGKILL'); }, 30_000);
      const e = await this.exited;
      clearTimeout(t);
      return e;
    }
    return this.exited;
  }
}
