/**
 * What a user could build instead of apb: Redis 7 with a Lua anti-passback
 * script, durable through its append-only file. Driven by redis-benchmark
 * (Debian's redis-tools) against a redis-server child on 127.0.0.1, with as
 * many connections as the WebSocket benchmark's swarm, random credentials
 * over 1 M, a random direction per badge (half the badges write).
 *
 * The script is the whole rule a hand-built system starts with (hard
 * anti-passback on one area, no timeouts, no occupancy, no event log):
 * grant when the credential is where the reader leads from (or unknown) and
 * move it; deny otherwise.
 *
 * Rows: appendfsync always (every write synced before the reply, like apb's
 * journal) and everysec (up to a second of grants lost on a crash), at
 * pipeline depth 1 (one badge per round trip) and 64 (like 64 messages per
 * WebSocket frame).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ANTI_PASSBACK_LUA = `
-- KEYS[1]: credential; ARGV[1]: a random number whose parity picks the reader (in or out)
local inward = tonumber(ARGV[1]) % 2 == 0
local from, to = 'outside', 'inside'
if not inward then from, to = 'inside', 'outside' end
local loc = redis.call('GET', KEYS[1])
if loc and loc ~= from then return 0 end
redis.call('SET', KEYS[1], to)
return 1
`;

export interface RedisRow { fsync: 'always' | 'everysec'; pipeline: number; requestsPerSec: number; p50Ms: number; p99Ms: number }

/** null with the reason when redis-server or redis-benchmark is missing */
export function redisMissing(): string | null {
  for (const bin of ['redis-server', 'redis-benchmark', 'redis-cli']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} not installed (Debian packages redis-server and redis-tools)`;
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

async function withRedis<T>(fsync: 'always' | 'everysec', fn: (port: number) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'apb-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', fsync, '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  try {
    const until = Date.now() + 10_000;
    while (spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().trim() !== 'PONG') {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`redis-server did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return await fn(port);
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone; clearTimeout(t);
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('exit', (code) => { clearTimeout(t); if (code === 0) resolve(out); else reject(new Error(`${cmd} exited ${code}: ${err}`)); });
  });
}

/**
 * One redis-benchmark run of EVALSHA: `requests` badges over `clients`
 * connections. The CSV line is
 * "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms".
 */
async function evalshaRun(port: number, sha: string, clients: number, pipeline: number, requests: number): Promise<{ rps: number; p50: number; p99: number }> {
  const out = await run('redis-benchmark', [
    '-h', '127.0.0.1', '-p', String(port), '-c', String(clients), '-n', String(requests), '-P', String(pipeline),
    '-r', '1000000', '--csv', 'EVALSHA', sha, '1', 'cred:__rand_int__', '__rand_int__',
  ], 120_000);
  const line = out.trim().split('\n').filter((l) => /^"EVALSHA/i.test(l)).pop();
  if (!line) throw new Error(`redis-benchmark printed no result: ${out.slice(-500)}`);
  const cols = line.split(',').map((c) => Number(c.replace(/"/g, '')));
  return { rps: cols[1]!, p50: cols[4]!, p99: cols[6]! };
}

/** Both fsync policies at pipeline depths 1 and 64; `requests` per row. */
export async function redisRows(o: { clients: number; requests: number; log: (s: string) => void }): Promise<RedisRow[]> {
  const rows: RedisRow[] = [];
  for (const fsync of ['always', 'everysec'] as const) {
    await withRedis(fsync, async (port) => {
      const sha = spawnSync('redis-cli', ['-p', String(port), 'SCRIPT', 'LOAD', ANTI_PASSBACK_LUA]).stdout.toString().trim();
      if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`SCRIPT LOAD failed: ${sha}`);
      for (const pipeline of [1, 64]) {
        o.log(`redis appendfsync ${fsync}: EVALSHA, ${o.clients} connections, pipeline ${pipeline}`);
        const r = await evalshaRun(port, sha, o.clients, pipeline, pipeline === 1 ? o.requests : o.requests * 8);
        rows.push({ fsync, pipeline, requestsPerSec: r.rps, p50Ms: r.p50, p99Ms: r.p99 });
      }
    });
  }
  return rows;
}
