/**
 * Offline replay (SPEC 11, 12 "Replay clock", "Replay errors"): one output
 * line per input line, deterministic, streaming.
 *
 * Clock: a non-offline line's `ts` is the engine's clock for it and must not
 * be below the clock (else bad_message, no change); an offline line reports
 * an event at its own `ts` and is decided at the current clock without moving
 * it. Offline lines before the first clocked line are judged with no clock
 * yet (time 0; no periodic resets run for them).
 *
 * Speed: lines are decoded one by one, and consecutive ops that run at the
 * same clock are handed to the core as one batch; error lines in between
 * change nothing, so they do not break a batch. Output order is input order.
 *
 * With `explain` (apb replay --explain), decision lines also carry `seen` and
 * each violation's facts (SPEC 13.3, explain.ts); without it they are the
 * protocol's decision replies, unchanged.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { ApbError } from '../errors.js';
import type { CompiledSite } from '../config/types.js';
import { createEngine } from './engine.js';
import type { CoreKind } from './engine.js';
import { decodeMessage, encodeResult, parseReplayLine } from './messages.js';
import type { CoreOp, CoreResult, Engine } from './types.js';
import { seenRecord, violationRecords } from './explain.js';

export interface ReplayStats { lines: number; errors: number }

function errorLine(e: unknown): string {
  const err = e instanceof ApbError ? e : new ApbError('internal', e instanceof Error ? e.message : String(e));
  return JSON.stringify({ t: 'error', code: err.code, message: err.message });
}

/** Decides replay lines in order; feed it chunks of lines, get their output lines back. */
export class Replayer {
  readonly engine: Engine;
  /** the replay clock: the last accepted non-offline ts, or null before the first */
  private clock: number | null = null;
  readonly stats: ReplayStats = { lines: 0, errors: 0 };
  // the batch being collected: ops to run at `batchAt` and the output slots they fill
  private batchOps: CoreOp[] = [];
  private batchSlots: number[] = [];
  private batchAt: number | null = null;
  private readonly lineCache = new Map<string, string>();

  private readonly explain: boolean;

  constructor(readonly site: CompiledSite, opts: { core?: CoreKind; engine?: Engine; explain?: boolean } = {}) {
    this.engine = opts.engine ?? createEngine(site, { core: opts.core ?? 'wasm' });
    this.explain = opts.explain === true;
  }

  /** Output lines (without newlines) for `lines`, one each, in order. */
  process(lines: readonly string[]): string[] {
    const out: string[] = new Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      this.stats.lines++;
      const text = lines[i]!;
      let op: CoreOp;
      let at: number | null;
      try {
        if (text.trim() === '') throw new ApbError('bad_frame', 'empty line (every line must be a JSON object)');
        const d = decodeMessage(parseReplayLine(text), this.site, { mode: 'replay' });
        op = d.op!;
        if (op.op === 'offline') {
          at = this.clock;
        } else {
          const ts = d.ts!;
          if (this.clock !== null && ts < this.clock) {
            throw new ApbError('bad_message', `ts: ${ts} is earlier than the replay clock ${this.clock} (the clock never runs backwards)`);
          }
          this.clock = ts;
          at = ts;
        }
      } catch (e) {
        this.stats.errors++;
        out[i] = errorLine(e);
        continue;
      }
      if (at !== this.batchAt) this.flush(out);
      this.batchAt = at;
      this.batchOps.push(op);
      this.batchSlots.push(i);
    }
    this.flush(out);
    return out;
  }

  /** output line of a result; the common ones (acks, decisions without violations) are few, so they are cached */
  private encode(r: CoreResult): string {
    let key: string | undefined;
    if (r.op !== 'badge') key = 'ack';
    else if (r.violations.length === 0) key = `${r.grant}|${r.reason}|${r.area}`;
    if (key === undefined) return JSON.stringify(encodeResult(r, this.site));
    let line = this.lineCache.get(key);
    if (line === undefined) { line = JSON.stringify(encodeResult(r, this.site)); this.lineCache.set(key, line); }
    return line;
  }

  /** a decision line with `seen` and the violations' facts (SPEC 13.3) */
  private explained(r: CoreResult & { op: 'badge' }, reader: number, at: number): string {
    const line = encodeResult(r, this.site);
    line.violations = violationRecords(r.violations, r.seen, this.site, reader, at);
    line.seen = seenRecord(r.seen, this.site);
    return JSON.stringify(line);
  }

  private flush(out: string[]): void {
    if (this.batchOps.length === 0) return;
    const at = this.batchAt;
    // Before the first clocked line the engine has no clock: decide at the core's time 0 without starting it.
    const results: CoreResult[] = at === null ? this.engine.core.apply(this.batchOps, this.engine.clock) : this.engine.apply(this.batchOps, at);
    for (let k = 0; k < results.length; k++) {
      const r = results[k]!, op = this.batchOps[k]!;
      out[this.batchSlots[k]!] = this.explain && r.op === 'badge' && op.op === 'badge' ? this.explained(r, op.reader, at ?? 0) : this.encode(r);
    }
    this.batchOps = [];
    this.batchSlots = [];
  }
}

/**
 * Streams `input` (JSON lines) through a Replayer into `output`, never holding
 * more than one chunk of lines; honours the output's backpressure.
 */
export async function replayStream(opts: {
  site: CompiledSite; input: Readable; output: Writable; core?: CoreKind; engine?: Engine; explain?: boolean;
  chunkLines?: number; onProgress?: (stats: ReplayStats) => void;
}): Promise<ReplayStats> {
  const replayer = new Replayer(opts.site, { core: opts.core, engine: opts.engine, explain: opts.explain });
  const chunkLines = opts.chunkLines ?? 4096;
  const rl = createInterface({ input: opts.input, crlfDelay: Infinity, terminal: false });
  let chunk: string[] = [];
  const emit = async (): Promise<void> => {
    const lines = replayer.process(chunk);
    chunk = [];
    if (!opts.output.write(lines.join('\n') + '\n')) await once(opts.output, 'drain');
    opts.onProgress?.(replayer.stats);
  };
  for await (const line of rl) {
    chunk.push(line);
    if (chunk.length >= chunkLines) await emit();
  }
  if (chunk.length) await emit();
  return replayer.stats;
}
