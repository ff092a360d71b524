/**
 * `apb replay --config F --events E|- [--core wasm|reference] [--explain]` (SPEC 11, 13.3):
 * decides a recorded stream offline and prints one JSON line per input line
 * on stdout. Progress goes to stderr, and only when stderr is a terminal.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { ApbError } from '../errors.js';
import { loadSiteFile } from '../config/load.js';
import { replayStream } from '../engine/replay.js';
import type { ReplayStats } from '../engine/replay.js';
import { parseArgs, required } from './args.js';
import { specOf } from './usage.js';

const PROGRESS_EVERY_MS = 500;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf('replay'));
  const configPath = required(args, 'config');
  const events = required(args, 'events');
  const core = (args.core as string | undefined) ?? 'wasm';
  if (core !== 'wasm' && core !== 'reference') throw new ApbError('usage', `--core must be "wasm" or "reference", got "${core}"`);

  let site;
  try {
    site = loadSiteFile(configPath).site;
  } catch (e) {
    if (e instanceof ApbError && e.code === 'invalid_config') {
      const errors = (e.detail as { errors?: { path: string; message: string }[] } | undefined)?.errors ?? [];
      const lines = errors.length ? errors.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)) : [e.message];
      process.stderr.write(`apb replay: invalid_config: ${configPath}\n` + lines.map((l) => '  ' + l + '\n').join(''));
      return 1;
    }
    throw e;
  }

  const input: Readable = events === '-' ? process.stdin : createReadStream(events);
  const opened = new Promise<void>((resolve, reject) => {
    if (events === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', (err) => reject(new ApbError('not_found', `cannot read --events ${events}: ${(err as Error).message}`)));
  });
  await opened;

  // A reader that goes away (`| head`) ends the replay quietly.
  let closed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') { closed = true; input.destroy(); } else throw err;
  });

  const started = Date.now();
  let lastProgress = 0;
  const tty = process.stderr.isTTY === true;
  const progress = (s: ReplayStats): void => {
    const now = Date.now();
    if (!tty || now - lastProgress < PROGRESS_EVERY_MS) return;
    lastProgress = now;
    const rate = Math.round(s.lines / Math.max(0.001, (now - started) / 1000));
    process.stderr.write(`\rapb replay: ${s.lines} lines, ${rate} lines/s, ${s.errors} errors `);
  };

  let stats: ReplayStats;
  try {
    stats = await replayStream({ site, input, output: process.stdout, core, explain: args.explain === true, onProgress: progress });
  } catch (e) {
    if (closed) return 0;
    throw e;
  }
  if (tty) {
    const secs = (Date.now() - started) / 1000;
    process.stderr.write(`\rapb replay: ${stats.lines} lines in ${secs.toFixed(2)} s (${Math.round(stats.lines / Math.max(secs, 0.001))} lines/s), ${stats.errors} errors\n`);
  }
  return 0;
}
