/**
 * HTTP benchmark: autocannon (programmatic, in this process) against
 * POST /v1/decide of the real server (child process; durable LMDB data and
 * :memory:; MessagePack and JSON bodies) and against a bare uWS handler
 * answering a fixed MessagePack decision (bare-uws.ts), at several
 * connection and pipelining levels. Every request carries a fresh `id`
 * (ids are idempotency keys: the same id twice would be a resend) and a
 * random credential, alternating the entry and exit reader.
 */
import autocannon from 'autocannon';
import { Packr } from 'msgpackr';
import { benchSite, simToken, siteYaml } from '../src/sim/sites.js';
import { startBareChild, startServerChild, type Child } from './proc.js';
import { BenchFailure } from './report.js';
import type { BenchOptions, BenchSection, BenchTable } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

interface Level { c: number; p: number }
interface Row { target: string; body: 'msgpack' | 'json'; level: Level; rps: number; p50: number; p99: number; bad: number; unanswered: number }

let nextId = Date.now() * 1000;
let seed = 99;
const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };

async function cannon(url: string, body: 'msgpack' | 'json', level: Level, seconds: number): Promise<Omit<Row, 'target' | 'body' | 'level'>> {
  let flip = 0;
  const r = await autocannon({
    url: url + '/v1/decide', connections: level.c, pipelining: level.p, duration: seconds, timeout: 10,
    method: 'POST',
    headers: { authorization: `Bearer ${simToken('ctl-0')}`, 'content-type': body === 'json' ? 'application/json' : 'application/msgpack' },
    requests: [{
      setupRequest: (req) => {
        const msg = { t: 'badge', id: nextId++, cred: rnd() % 1_000_000, reader: (flip++ & 1) ? 'ctl-0-out' : 'ctl-0-in' };
        req.body = body === 'json' ? JSON.stringify(msg) : packr.pack(msg);
        return req;
      },
    }],
  });
  // requests still unanswered at the end: normally at most connections × pipelining in flight; more means a stall
  const unanswered = Math.max(0, (r.requests.sent ?? 0) - r.requests.total);
  return { rps: (r['2xx'] ?? 0) / r.duration, p50: r.latency.p50, p99: r.latency.p99, bad: r.non2xx + r.errors + r.timeouts, unanswered };
}

export async function bench(opts: BenchOptions): Promise<BenchSection> {
  const q = opts.quick;
  const seconds = q ? 1 : 3;
  const levels: Level[] = q ? [{ c: 10, p: 1 }, { c: 10, p: 10 }] : [{ c: 1, p: 1 }, { c: 10, p: 1 }, { c: 100, p: 1 }, { c: 10, p: 10 }, { c: 100, p: 10 }];
  const site = siteYaml(benchSite(1));
  // A durable reply leaves only after its commit, so it is always asynchronous, and this
  // uWS build aborts a connection when a pipelined request arrives while an asynchronous
  // response is pending (README "HTTP API"): durable rows run without pipelining.
  const targets: { name: string; start: () => Promise<Child>; bodies: ('msgpack' | 'json')[]; pipelining: boolean }[] = [
    { name: 'bare uWS handler', start: startBareChild, bodies: ['msgpack'], pipelining: true },
    { name: 'apb durable (LMDB)', start: () => startServerChild(site, 'durable'), bodies: ['msgpack', 'json'], pipelining: false },
  ];
  if (!q) targets.push({ name: 'apb :memory:', start: () => startServerChild(site, ':memory:'), bodies: ['msgpack'], pipelining: true });
  const rows: Row[] = [];
  for (const t of targets) {
    opts.log(`starting ${t.name}`);
    const child = await t.start();
    try {
      for (const body of t.bodies) for (const level of levels.filter((l) => t.pipelining || l.p === 1)) {
        opts.log(`${t.name} ${body}: ${level.c} connections, pipelining ${level.p}`);
        rows.push({ target: t.name, body, level, ...(await cannon(child.url, body, level, seconds)) });
      }
    } finally { await child.stop(); }
  }
  const bare = (l: Level) => rows.find((r) => r.target.startsWith('bare') && r.level.c === l.c && r.level.p === l.p)?.rps ?? NaN;
  const table: BenchTable = {
    title: `POST /v1/decide under autocannon (${seconds} s per row)`,
    headers: ['target', 'body', 'connections', 'pipelining', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'sent − answered', 'ratio to bare'],
    rows: rows.map((r) => [r.target, r.body, r.level.c, r.level.p, r.rps, r.p50, r.p99, r.bad, r.unanswered, r.rps / bare(r.level)]),
  };
  const durable = rows.filter((r) => r.target.startsWith('apb durable') && r.body === 'msgpack');
  const best = durable.sort((a, b) => b.rps - a.rps)[0];
  const notes: string[] = [];
  if (best) {
    const ratio = best.rps / bare(best.level);
    notes.push(`Best durable MessagePack row: ${Math.round(best.rps).toLocaleString('en-US')} req/s at ${best.level.c} connections × pipelining ${best.level.p} = ${ratio.toFixed(2)}× the bare uWS handler (target ≥ 0.8×): ${ratio >= 0.8 ? 'MET' : 'NOT MET'}.`);
    const worst = Math.min(...durable.map((r) => r.rps / bare(r.level)));
    notes.push(`Lowest durable MessagePack ratio over all levels: ${worst.toFixed(2)}×.`);
  }
  notes.push('Durable rows run without pipelining: this uWS build aborts a connection whose pipelined request arrives while an asynchronous (post-commit) response is pending; controllers use several connections or WebSocket batches instead.');
  notes.push('autocannon runs in the bench process and shares the 2 cores with the server child; the bare handler gets the same client.');
  const section: BenchSection = { name: 'http', tables: [table], notes };
  const bad = rows.filter((r) => r.bad > 0);
  const stalled = rows.filter((r) => r.rps * seconds < r.level.c * r.level.p && r.unanswered > 0);
  const why: string[] = [];
  if (bad.length) why.push(`non-2xx replies or errors: ${bad.map((r) => `${r.target} ${r.body} c${r.level.c} p${r.level.p}: ${r.bad}`).join('; ')}`);
  if (stalled.length) why.push(`stalled (fewer replies than requests in flight, the rest never answered): ${stalled.map((r) => `${r.target} ${r.body} c${r.level.c} p${r.level.p}: ${Math.round(r.rps * seconds)} answered, ${r.unanswered} not`).join('; ')}`);
  if (why.length) throw new BenchFailure(why.join('\n'), section);
  return section;
}
