/**
 * Test harness of cluster mode: real nats-server processes (JetStream, loopback, random ports, temp
 * dirs; one alone or three clustered), real `apb serve --cluster` nodes as child processes, and a
 * reader of a site's stream. Everything started here is stopped by stopAll() (tests call it in after()).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Packr } from 'msgpackr';
import { ROOT } from '../store/util.js';
import { forEachId, replyIn, type Batch } from '../../src/store/journal-batch.js';
import { decodeEntries } from '../../src/cluster/journal-message.js';

export const hasNats = (): boolean => spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
export const SKIP_NO_NATS = hasNats() ? false : 'nats-server is not installed (Debian package nats-server): no JetStream to run a cluster on';

const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const procs = new Set<ChildProcess>();
/*
 * The nats-servers and apb nodes must not outlive the test file: when the runner ends a file (a timeout
 * sends SIGTERM) its after() hooks do not run, and a failed cluster run once left three nats-servers and
 * four nodes running for an hour, skewing every later measurement on the machine.
 */
const killAllNow = (): void => { for (const p of procs) { try { p.kill('SIGCONT'); p.kill('SIGKILL'); } catch { /* gone */ } } };
process.on('exit', killAllNow);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => { killAllNow(); process.exit(128 + osConstants.signals[sig]); });

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** polls `fn` every `every` ms until it returns a value other than undefined; throws after `ms` */
export async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined> | T | undefined, every = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v !== undefined) return v; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(every);
  }
}

export class NatsServer {
  proc: ChildProcess | undefined;
  constructor(readonly name: string, readonly port: number, readonly conf: string) {}
  get url(): string { return `nats://127.0.0.1:${this.port}`; }
  start(): void {
    const p = spawn('nats-server', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'ignore'] });
    procs.add(p);
    p.on('exit', () => procs.delete(p));
    this.proc = p;
  }
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((r) => { p.once('exit', () => r()); p.kill(signal); });
  }
}

/** `n` nats-servers (1, or 3 clustered), JetStream stores in `dir`; resolves once JetStream answers on each. */
export async function startNats(dir: string, n: 1 | 3): Promise<NatsServer[]> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes = await Promise.all(Array.from({ length: n }, () => freePort()));
  const servers: NatsServer[] = [];
  for (let k = 0; k < n; k++) {
    const sd = join(dir, `nats-${k}`);
    mkdirSync(sd, { recursive: true });
    const lines = [`server_name: s${k}`, `listen: 127.0.0.1:${ports[k]}`, `jetstream { store_dir: "${sd}" }`];
    if (n > 1) {
      lines.push(`cluster { name: apbtest, listen: 127.0.0.1:${routes[k]}, routes: [${routes.filter((_, j) => j !== k).map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`);
    }
    const conf = join(dir, `nats-${k}.conf`);
    writeFileSync(conf, lines.join('\n') + '\n');
    const s = new NatsServer(`s${k}`, ports[k]!, conf);
    s.start();
    servers.push(s);
  }
  // JetStream is usable once the meta group has a leader: account info answers
  for (const s of servers) {
    await until(`JetStream on ${s.url}`, 30_000, async () => {
      const nc = await connect({ servers: s.url, maxReconnectAttempts: 0 });
      try { await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo(); return true; } finally { await nc.close(); }
    }, 200);
  }
  return servers;
}

export interface Health { role: string; leader?: string; leaderUrl?: string; epoch: number; streamSeq: number; journalSeq: number; lag: number; node: string; startedFromSnapshot?: boolean; snapshotsUploaded?: number }

export class ApbNode {
  proc: ChildProcess | undefined;
  out = '';
  err = '';
  constructor(readonly name: string, readonly port: number, readonly data: string, readonly config: string,
    readonly nats: string, readonly extra: string[] = []) {}
  get base(): string { return `http://127.0.0.1:${this.port}`; }
  get alive(): boolean { return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null; }

  /** starts the node; resolves once it follows or leads (its port answers), or throws after `ms` */
  async start(ms = 30_000): Promise<void> {
    const p = spawn(process.execPath, [MAIN, 'serve', '--config', this.config, '--data', this.data, '--port', String(this.port),
      '--cluster', this.nats, '--node', this.name, '--log-level', 'warn', ...this.extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(p);
    p.on('exit', () => procs.delete(p));
    this.proc = p;
    this.out = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => { this.out += d; });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => { this.err += d; });
    await until(`node ${this.name} to start`, ms, () => {
      if (!this.alive) throw new Error(`node ${this.name} exited: ${this.err}`);
      return this.out.includes('apb cluster node') ? true : undefined;
    });
  }

  signal(sig: NodeJS.Signals): void { this.proc?.kill(sig); }

  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || !this.alive) return;
    // bounded: a node that does not finish its shutdown in 15 s is killed (and the test sees it gone)
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await new Promise<void>((r) => { p.once('exit', () => r()); p.kill(sig); });
    clearTimeout(t);
  }

  /** several sites (--port 0): each site's port, from the lines the node prints */
  sitePort(key: string): number | undefined {
    const m = new RegExp(`on http://127\\.0\\.0\\.1:(\\d+) \\(site ${key}\\)`).exec(this.out);
    return m ? Number(m[1]) : undefined;
  }

  async health(port = this.port): Promise<Health | undefined> {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
      return ((await r.json()) as { cluster?: Health }).cluster;
    } catch { return undefined; }
  }
}

/** the node that reports itself leader (undefined: none right now) */
export async function leaderOf(nodes: ApbNode[]): Promise<ApbNode | undefined> {
  for (const n of nodes) if (n.alive && (await n.health())?.role === 'leader') return n;
  return undefined;
}

/** one journal batch of the stream (a message holds one or more), or a fence */
export interface StreamBatch { streamSeq: number; epoch: number; node: string; fence: boolean; s: number; e: number; batch?: Batch; payload?: Uint8Array }

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'auto' } as never);

/** every message of the site's stream, decoded */
export async function readStream(url: string, stream: string): Promise<StreamBatch[]> {
  const nc: NatsConnection = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info(stream)).state.last_seq;
    const out: StreamBatch[] = [];
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (!m) continue;
      const range = m.header?.get('Apb-Seq');
      const node = m.header?.get('Apb-Node') ?? '';
      if (!range) { out.push({ streamSeq: seq, fence: true, s: 0, e: 0, node, epoch: Number(m.header?.get('Apb-Fence') ?? 0) }); continue; }
      const epoch = Number(m.header?.get('Apb-Epoch') ?? 0);
      for (const x of decodeEntries(m.data)) {
        out.push({ streamSeq: seq, fence: false, s: x.s, e: x.e, node, epoch, batch: packr.unpack(x.payload) as Batch, payload: x.payload });
      }
    }
    return out;
  } finally { await nc.close(); }
}

/** (controller/id) → number of batches holding it, and the stored reply bytes */
export function idsOf(batches: StreamBatch[]): Map<string, { n: number; reply: Uint8Array | undefined }> {
  const ids = new Map<string, { n: number; reply: Uint8Array | undefined }>();
  for (const b of batches) {
    if (!b.batch) continue;
    const seen = new Set<string>();
    forEachId(b.batch, (c, id) => {
      const k = `${c}/${id}`;
      if (seen.has(k)) return;
      seen.add(k);
      const cur = ids.get(k) ?? { n: 0, reply: undefined };
      cur.n++;
      cur.reply = replyIn(b.batch, c, id);
      ids.set(k, cur);
    });
  }
  return ids;
}

export async function stopAll(): Promise<void> {
  killAllNow();
  await delay(50);
}
