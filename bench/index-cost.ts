/**
 * What D/index costs per event as the store grows (part of bench:store):
 * the runs by credential and by reader (src/store/name-runs.ts) and the
 * sparse time index against the previous format (baseline: B-trees keyed
 * [cred, batch] and [reader, batch], a time entry per batch, rebuilt here
 * with the same puts the previous derived-index.ts made), fed the same
 * chunks: batches of 64 events (fast-path frames) or of 1 (one message per
 * frame) with random credentials, 2,700 events per index transaction
 * (what the indexer gathers in 100 ms at 27 k events/s). The
 * runs side merges for up to 25 ms after each transaction, as the indexer
 * does. Reported: CPU µs per event (process CPU, the indexing thread is
 * this one) over the last half million events before each size, bytes
 * written per event (what reached the disk: disk-writes.ts), and a query's time (one credential's
 * batch keys, newest first).
 * `node build/bench/index-cost.js [--quick]` runs it alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { ChunkEntries, DerivedIndex } from '../src/store/derived-index.js';
import { deviceWrittenBytes } from './disk-writes.js';
import type { BenchOptions, BenchTable } from './types.js';

/** a batch by its names, as both sides get it */
interface BatchEntries { key: number; creds: string[]; readers: string[]; a0: number | null; ids: [string, number][] }

const CHUNK = 2700, WINDOW = 500_000, QUERIES = 1000, MAINTAIN_MS = 25;

interface Side {
  add(batches: BatchEntries[], end: number): void;
  keys(cred: string, top: number): number;
  close(): Promise<void>;
}

/** the previous format (format 1), rebuilt here: B-trees keyed [cred, batch], [reader, batch], [at, batch] per batch, [controller, id] */
function btreeSide(dir: string): Side {
  const env = open({ path: join(dir, 'btree'), noSubdir: false, maxDbs: 8, noSync: true } as never);
  const ob = { keyEncoding: 'ordered-binary' as const };
  const cred = env.openDB('cred', { ...ob, encoding: 'binary' }), reader = env.openDB('reader', { ...ob, encoding: 'binary' });
  const time = env.openDB('time', { ...ob, encoding: 'binary' }), idem = env.openDB('idem', { ...ob, encoding: 'msgpack' });
  const meta = env.openDB('meta', { ...ob, encoding: 'msgpack' });
  const ONE = Buffer.from([1]);
  const byPair = (a: [string, number], b: [string, number]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]);
  return {
    add(batches, end) {
      const creds: [string, number][] = [], readers: [string, number][] = [], ids: [string, string, number][] = [];
      for (const b of batches) {
        for (const c of b.creds) creds.push([c, b.key]);
        for (const r of b.readers) readers.push([r, b.key]);
        for (const [c, id] of b.ids) ids.push([c, String(id).padStart(20, '0'), b.key]);
      }
      creds.sort(byPair); readers.sort(byPair);
      ids.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
      env.transactionSync(() => {
        for (const p of creds) cred.put(p, ONE);
        for (const p of readers) reader.put(p, ONE);
        for (const b of batches) if (b.a0 !== null) time.put([b.a0, b.key], ONE);
        for (const [c, p, k] of ids) idem.put([c, p], k);
        meta.put('indexed', end);
      });
    },
    keys(c, top) { let n = 0; for (const _ of cred.getRange({ start: [c, top], end: [c, 0], reverse: true })) n++; return n; },
    close: () => env.close(),
  };
}

function runsSide(dir: string): Side {
  const ix = DerivedIndex.attach(join(dir, 'rest'), true);
  return {
    add(batches, end) {
      const chunk = new ChunkEntries();
      for (const b of batches) chunk.addNames(b.key, b.a0, b.creds, b.readers, b.ids);
      void ix.add(chunk, end);
      const until = Date.now() + MAINTAIN_MS;
      while (Date.now() < until && ix.maintain()) { /* merge steps, as the indexer between transactions */ }
    },
    keys(c, top) { let n = 0; for (const _ of ix.keysOf('cred', c, top)) n++; return n; },
    close: () => ix.close(),
  };
}

interface Point { events: number; usPerEvent: number; bytesPerEvent: number; queryUs: number }

async function measure(kind: 'btree' | 'runs', sizes: number[], nCreds: number, perBatch: number, log: (s: string) => void): Promise<Point[]> {
  const dir = mkdtempSync(join(tmpdir(), `apb-ixcost-${kind}-`));
  const opened = kind === 'runs' ? DerivedIndex.open(join(dir, 'rest'), 'bench')!.ix : undefined; // validated and marked, as the store does
  const side = kind === 'btree' ? btreeSide(dir) : runsSide(dir);
  let x = 0x2545f491;
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const out: Point[] = [];
  let seq = 0, at = 1.7e12, cpu0 = process.cpuUsage(), w0 = deviceWrittenBytes(dir), since = 0;
  try {
    for (const size of sizes) {
      while (seq < size) {
        const batches: BatchEntries[] = [];
        for (let e = 0; e < CHUNK; e += perBatch) {
          const creds = new Set<string>(), ids: [string, number][] = [];
          for (let i = 0; i < perBatch; i++) { creds.add(String(1_000_000 + (rand() % nCreds))); ids.push([`ctl-${e % 16}`, seq + 1 + i]); }
          batches.push({ key: seq + 1, creds: [...creds], readers: perBatch === 1 ? [`r-${e % 32}`] : ['r-in', 'r-out'], a0: at++, ids });
          seq += perBatch;
        }
        if (size - seq < WINDOW && since === 0) { since = seq; cpu0 = process.cpuUsage(); w0 = deviceWrittenBytes(dir); }
        side.add(batches, seq);
      }
      const c = process.cpuUsage(cpu0), events = seq - since;
      const q0 = performance.now();
      for (let q = 0; q < QUERIES; q++) side.keys(String(1_000_000 + (rand() % nCreds)), seq);
      const p: Point = { events: seq, usPerEvent: (c.user + c.system) / events, bytesPerEvent: (deviceWrittenBytes(dir) - w0) / events, queryUs: (performance.now() - q0) * 1000 / QUERIES };
      log(`  store: D/index ${kind}, ${perBatch}/batch, at ${seq.toLocaleString('en-US')} events: ${p.usPerEvent.toFixed(2)} us/event, ${Math.round(p.bytesPerEvent)} B/event, query ${Math.round(p.queryUs)} us`);
      out.push(p);
      since = 0;
    }
  } finally {
    await side.close();
    await opened?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export async function indexCostTable(opts: BenchOptions): Promise<{ tables: BenchTable[]; notes: string[] }> {
  const nCreds = 10_000_000;
  const table: BenchTable = {
    title: 'D/index cost per event as the store grows: runs by credential, reader and message id, sparse time index, vs the previous format (baseline: B-trees keyed [name, batch] and [controller, id], one time entry per batch)',
    headers: ['events per batch', 'events indexed', 'previous CPU µs/event', 'runs CPU µs/event', 'ratio runs/previous', 'previous bytes written/event', 'runs bytes written/event', 'previous query µs', 'runs query µs'],
    rows: [],
  };
  const notes: string[] = [];
  // 64 per batch: fast-path frames of 64; 1 per batch: one message per frame (every batch one event)
  for (const perBatch of [64, 1]) {
    const sizes = opts.quick ? [500_000, 1_000_000] : perBatch === 64 ? [1_000_000, 4_000_000, 10_000_000] : [1_000_000, 4_000_000];
    const old = await measure('btree', sizes, nCreds, perBatch, opts.log);
    const now = await measure('runs', sizes, nCreds, perBatch, opts.log);
    sizes.forEach((_, i) => table.rows.push([perBatch, old[i]!.events.toLocaleString('en-US'), old[i]!.usPerEvent.toFixed(2), now[i]!.usPerEvent.toFixed(2), (now[i]!.usPerEvent / old[i]!.usPerEvent).toFixed(2),
      Math.round(old[i]!.bytesPerEvent), Math.round(now[i]!.bytesPerEvent), Math.round(old[i]!.queryUs), Math.round(now[i]!.queryUs)]));
    const last = sizes.length - 1;
    notes.push(`D/index at ${perBatch} event(s) per batch: ${now[last]!.usPerEvent.toFixed(2)} µs of CPU per event at ${old[last]!.events.toLocaleString('en-US')} indexed events against ${old[last]!.usPerEvent.toFixed(2)} µs for the previous format (${(now[last]!.usPerEvent / old[last]!.usPerEvent).toFixed(2)}x); a query (one credential's batch keys) ${Math.round(now[last]!.queryUs)} µs against ${Math.round(old[last]!.queryUs)} µs (one block read per run instead of one B-tree range).`);
  }
  notes.push(`D/index method: the same chunks of ${CHUNK} events on both sides (what the indexer gathers in 100 ms at 27 k events/s), random credentials over ${nCreds / 1e6} M, 16 controllers' ids; CPU per event over the last ${WINDOW.toLocaleString('en-US')} events before each size, bytes as received by the disk (device counter after a sync of the file system: /proc/self/io write_bytes counts whole 2 MiB page-cache folios on this kernel); the runs side merges up to ${MAINTAIN_MS} ms after each chunk, as the indexer does.`);
  return { tables: [table], notes };
}

if (process.argv[1]?.endsWith('bench/index-cost.js')) {
  indexCostTable({ quick: process.argv.includes('--quick'), log: (l) => process.stderr.write(l + '\n') }).then((s) => {
    for (const t of s.tables) { console.log(`\n${t.title}\n${t.headers.join(' | ')}`); for (const r of t.rows) console.log(r.join(' | ')); }
    for (const n of s.notes) console.log('- ' + n);
  }, (e) => { console.error(e); process.exitCode = 1; });
}
