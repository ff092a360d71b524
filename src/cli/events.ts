/**
 * `apb events --data D [--since T] [--until T]`: exports the event log as
 * replay input (SPEC 11), one JSON line per state-changing record, oldest
 * first, so yesterday's traffic can be replayed against a new configuration:
 *
 *   apb events --data ./data --since 2026-01-01 > day.jsonl
 *   apb replay --config new-site.yaml --events day.jsonl
 *
 * T is milliseconds since the Unix epoch or an ISO 8601 date/time. Records
 * that changed nothing replayable (rejected frames) and configuration swaps
 * (replay runs against the configuration you give it) are not exported.
 * The data directory is opened read-only: it is safe while the server runs.
 * The log is read with the store's cursor paging (store.page, oldest first,
 * PAGE records at a time), up to the last record when the export started:
 * what a running server appends meanwhile is left for the next export.
 */
import { parseArgs, required } from './args.js';
import { specOf } from './usage.js';
import { ApbError } from '../errors.js';
import { stringifyReplay } from '../engine/messages.js';
import { LmdbStore } from '../store/lmdb-store.js';
import type { EventPageQuery } from '../store/types.js';
import { parseInstant } from '../server/instant.js';

/** records per page read from the store */
const PAGE = 10_000;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf('events'));
  const dir = required(args, 'data');
  const since = typeof args.since === 'string' ? parseInstant(args.since, '--since', { cli: true }) : undefined;
  const until = typeof args.until === 'string' ? parseInstant(args.until, '--until', { cli: true }) : undefined;
  if (since !== undefined && until !== undefined && until < since) throw new ApbError('usage', '--until is before --since');
  const store = new LmdbStore(dir, { readOnly: true, retention: { intervalMs: 0 } });
  const progress = process.stderr.isTTY === true;
  let lines = 0, skipped = 0, chunk = '';
  const started = Date.now();
  try {
    const q: EventPageQuery = { order: 'asc', limit: PAGE };
    if (since !== undefined) q.since = since;
    if (until !== undefined) q.until = until;
    const last = store.lastSeq; // the export ends here, however long it takes
    for (let done = false; !done;) {
      const page = store.page(q);
      for (const e of page.events) {
        if (e.seq! > last) { done = true; break; }
        const op = e.op as { t?: unknown } | undefined;
        if (!op || typeof op !== 'object' || op.t === 'config') { skipped++; continue; }
        chunk += stringifyReplay(op) + '\n';
        lines++;
        if (chunk.length >= 1 << 16) {
          if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
          chunk = '';
          if (progress && lines % 100_000 < 500) process.stderr.write(`\r${lines} events exported…`);
        }
      }
      if (page.events.length < PAGE) done = true; // caught up with the journal
      q.cursor = page.next!;
    }
    if (chunk) await new Promise<void>((r) => process.stdout.write(chunk, () => r()));
  } finally {
    await store.close();
  }
  if (progress) process.stderr.write(`\r${lines} events exported (${skipped} not replayable) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}
