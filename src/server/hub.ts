/**
 * The decision pipeline shared by the controller WebSocket, POST /v1/decide
 * and the UHPPOTE listener. Per frame (one message or a batch):
 *
 *   per message: map? → rate limit → adapter (non-native) → id → resent id?
 *                → decodeMessage → forbidden_reader
 *   one engine.apply(ops of the frame, now)          (synchronous)
 *   encode replies, EventRecords + IdemRecords → store.append (group commit)
 *   replies are released only when the commit resolves (SPEC 9)
 *
 * Everything up to store.append is synchronous, so the engine sees frames in
 * arrival order and the journal has them in the same order. A resend of an
 * id whose commit is still in flight waits for that commit and gets the same
 * bytes (the `inflight` map). If a commit fails, every message that waited
 * on it is answered storage_unavailable, the hub turns unready, and the
 * engine is rebuilt from what the store holds before anything is decided
 * again (so memory never diverges from the journal).
 */
import { ApbError, isApbError, type ErrorCode } from '../errors.js';
import { MAX_U64, TWO_53, credToText, type Cred } from '../engine/cred.js';
import { DEFAULT_MAX_CLOCK_SKEW_S, MAX_ID_BYTES, MAX_REJECTED_RECORDS_PER_S, MAX_REJECTED_TEXT_BYTES } from '../limits.js';
import type { CoreOp, CoreResult, Engine, ReloadReport, Seen, Violation } from '../engine/types.js';
import { seenRecord, violationRecords, type ViolationRecord } from '../engine/explain.js';
import type { CompiledSite } from '../config/types.js';
import type { EventRecord, IdemRecord, Store } from '../store/types.js';
import type { Adapter } from '../adapters/types.js';
import { checkMessageStrings, clipText, decodeMessage, encodeResult, lockableArea, toReplayObject } from '../engine/messages.js';
import { adapterFor } from '../adapters/index.js';
import { loadSiteTextAsync } from '../config/load.js';
import { concatArray, encodeReply as encode, frameHasInvalidUtf8, isPlainMap, wireInt } from './codec.js';
import { wireEngine } from '../engine/engine.js';
import { movePath } from '../config/tree.js';
import { WIRE_IN_STRIDE, WIRE_OUT_STRIDE, type WireViews } from '../engine/wasm-core.js';
import { REASONS, VIOLATION_CODES } from '../engine/types.js';
import { CompactWriter, seenNone, type CompactGroup, type SeenScratch } from '../store/compact-journal.js';
import { FrameScanner, ReaderTable } from './fast-frame.js';
import { FastFlight, FlightGroups } from './fast-flight.js';
import { StreamOrder, type StreamPlace } from './stream-order.js';
import { ReplyTemplates, writeId } from './reply-templates.js';
import { TokenBucket, DEFAULT_RATE_LIMIT } from './rate-limit.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './log.js';
import { Slab } from '../store/slab.js';

/** One message's answer: the encoded reply map, and the error code when it is an error. */
export interface Reply { bytes: Uint8Array; code?: ErrorCode; message?: string }

/** A controller as the hub sees it (one per controller id, shared by all its sockets). */
export interface ControllerCtx {
  id: string;
  index: number;
  protocol: 'native' | 'wiegand' | 'osdp' | 'uhppote';
  adapter: Adapter | null;
  bucket: TokenBucket;
  /** rejected-message records written in the current second (bounded: MAX_REJECTED_RECORDS_PER_S) */
  rejects: { second: number; n: number };
  /** the encoded frame-level rate_limited reply (no id): sent without decoding the frame */
  limited?: Uint8Array;
  /** the readers this controller owns, by UTF-8 bytes (the fast path's scanner matches against them) */
  readers: ReaderTable;
}

/** Events for the live stream and webhooks (PROTOCOL of /v1/stream, see stream.ts). */
export type HubEvent = Record<string, unknown> & { kind: string; at: number };

export interface HubSink {
  /** false when nobody listens: the hub then builds no stream events at all */
  active(): boolean;
  emit(ev: HubEvent): void;
  /** engine state changed (occupancy may have) */
  changed(): void;
}

export interface HubOptions {
  store: Store;
  engine: Engine;
  configText: string;
  log: Logger;
  metrics: Metrics;
  sink: HubSink;
  /** rebuilds the engine from the store (openDurableEngine) after a failed commit */
  rebuild(configText: string): Promise<Engine>;
  /** called after every configuration swap (auth tables, controller contexts) */
  onSite?(site: CompiledSite, report: ReloadReport | null): void;
  /** ms between recovery attempts */
  retryMs?: number;
  /** largest batch (messages per frame) */
  maxBatch?: number;
  /** the allocation-free path for native badge/passage frames (fastFrame); default on unless APB_FAST_PATH=0 */
  fastPath?: boolean;
}


/** most messages the fast path takes in one frame (the WASM core's batch capacity bounds it too) */
export const FAST_MAX_BATCH = 1024;
const R = REASONS.length;
const V = VIOLATION_CODES.length;

/** the operator actions of SPEC 6 and 13 */
export type ActionName = 'forgive' | 'reset' | 'exempt' | 'setLocation' | 'resetArea' | 'supervisor' | 'lockdown';
/** actions that set a flag on or off (their records and stream events carry `on`) */
const TOGGLES: ReadonlySet<string> = new Set(['exempt', 'supervisor', 'lockdown']);
// violation codes whose facts the compact record carries (VIOLATION_CODES indexes)
const C_REUSE = VIOLATION_CODES.indexOf('reuse'), C_SEQUENCE = VIOLATION_CODES.indexOf('sequence');
const C_OCCUPANCY = VIOLATION_CODES.indexOf('occupancy'), C_LAST_SUP = VIOLATION_CODES.indexOf('last_supervisor');
/** per-frame tally (applied when its commit succeeds): decisions by reason, grants, denies, violations by code:mode */
const T_GRANTS = R, T_DENIES = R + 1, T_VIOL = R + 2, TALLY = R + 2 + 2 * V;
/** metric keys of violations: VKEYS[code * 2 + (hard ? 1 : 0)] */
const VKEYS = VIOLATION_CODES.flatMap((c) => [`${c}:soft`, `${c}:hard`]);

interface Inflight { commit?: Promise<boolean>; bytes?: Uint8Array }

/** Per-message working slot of a frame; a decided slot is also its own in-flight entry (commit + bytes). */
interface Slot extends Inflight {
  reply?: Reply;
  wait?: Inflight;
  op?: CoreOp;
  opIndex?: number;
  id?: number | bigint;
  /** the id as the store keeps it (number up to 2^53, else decimal string): a value-compared map key */
  key?: number | string;
  result?: CoreResult;
  t?: string;
  ts?: number;
  raw?: Record<string, unknown>;
  readerText?: string;
  /** an earlier message of the same frame with the same id */
  dupOf?: Slot;
}

/** Per frame: the decoded frame (to find its bytes) and, once looked at, whether any str in it is invalid UTF-8. */
interface FrameCtx { frame: unknown; badUtf8: boolean | undefined }

/** Rejections worth an event-log record (not floods of rate_limited / storage / shutdown refusals). */
function recordable(code: ErrorCode | undefined): boolean {
  return code !== undefined && code !== 'rate_limited' && code !== 'storage_unavailable' && code !== 'not_ready';
}

export const DEFAULT_MAX_BATCH = 4096;

/** Most violations one decision can raise on `site` (assembly/site.ts computes the same bound). */
function maxViolationsPerOp(site: CompiledSite): number {
  let mv = 1;
  for (let r = 0; r < site.readerIds.length; r++) {
    const p = movePath(site, site.readerFrom[r]!, site.readerTo[r]!);
    mv = Math.max(mv, 1 + p.exited.length + 3 * p.entered.length);
  }
  return mv;
}

/** bytes writeId writes for id */
function idLength(id: number): number {
  return id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : id <= 0xffffffff ? 5 : 9;
}
/** shared by every record without violations (never mutated) */
const NO_VIOLATIONS: { code: string; mode: string; area: string | null }[] = [];

function errorReply(code: ErrorCode, message: string, id?: number | bigint): Reply {
  const m: Record<string, unknown> = id === undefined ? { t: 'error', code, message } : { t: 'error', id: wireInt(id), code, message };
  return { bytes: encode(m), code, message };
}

/** PROTOCOL: `id` is a non-negative integer up to 2^64-1 (2^53 and beyond as bigint, whichever way it was decoded). */
export function validId(v: unknown): number | bigint | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : v === TWO_53 ? 1n << 53n : undefined;
  if (typeof v === 'bigint') return v >= 0n && v <= MAX_U64 ? v : undefined;
  return undefined;
}

/** The id as the store keeps it: number up to 2^53, decimal string beyond. */
export function storeId(id: number | bigint): number | string {
  if (typeof id === 'number') return id;
  return id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : id.toString();
}

export class Hub {
  engine: Engine;
  site: CompiledSite;
  configText: string;
  ready = true;
  draining = false;
  /** why the hub is not ready (for /healthz) */
  reason = '';
  readonly store: Store;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly sink: HubSink;
  private readonly opts: HubOptions;
  /** per controller: id (store form) → the slot whose commit is in flight */
  private readonly inflight = new Map<string, Map<number | string, Inflight>>();
  /** commits in flight (commit/commitGroups), and who waits for none to be (whenIdle) */
  private inflightCommits = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly controllers = new Map<string, ControllerCtx>();
  private recovering = false;
  private retryTimer: NodeJS.Timeout | undefined;
  readonly maxBatch: number;
  // ── fast path state ──
  readonly fastPath: boolean;
  /** per controller: the highest id it used (appended, committed or not); from store.maxId when first seen */
  private readonly marks = new Map<string, number>();
  /** per controller: fast-path frames whose commit is in flight */
  private readonly fastFlying = new Map<string, FastFlight[]>();
  /** fast-path frames grouped by the store promise they wait for (fast-flight.ts) */
  private readonly flights = new FlightGroups((f, ok, err) => this.settleFast(f, ok, err));
  /** stream events in decision order (stream-order.ts) */
  private readonly streamOrder = new StreamOrder((events) => { for (const ev of events) this.emit(ev); });
  /** told of every fast-path frame once its reply is set (the socket layer sends it) */
  onFastSettled: (f: FastFlight) => void = () => undefined;
  private readonly scanner = new FrameScanner(FAST_MAX_BATCH);
  private readonly templates = new ReplyTemplates();
  private writer = new CompactWriter('');
  /** a frame's id table and reply bytes (slab.ts: views into shared buffers, no malloc per frame) */
  private readonly slab = new Slab();
  /** reply prefixes of the frame being answered (references only, reused) */
  private readonly prefixes: Uint8Array[] = new Array(FAST_MAX_BATCH).fill(null);
  private readonly violScratch = new Float64Array(5 * 256);
  private readonly violXScratch = new Float64Array(256);
  /** a frame's compact groups (usually one) */
  private readonly groupScratch: CompactGroup[] = [];
  private readonly seenS: SeenScratch = seenNone();
  private compactSite: CompiledSite | null = null;
  private compactSiteOk = false;

  constructor(opts: HubOptions) {
    this.opts = opts;
    this.store = opts.store;
    this.engine = opts.engine;
    this.site = opts.engine.site;
    this.configText = opts.configText;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.sink = opts.sink;
    this.maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
    this.fastPath = opts.fastPath ?? process.env.APB_FAST_PATH !== '0';
    this.refreshControllers();
  }

  /** Controller contexts (rate buckets survive reloads; removed controllers disappear). */
  private refreshControllers(): void {
    const seen = new Set<string>();
    this.site.config.controllers.forEach((c) => {
      seen.add(c.id);
      const rate = c.rateLimit ?? DEFAULT_RATE_LIMIT;
      const old = this.controllers.get(c.id);
      const ctx: ControllerCtx = {
        id: c.id,
        index: this.site.controllerIndex.get(c.id) ?? -1,
        protocol: c.protocol,
        adapter: c.protocol === 'native' ? null : adapterFor(c.protocol),
        bucket: old && old.bucket.rate === rate ? old.bucket : new TokenBucket(rate),
        rejects: old?.rejects ?? { second: 0, n: 0 },
        readers: new ReaderTable(this.site, c.protocol === 'native' ? this.site.controllerIndex.get(c.id) ?? -1 : -1),
      };
      this.controllers.set(c.id, ctx);
    });
    for (const id of [...this.controllers.keys()]) if (!seen.has(id)) this.controllers.delete(id);
    for (const [id, l] of [...this.fastFlying]) if (l.length === 0 && !seen.has(id)) this.fastFlying.delete(id);
  }

  controller(id: string): ControllerCtx | undefined { return this.controllers.get(id); }

  /** How many commits are still in flight. */
  get inFlight(): number { return this.inflightCommits; }

  /*
   * A commit's outcome as a boolean, through two handlers made once (a frame allocates no closures
   * for them) that also count it out of the commits in flight.
   */
  private readonly committed = (): boolean => { this.metrics.storageCommits++; this.settledOne(); return true; };
  private readonly notCommitted = (e: unknown): boolean => { this.settledOne(); this.fail(e); return false; };

  private settledOne(): void {
    if (--this.inflightCommits > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    // in the next turn: the replies chained on the last commit are sent first
    setImmediate(() => { for (const w of waiters) w(); });
  }

  /** Resolves once no commit is in flight. */
  private async whenIdle(): Promise<void> {
    while (this.inflightCommits > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /**
   * Decides one frame. `value` is the decoded frame (a map or an array of
   * maps); the result has one Reply per message, in order.
   */
  handle(ctrl: ControllerCtx, value: unknown): Reply[] | Promise<Reply[]> {
    if (Array.isArray(value)) {
      if (value.length > this.maxBatch) {
        return [errorReply('too_large', `batch of ${value.length} messages exceeds the limit of ${this.maxBatch}`)];
      }
      return this.run(ctrl, value, value);
    }
    if (isPlainMap(value)) return this.run(ctrl, [value], value);
    this.take(ctrl, 1);
    const reply = errorReply('bad_frame', 'a frame must hold a map or an array of maps');
    this.rejectFrame(ctrl, reply);
    return [reply];
  }

  // ── the fast path: native badge/passage frames, no per-message objects ──

  /**
   * Answers a frame of `ctrl` from its bytes without decoding it into
   * objects, or returns null (nothing done, no token taken) when the frame
   * is not for the fast path; the caller then takes the general path.
   * Taken when: the hub is ready and not draining, the engine's core is the
   * WASM core, `ctrl` is a native
   * controller, the scanner accepts the frame (fast-frame.ts: only
   * {t: badge|passage, id, cred, reader} with integer id/cred <= 2^53-1,
   * an owned reader, ids strictly increasing and above the controller's
   * high-water mark) and the rate bucket pays for every message. Then,
   * synchronously: one engine call over input slots the scanner filled,
   * replies from templates into one buffer, the frame's records into one
   * compact group (store.appendCompact). The replies are released when
   * that commit resolves (SPEC 9); on failure every message is answered
   * storage_unavailable and the engine is rebuilt (fail), as on the
   * general path. The bytes, records and engine effects are those of the
   * general path for the same frame (test/server/fast-path.test.ts).
   * Returns the frame's FastFlight (its reply set when the commit settles,
   * then onFastSettled), the error reply at once when deciding it failed, or
   * null when the fast path does not take the frame.
   */
  fastFrame(ctrl: ControllerCtx, b: Uint8Array, arrived = performance.now()): FastFlight | Uint8Array | null {
    if (!this.fastPath || ctrl.adapter !== null || !this.ready || this.draining) return null;
    const table = ctrl.readers;
    if (table.count === 0) return null;
    const engine = wireEngine(this.engine);
    if (engine === null) return null;
    if (this.compactSite !== this.site) {
      // a compact record holds at most 255 violations: a site whose deepest move could raise more keeps the general path
      this.compactSite = this.site;
      this.compactSiteOk = maxViolationsPerOp(this.site) <= 255;
    }
    if (!this.compactSiteOk) return null;
    let hwm = this.marks.get(ctrl.id);
    if (hwm === undefined) {
      hwm = this.store.maxId(ctrl.id);
      this.marks.set(ctrl.id, hwm);
    }
    const sc = this.scanner;
    if (!sc.scan(b, table, hwm, Math.min(this.maxBatch, FAST_MAX_BATCH), engine.core.wireViews())) return null;
    const n = sc.n;
    if (!ctrl.bucket.takeAll(n, arrived)) return null; // the general path takes them one by one and refuses the rest
    const m = this.metrics;
    if (sc.badges) m.inc(m.messages, 'badge', sc.badges);
    if (sc.passages) m.inc(m.messages, 'passage', sc.passages);
    m.fastPathMessages += n;
    const site = this.site;
    this.templates.use(site);
    let now = Date.now();
    // tally | ids | reply starts (FastFlight)
    const meta = this.slab.f64(TALLY + 2 * n + 1);
    const tally = meta;
    const stream: HubEvent[] | null = this.sink.active() ? [] : null;
    const groups = this.groupScratch; // reused: appendGroups hands the groups on and keeps no array
    groups.length = 0;
    let bytes: Uint8Array;
    try {
      const t0 = performance.now();
      let done = 0;
      let len = 0;
      const writer = this.writer;
      writer.reset(ctrl.id);
      while (done < n) {
        const k = n - done;
        const got = engine.decideWire(k, now);
        if (!(got >= 1)) throw new Error(`the core decided ${got} of ${k} messages`);
        if (done === 0) now = Math.max(now, engine.clock);
        len += this.fastResults(engine.core.wireViews(), done, got, now, site, tally, stream, groups, ctrl);
        done += got;
        if (done < n) {
          // the violation region filled up: the rest of the slots move to the front
          const v = engine.core.wireViews();
          v.u8.copyWithin(v.inBase, v.inBase + got * WIRE_IN_STRIDE, v.inBase + k * WIRE_IN_STRIDE);
        }
      }
      m.engineSeconds += (performance.now() - t0) / 1000;
      m.engineCalls++;
      if (writer.size > 0) groups.push(writer.finish());
      // the replies: one array header (a batch) + every message's template prefix and id
      const head = sc.batch ? (n < 16 ? 1 : n < 0x10000 ? 3 : 5) : 0;
      bytes = this.slab.u8(head + len);
      let p = 0;
      if (sc.batch) {
        if (n < 16) bytes[p++] = 0x90 | n;
        else { bytes[p++] = 0xdc; bytes[p++] = n >>> 8; bytes[p++] = n & 0xff; }
      }
      const prefixes = this.prefixes, ids = sc.ids, st = TALLY + n;
      for (let i = 0; i < n; i++) {
        meta[TALLY + i] = ids[i]!;
        meta[st + i] = p;
        const t = prefixes[i]!;
        bytes.set(t, p);
        p = writeId(bytes, p + t.length, ids[i]!);
        prefixes[i] = null as unknown as Uint8Array;
      }
      meta[st + n] = p;
      if (p !== bytes.length) throw new Error(`fast-path replies: wrote ${p} of ${bytes.length} bytes`);
    } catch (e) {
      // as brokenFrame: the engine may hold effects the journal will not; answer internal, rebuild
      this.prefixes.fill(null as unknown as Uint8Array, 0, n);
      this.log.error({ err: e }, 'fast path: deciding a frame failed');
      this.fail(e, 'internal');
      return this.fastErrors(sc.ids.slice(0, n), sc.batch, 'internal', 'internal error after the decision; nothing was kept, the engine is rebuilt from the journal');
    }
    this.marks.set(ctrl.id, meta[TALLY + n - 1]!);
    const flight = new FastFlight(ctrl.id, meta, n, bytes, sc.batch, stream ? this.streamOrder.take(stream) : null);
    let list = this.fastFlying.get(ctrl.id);
    if (!list) { list = []; this.fastFlying.set(ctrl.id, list); }
    list.push(flight);
    this.flights.add(this.appendGroups(groups), flight);
    return flight;
  }

  /** A fast frame's commit settled (FlightGroups): its reply, counters and stream events; the socket layer is told. */
  private settleFast(f: FastFlight, ok: boolean, err: unknown): void {
    try {
      if (ok) this.committed(); else this.notCommitted(err);
      const l = this.fastFlying.get(f.ctrlId);
      if (l) { const i = l.indexOf(f); if (i >= 0) l.splice(i, 1); } // an empty list stays: no Map churn per frame
      if (!ok) {
        f.reply = this.fastErrors(f.meta.subarray(TALLY, TALLY + f.n), f.batch, 'storage_unavailable', 'the decision could not be persisted; nothing was decided');
      } else {
        this.countTally(f.meta);
        this.sink.changed();
        f.reply = f.bytes;
      }
    } catch (e) {
      this.log.error({ err: e }, 'frame failed');
    } finally {
      f.done = true;
      if (f.stream) this.streamOrder.settle(f.stream, ok);
    }
    try { this.onFastSettled(f); } catch (e) { this.log.error({ err: e }, 'sending a reply failed'); }
  }

  /**
   * Reads the results of `count` decided messages (frame positions from..)
   * out of the core's output slots: reply prefixes, journal records,
   * tallies, stream events. Returns the reply bytes they need.
   */
  private fastResults(v: WireViews, from: number, count: number, at: number, site: CompiledSite, tally: Float64Array, stream: HubEvent[] | null, groups: CompactGroup[], ctrl: ControllerCtx): number {
    const u8 = v.u8, i32 = v.i32, u32 = v.u32;
    const vBase = v.violBase >> 2, fBase = v.factBase >> 2;
    const sc = this.scanner, templates = this.templates, prefixes = this.prefixes, viol = this.violScratch, violX = this.violXScratch;
    const writer = this.writer;
    let len = 0;
    let o = v.outBase;
    for (let j = 0; j < count; j++, o += WIRE_OUT_STRIDE) {
      const i = from + j;
      const kind = sc.kinds[i]! as 0 | 1;
      const ok = u8[o] === 1;
      const reason = kind === 0 ? u8[o + 1]! : 0;
      const area = kind === 0 && ok ? i32[(o + 4) >> 2]! : -1;
      const w0 = vBase + u32[(o + 8) >> 2]!;
      const nv = kind === 0 ? u32[(o + 12) >> 2]! : 0;
      const id = sc.ids[i]!;
      const t = kind === 0 ? templates.decisionPrefix(ok, reason, i32[(o + 4) >> 2]!, u32, w0, nv) : templates.ackPrefix();
      prefixes[i] = t;
      len += t.length + idLength(id);
      // the journal record (one compact group per frame; a second one only if a group's name table filled up)
      for (let attempt = 0; ; attempt++) {
        const r = sc.readers[i]!;
        const ri = writer.readerIndex(site.readerIds[r]!);
        const ai = area >= 0 ? writer.areaIndex(site.areaIds[area]!) : -1;
        let full = ri < 0 || (area >= 0 && ai < 0);
        if (kind === 0 && !full) full = !this.seenScratch(u32, v.f64, o, site, writer);
        for (let k = 0; k < nv && !full; k++) {
          const w = u32[w0 + k]!;
          const a = w >>> 16, code = w & 0xff;
          const x = a === 0xffff ? -1 : writer.areaIndex(site.areaIds[a]!);
          if (a !== 0xffff && x < 0) full = true;
          // SPEC 13.3 facts (explain.ts): what the site says at the decision, and the core's count
          let aux = -1, fx = 0;
          if (code === C_REUSE) fx = site.reuseLockoutMs[r]!;
          else if (code === C_SEQUENCE) { aux = writer.areaIndex(site.areaIds[site.readerFrom[r]!]!); if (aux < 0) full = true; }
          else if (code === C_OCCUPANCY) fx = site.maxOccupancy[a]!;
          viol[5 * k] = code; viol[5 * k + 1] = ((w >>> 8) & 0xff) === 2 ? 0 : 1; viol[5 * k + 2] = x; viol[5 * k + 3] = aux;
          viol[5 * k + 4] = code === C_OCCUPANCY || code === C_LAST_SUP ? u32[fBase + u32[(o + 8) >> 2]! + k]! : 0;
          violX[k] = fx;
        }
        if (!full) {
          if (!writer.add(at, id, sc.creds[i]!, kind, ri, ok, reason, ai, nv, viol, violX, this.seenS)) throw new Error('compact record refused');
          break;
        }
        if (attempt > 0 || writer.size === 0) throw new Error('a record names more readers/areas than a compact group holds');
        groups.push(writer.finish()); // same controller, empty name tables
      }
      if (kind === 0) {
        tally[reason]!++;
        tally[ok ? T_GRANTS : T_DENIES]!++;
        for (let k = 0; k < nv; k++) { const w = u32[w0 + k]!; tally[T_VIOL + 2 * (w & 0xff) + (((w >>> 8) & 0xff) === 2 ? 1 : 0)]!++; }
        if (stream) this.fastStream(ctrl, sc.readers[i]!, sc.creds[i]!, ok, reason, area, u32, w0, nv, site, at, stream);
      }
    }
    return len;
  }

  /**
   * The seen state of the badge in the output slot at o (wasm-core.ts seenAt), names interned in the
   * writer's tables, into this.seenS; false when a name table is full.
   */
  private seenScratch(u32: Uint32Array, f64: Float64Array, o: number, site: CompiledSite, writer: CompactWriter): boolean {
    const s = this.seenS;
    const mlo = u32[(o + 16) >> 2]!, mhi = u32[(o + 20) >> 2]!, rlo = u32[(o + 24) >> 2]!, rhi = u32[(o + 28) >> 2]!;
    const loc = (mhi >>> 12) & 0xffff, lr = (rhi >>> 12) & 0xffff;
    s.location = loc === 0xffff ? -1 : writer.areaIndex(site.areaIds[loc]!);
    s.lastReader = lr === 0xffff ? -1 : writer.readerIndex(site.readerIds[lr]!);
    if ((loc !== 0xffff && s.location < 0) || (lr !== 0xffff && s.lastReader < 0)) return false;
    s.lastMoveAt = (mhi & 0xfff) * 2 ** 32 + mlo;
    s.lastReaderAt = (rhi & 0xfff) * 2 ** 32 + rlo;
    s.flags = ((mhi & (1 << 30)) !== 0 ? 2 : 0) | ((mhi & 0x80000000) !== 0 ? 4 : 0) | ((rhi & (1 << 30)) !== 0 ? 8 : 0);
    s.pendingTo = -1;
    if ((rhi & (1 << 28)) !== 0) {
      s.pendingTo = writer.areaIndex(site.areaIds[u32[(o + 40) >> 2]!]!);
      s.deadline = f64[(o + 32) >> 3]!;
      if (s.pendingTo < 0) return false;
    }
    return true;
  }

  /** The stream events of a decided badge: exactly the general path's (streamEvents). */
  private fastStream(ctrl: ControllerCtx, r: number, cred: number, grant: boolean, reason: number, area: number, words: Uint32Array, w0: number, nv: number, site: CompiledSite, at: number, out: HubEvent[]): void {
    const reader = site.readerIds[r]!;
    const from = site.areaIds[site.readerFrom[r]!]!;
    const to = site.areaIds[site.readerTo[r]!]!;
    const credText = String(cred);
    const violations: { code: string; mode: string; area: string | null }[] = nv === 0 ? NO_VIOLATIONS : new Array(nv);
    for (let k = 0; k < nv; k++) {
      const w = words[w0 + k]!;
      const a = w >>> 16;
      violations[k] = { code: VIOLATION_CODES[w & 0xff]!, mode: ((w >>> 8) & 0xff) === 2 ? 'hard' : 'soft', area: a !== 0xffff ? site.areaIds[a]! : null };
    }
    out.push({ kind: 'decision', at, controller: ctrl.id, reader, from, to, cred: credText, grant, reason: REASONS[reason]!, violations, area: area >= 0 ? site.areaIds[area]! : null });
    for (const x of violations) out.push({ kind: 'violation', at, controller: ctrl.id, reader, from, to, cred: credText, code: x.code, mode: x.mode, area: x.area, grant, late: false });
  }

  /** A fast frame's messages all answered with one error (their ids): the general path's errorReply bytes. */
  private fastErrors(ids: Float64Array, batch: boolean, code: ErrorCode, message: string): Uint8Array {
    if (!batch) return errorReply(code, message, ids[0]!).bytes;
    return concatArray(Array.from(ids, (id) => errorReply(code, message, id).bytes));
  }

  /** A committed fast frame's per-message counters (the general path counts in settle → count). */
  private countTally(t: Float64Array): void {
    const m = this.metrics;
    let decided = 0;
    for (let r = 0; r < R; r++) if (t[r]) { m.inc(m.decisions, REASONS[r]!, t[r]!); decided += t[r]!; }
    m.grants += t[T_GRANTS]!;
    m.denies += t[T_DENIES]!;
    m.recentDecisions += decided;
    for (let k = 0; k < 2 * V; k++) if (t[T_VIOL + k]) m.inc(m.violations, VKEYS[k]!, t[T_VIOL + k]!);
  }

  /** store.appendCompact of a frame's groups, counted in flight until settleFast (commit()'s semantics: a failure starts recovery). */
  private appendGroups(groups: CompactGroup[]): Promise<unknown> {
    const store = this.store;
    let appended: Promise<unknown>;
    try {
      appended = groups.length === 1 ? store.appendCompact(groups[0]!) : Promise.all(groups.map((g) => store.appendCompact(g)));
    } catch (e) { appended = Promise.reject(e); }
    this.inflightCommits++;
    return appended;
  }

  /** A fast-path message of `controller` with this id whose commit is in flight (a resend waits for it), or undefined. */
  private fastInflight(controller: string, id: number): Inflight | undefined {
    const list = this.fastFlying.get(controller);
    if (!list) return undefined;
    for (const f of list) {
      const m = f.meta, n = f.n;
      if (id < m[TALLY]! || id > m[TALLY + n - 1]!) continue;
      let lo = 0, hi = n - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const x = m[TALLY + mid]!;
        if (x === id) return { commit: f.commit, bytes: f.bytes.subarray(m[TALLY + n + mid]!, m[TALLY + n + mid + 1]!) };
        if (x < id) lo = mid + 1; else hi = mid - 1;
      }
    }
    return undefined;
  }

  /** Takes the tokens of n messages refused as a whole (a bad frame is one message). */
  private take(ctrl: ControllerCtx, n: number): void { ctrl.bucket.charge(n); }

  /**
   * Whether a frame of `ctrl` is worth decoding: false when its bucket is
   * empty (or in debt). The socket then answers limitedReply without
   * decoding anything: O(1) per frame for a controller over its limit.
   * `n`: how many messages the frame holds (its header says), all owed.
   */
  admit(ctrl: ControllerCtx, n: number, now = performance.now()): boolean {
    if (ctrl.bucket.admit(now)) return true;
    ctrl.bucket.charge(n, now);
    this.metrics.inc(this.metrics.errors, 'rate_limited', n);
    return false;
  }

  /** The frame-level rate_limited error (no id: the frame was not decoded), encoded once per controller. */
  limitedReply(ctrl: ControllerCtx): Uint8Array {
    return ctrl.limited ??= encode({ t: 'error', code: 'rate_limited', message: `controller ${ctrl.id} exceeded its rate limit of ${ctrl.bucket.rate} messages/s; frame not read` });
  }

  /** A frame refused as a whole (bad_frame, too_large): counted against the rate limit and logged, bounded. */
  rejectFrame(ctrl: ControllerCtx, reply: Reply): void {
    const rec = this.rejected(ctrl, { reply }, Date.now());
    if (rec) this.recordRejected([rec]);
  }

  /** A frame refused by the socket before the hub saw it (too large, not MessagePack): one message. */
  refuseFrame(ctrl: ControllerCtx, code: ErrorCode, message: string): void {
    this.take(ctrl, 1);
    this.rejectFrame(ctrl, { bytes: new Uint8Array(0), code, message });
  }

  private run(ctrl: ControllerCtx, msgs: unknown[], frame: unknown): Reply[] | Promise<Reply[]> {
    const n = msgs.length;
    const slots: Slot[] = new Array(n);
    const ops: CoreOp[] = [];
    const site = this.site;
    let now = Date.now();
    // duplicate ids within one frame: only a frame of several messages can have them
    const local = n > 1 ? new Map<number | string, Slot>() : null;
    let flying = this.inflight.get(ctrl.id);
    if (!flying) { flying = new Map(); this.inflight.set(ctrl.id, flying); }
    const fx: FrameCtx = { frame, badUtf8: undefined };
    let i = 0;
    // every message takes a token, whatever becomes of it; past the limit the rest are refused unread
    for (; i < n; i++) {
      if (!ctrl.bucket.take()) break;
      slots[i] = this.prepare(ctrl, msgs[i], ops, site, now, local, flying, fx);
    }
    if (i < n) {
      this.metrics.inc(this.metrics.errors, 'rate_limited', n - i);
      ctrl.bucket.charge(n - i - 1);
      const message = `controller ${ctrl.id} exceeded its rate limit of ${ctrl.bucket.rate} messages/s`;
      for (; i < n; i++) {
        const m = msgs[i];
        slots[i] = { reply: errorReply('rate_limited', message, isPlainMap(m) ? validId(m.id) : undefined) };
      }
    }
    if (ops.length === 0) return this.finishWithoutOps(ctrl, slots, now);

    // ── the engine (WASM) call: one per frame ──
    const t0 = performance.now();
    let results: CoreResult[];
    try {
      results = this.engine.apply(ops, now);
    } catch (e) {
      // the core may have changed part of its state before throwing: rebuild it from the store
      return this.brokenFrame(slots, e, 'engine.apply threw');
    }
    this.metrics.engineSeconds += (performance.now() - t0) / 1000;
    this.metrics.engineCalls++;

    // Nothing below may fail because of the input (it was all checked in prepare). If it fails anyway
    // (a bug), memory is ahead of the journal: answer internal and rebuild from the store, as for a failed commit.
    let events: EventRecord[];
    let idem: IdemRecord[];
    let stream: HubEvent[] | null;
    try {
      now = Math.max(now, this.engine.clock);
      const nOps = ops.length;
      events = new Array(nOps);
      idem = new Array(nOps);
      stream = this.sink.active() ? [] : null;
      let k = 0;
      for (let i = 0; i < n; i++) {
        const s = slots[i]!;
        if (!s.op) continue;
        const result = results[s.opIndex!]!;
        s.result = result;
        const bytes = s.bytes = encode(this.replyBody(ctrl, s, result, site));
        const rec = events[k] = this.record(ctrl, s, result, site, now);
        idem[k++] = { controller: ctrl.id, id: s.key!, reply: bytes };
        if (stream) this.streamEvents(ctrl, s, result, rec, site, now, stream);
      }
      for (let i = 0; i < n; i++) { const s = slots[i]!; if (recordable(s.reply?.code)) { const r = this.rejected(ctrl, s, now); if (r) events.push(r); } }
    } catch (e) {
      return this.brokenFrame(slots, e, 'building the replies and records of a decided frame failed');
    }

    const commit = this.commit(events, idem);
    let mark = this.marks.get(ctrl.id);
    for (let i = 0; i < n; i++) {
      const s = slots[i]!;
      if (s.op) {
        s.commit = commit; flying.set(s.key!, s);
        if (mark !== undefined) mark = typeof s.key === 'number' ? Math.max(mark, s.key) : Infinity;
      }
    }
    if (mark !== undefined) this.marks.set(ctrl.id, mark);
    const place = stream ? this.streamOrder.take(stream) : null;
    return commit.then((ok) => this.settle(flying, slots, commit, ok, place));
  }

  /**
   * The engine may hold effects the journal will not: answer the frame's decided messages `internal`
   * (nothing of them is kept), stop deciding and rebuild the engine from the store (fail → recover).
   */
  private brokenFrame(slots: Slot[], e: unknown, what: string): Reply[] | Promise<Reply[]> {
    this.log.error({ err: e }, what);
    this.fail(e, 'internal');
    for (const s of slots) if (s.op) { s.reply = errorReply('internal', 'internal error after the decision; nothing was kept, the engine is rebuilt from the journal', s.id); s.op = undefined; }
    if (slots.every((s) => !s.wait && !s.dupOf)) return slots.map((s) => s.reply!);
    return this.collect(slots);
  }

  /** A frame's commit settled: release (or refuse) its decided replies. */
  private settle(flying: Map<number | string, Inflight>, slots: Slot[], commit: Promise<boolean>, ok: boolean, place: StreamPlace | null): Reply[] | Promise<Reply[]> {
    if (place) this.streamOrder.settle(place, ok);
    let waits = false;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (!s.op) { if (s.wait || s.dupOf) waits = true; continue; }
      if (flying.get(s.key!)?.commit === commit) flying.delete(s.key!);
      if (ok) { this.count(s.result!); s.reply = { bytes: s.bytes! }; }
      else s.reply = errorReply('storage_unavailable', 'the decision could not be persisted; nothing was decided', s.id);
    }
    if (ok) this.sink.changed();
    if (!waits) {
      const out: Reply[] = new Array(slots.length);
      for (let i = 0; i < slots.length; i++) out[i] = slots[i]!.reply!;
      return out;
    }
    return this.collect(slots);
  }

  /** Frames with nothing to decide (errors, pings, resends): still wait for any in-flight resend. */
  private finishWithoutOps(ctrl: ControllerCtx, slots: Slot[], now: number): Reply[] | Promise<Reply[]> {
    const rejected: EventRecord[] = [];
    for (const s of slots) if (recordable(s.reply?.code)) { const r = this.rejected(ctrl, s, now); if (r) rejected.push(r); }
    if (rejected.length) this.recordRejected(rejected);
    if (slots.every((s) => !s.wait && !s.dupOf)) return slots.map((s) => s.reply!);
    return this.collect(slots);
  }

  private async collect(slots: Slot[]): Promise<Reply[]> {
    const out: Reply[] = new Array(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.dupOf) out[i] = s.dupOf.reply!;
      else if (s.wait) {
        const ok = await s.wait.commit;
        out[i] = ok ? { bytes: s.wait.bytes! } : errorReply('storage_unavailable', 'the original message could not be persisted', s.id);
      } else out[i] = s.reply!;
    }
    return out;
  }

  /** Validates one message and, when it is to be decided, appends its op. */
  private prepare(ctrl: ControllerCtx, m: unknown, ops: CoreOp[], site: CompiledSite, now: number, local: Map<number | string, Slot> | null, inflight: Map<number | string, Inflight>, fx: FrameCtx): Slot {
    const slot: Slot = {};
    if (!isPlainMap(m)) {
      slot.reply = errorReply('bad_message', 'each message must be a map');
      return this.countError(slot);
    }
    let msg = m as Record<string, unknown>;
    slot.raw = msg;
    if (!this.ready || this.draining) {
      const id = validId(msg.id);
      slot.reply = this.draining
        ? errorReply('not_ready', 'the server is shutting down', id)
        : errorReply('storage_unavailable', `storage is unavailable (${this.reason}); nothing was decided`, id);
      return this.countError(slot);
    }
    try {
      // bounded strings first: nothing (adapter, error text, rejected record) may see an unbounded one
      checkMessageStrings(msg, site);
      if (ctrl.adapter) msg = ctrl.adapter.toCanonical(msg, { site, controller: ctrl.id }) as unknown as Record<string, unknown>;
      const id = validId(msg.id);
      if (id === undefined) {
        throw new ApbError('bad_message', msg.id === undefined ? 'id: missing (an unsigned integer is required)' : 'id: must be an unsigned integer up to 2^64-1');
      }
      slot.id = id;
      const key = slot.key = storeId(id);
      if (local !== null) { const twin = local.get(key); if (twin) { slot.dupOf = twin; return slot; } }
      const flying = inflight.get(key) ?? (typeof key === 'number' ? this.fastInflight(ctrl.id, key) : undefined);
      if (flying) { slot.wait = flying; return slot; }
      const stored = this.store.getIdem(ctrl.id, key);
      if (stored) { slot.reply = { bytes: stored }; return slot; }
      const d = decodeMessage(msg, site, { mode: 'wire' });
      slot.t = d.t;
      this.metrics.inc(this.metrics.messages, d.t);
      if (d.ts !== undefined) {
        // a controller clock far ahead would pin lastMoveAt in the future (later genuine uploads ignored)
        const skew = site.config.maxClockSkew ?? DEFAULT_MAX_CLOCK_SKEW_S;
        if (d.ts > now + skew * 1000) throw new ApbError('bad_message', `ts: ${d.ts} is more than ${skew} s ahead of the server clock (${now}); see maxClockSkew`);
        slot.ts = d.ts;
      }
      if (d.op !== null) this.checkUtf8(msg, d.op, fx);
      if (d.op === null) {
        slot.reply = { bytes: encode({ t: 'pong', id: wireInt(id), now: BigInt(Date.now()) }) };
        return slot;
      }
      const op = d.op;
      if ('reader' in op) {
        slot.readerText = typeof msg.reader === 'string' ? msg.reader : String(msg.reader);
        if (op.reader >= 0 && site.readerController[op.reader] !== ctrl.index) {
          const owner = site.controllerIds[site.readerController[op.reader]!];
          throw new ApbError('forbidden_reader', `reader "${site.readerIds[op.reader]}" belongs to controller "${owner}", not "${ctrl.id}"`);
        }
      }
      slot.op = op;
      slot.opIndex = ops.length;
      ops.push(op);
      if (local !== null) local.set(key, slot); // a duplicate id later in the same frame gets this one's reply
      return slot;
    } catch (e) {
      const err = isApbError(e) ? e : new ApbError('internal', (e as Error).message);
      if (!isApbError(e)) this.log.error({ err: e }, 'unexpected error while decoding a message');
      slot.reply = errorReply(err.code, err.message, slot.id ?? validId(msg.id));
      return this.countError(slot);
    }
  }

  /**
   * MessagePack str values with invalid UTF-8 decode to U+FFFD: refuse such a credential or reader
   * instead of merging byte strings. Only strings holding U+FFFD cost anything (one pass over the frame).
   */
  private checkUtf8(msg: Record<string, unknown>, op: CoreOp, fx: FrameCtx): void {
    const cred = 'cred' in op && op.cred.kind === 'str' && op.cred.bytes.length !== op.cred.value.length && op.cred.value.includes('\uFFFD');
    const reader = typeof msg.reader === 'string' && msg.reader.includes('\uFFFD');
    if (!cred && !reader) return;
    fx.badUtf8 ??= frameHasInvalidUtf8(fx.frame);
    if (fx.badUtf8) throw new ApbError('bad_message', `${cred ? 'cred' : 'reader'}: not valid UTF-8`);
  }

  private countError(slot: Slot): Slot {
    this.metrics.inc(this.metrics.errors, slot.reply!.code!);
    return slot;
  }

  private replyBody(ctrl: ControllerCtx, s: Slot, result: CoreResult, site: CompiledSite): Record<string, unknown> {
    if (result.op === 'badge') {
      const body = encodeResult(result, site); // {t, grant, reason, violations, area?}
      body.id = wireInt(s.id!);
      if (ctrl.adapter?.decorateDecision && s.raw) {
        try { ctrl.adapter.decorateDecision(body, s.raw, { site, controller: ctrl.id }); } catch (e) { this.log.warn({ err: e }, 'adapter decorateDecision failed'); }
      }
      return body;
    }
    return { t: 'ack', id: wireInt(s.id!) };
  }

  /** violations with their facts (SPEC 13.3) for the event record */
  private violationsExplained(vs: Violation[], seen: Seen, site: CompiledSite, reader: number, t: number): ViolationRecord[] {
    if (vs.length === 0) return NO_VIOLATIONS as ViolationRecord[];
    return violationRecords(vs, seen, site, reader, t);
  }

  /** The journal/event-log record of a decided message. */
  private record(ctrl: ControllerCtx, s: Slot, result: CoreResult, site: CompiledSite, at: number): EventRecord {
    const op = s.op!;
    // the wire credential as sent (an adapter may map the credential, so only for native controllers)
    const wire = ctrl.adapter === null ? s.raw?.cred : undefined;
    // a number is taken as is only up to 2^53-1 (2^53 itself goes the general way, as a bigint)
    const raw = typeof wire === 'number' && wire > Number.MAX_SAFE_INTEGER ? undefined : wire;
    if (op.op === 'badge' && result.op === 'badge' && op.reader >= 0 && s.ts === undefined && typeof raw === 'number' && op.cred.kind === 'int') {
      return this.badgeRecord(ctrl, s, result, site, at, raw, op.reader);
    }
    const rec: EventRecord = { at, kind: op.op as EventRecord['kind'], controller: ctrl.id, id: storeId(s.id!) };
    if ('reader' in op) rec.reader = op.reader >= 0 ? site.readerIds[op.reader]! : s.readerText!;
    if ('cred' in op) {
      // the text form of a safe-integer credential is its decimal digits: skip the BigInt round trip
      rec.cred = typeof raw === 'number' && op.cred.kind === 'int' ? String(raw) : credToText(op.cred);
    }
    if (s.ts !== undefined) rec.ts = s.ts;
    let changes = false;
    if (result.op === 'badge') {
      rec.grant = result.grant;
      rec.reason = result.reason;
      rec.violations = this.violationsExplained(result.violations, result.seen, site, op.op === 'badge' ? op.reader : -1, at);
      if (result.grant && result.area >= 0) rec.area = site.areaIds[result.area]!;
      rec.seen = seenRecord(result.seen, site);
      changes = result.grant;
    } else if (result.op === 'passage') {
      rec.applied = result.applied;
      changes = result.applied;
    } else if (result.op === 'offline') {
      rec.applied = result.applied;
      rec.grant = (op as { granted: boolean }).granted;
      const o = op as { reader: number; ts: number };
      rec.violations = this.violationsExplained(result.violations, result.seen, site, o.reader, o.ts);
      rec.seen = seenRecord(result.seen, site);
      changes = result.applied;
    }
    if (changes) {
      // badge/passage with a known reader and a safe-integer credential (the common case): the
      // replay object is built from what is at hand; field for field what toReplayObject returns
      if ((op.op === 'badge' || op.op === 'passage') && op.reader >= 0 && typeof raw === 'number' && op.cred.kind === 'int') {
        rec.op = { t: op.op, cred: raw, reader: rec.reader, ts: at };
      } else rec.op = toReplayObject(op, site, op.op === 'offline' ? op.ts : at);
    }
    return rec;
  }

  /**
   * The common case of record(): a native badge with a safe-integer credential and a known reader,
   * no controller timestamp. One object literal per shape (no property-by-property growth); the
   * same fields, in the same order, as the general path.
   */
  private badgeRecord(ctrl: ControllerCtx, s: Slot, result: CoreResult & { op: 'badge' }, site: CompiledSite, at: number, cred: number, reader: number): EventRecord {
    const readerId = site.readerIds[reader]!;
    const credText = String(cred);
    const violations = this.violationsExplained(result.violations, result.seen, site, reader, at);
    const seen = seenRecord(result.seen, site);
    if (!result.grant) {
      return { at, kind: 'badge', controller: ctrl.id, id: s.key!, reader: readerId, cred: credText, grant: false, reason: result.reason, violations, seen };
    }
    const op = { t: 'badge', cred, reader: readerId, ts: at };
    if (result.area >= 0) {
      return { at, kind: 'badge', controller: ctrl.id, id: s.key!, reader: readerId, cred: credText, grant: true, reason: result.reason, violations, area: site.areaIds[result.area]!, seen, op };
    }
    return { at, kind: 'badge', controller: ctrl.id, id: s.key!, reader: readerId, cred: credText, grant: true, reason: result.reason, violations, seen, op };
  }

  /**
   * The event-log record of a refused message, bounded: its text clipped, at most
   * MAX_REJECTED_RECORDS_PER_S per controller per second (the rest only counted), or null.
   */
  private rejected(ctrl: ControllerCtx, s: Slot, at: number): EventRecord | null {
    const second = Math.floor(at / 1000);
    const w = ctrl.rejects;
    if (w.second !== second) { w.second = second; w.n = 0; }
    if (w.n >= MAX_REJECTED_RECORDS_PER_S) { this.metrics.rejectedDropped++; return null; }
    w.n++;
    const rec: EventRecord = { at, kind: 'rejected', controller: ctrl.id, error: { code: s.reply!.code!, message: clipText(s.reply!.message ?? '', MAX_REJECTED_TEXT_BYTES) } };
    if (s.id !== undefined) rec.id = storeId(s.id);
    if (s.raw && typeof s.raw.reader === 'string') rec.reader = clipText(s.raw.reader, MAX_ID_BYTES);
    return rec;
  }

  private count(result: CoreResult): void {
    const m = this.metrics;
    if (result.op === 'badge') {
      m.inc(m.decisions, result.reason);
      if (result.grant) m.grants++; else m.denies++;
      m.recentDecisions++;
      for (const v of result.violations) m.inc(m.violations, `${v.code}:${v.mode}`);
    } else if (result.op === 'offline') {
      m.lateViolations += result.violations.length;
      for (const v of result.violations) m.inc(m.violations, `${v.code}:${v.mode}`);
    }
  }

  /** Stream events of a decided message; reader, cred and violations are taken from its record (already built). */
  private streamEvents(ctrl: ControllerCtx, s: Slot, result: CoreResult, rec: EventRecord, site: CompiledSite, at: number, out: HubEvent[]): void {
    const op = s.op!;
    if (!('reader' in op)) return;
    const reader = rec.reader!;
    const from = op.reader >= 0 ? site.areaIds[site.readerFrom[op.reader]!]! : null;
    const to = op.reader >= 0 ? site.areaIds[site.readerTo[op.reader]!]! : null;
    const cred = rec.cred!;
    if (result.op === 'badge') {
      // the stream's decision events name code, mode and area (as the fast path's); facts are in the event log
      const violations = rec.violations!.length === 0 ? NO_VIOLATIONS : rec.violations!.map((v) => ({ code: v.code, mode: v.mode, area: v.area }));
      out.push({ kind: 'decision', at, controller: ctrl.id, reader, from, to, cred, grant: result.grant, reason: result.reason, violations, area: result.area >= 0 ? site.areaIds[result.area]! : null });
      for (const v of violations) out.push({ kind: 'violation', at, controller: ctrl.id, reader, from, to, cred, code: v.code, mode: v.mode, area: v.area, grant: result.grant, late: false });
    } else if (result.op === 'offline') {
      for (const v of rec.violations!) {
        out.push({ kind: 'violation', at, controller: ctrl.id, reader, from, to, cred, code: v.code, mode: v.mode, area: v.area, grant: (op as { granted: boolean }).granted, late: true, ts: s.ts });
      }
    }
  }

  /** Records of refused messages: not on the reply path (they changed nothing), best effort, never throws. */
  private recordRejected(recs: EventRecord[]): void {
    try {
      this.store.append(recs, []).catch((e) => this.log.warn({ err: e }, 'could not record rejected messages'));
    } catch (e) { this.log.warn({ err: e }, 'could not record rejected messages'); }
  }

  /** Stream/webhook delivery runs outside any request: a failure there is logged, never fatal. */
  private emit(ev: HubEvent): void {
    try { this.sink.emit(ev); } catch (e) { this.log.error({ err: e }, 'delivering a stream event failed'); }
  }

  /** store.append, turned into a boolean; a failure starts recovery. */
  private commit(events: EventRecord[], idem: IdemRecord[]): Promise<boolean> {
    let appended: Promise<void>;
    try { appended = this.store.append(events, idem); } catch (e) { appended = Promise.reject(e); } // a store that throws at once failed too
    this.inflightCommits++;
    return appended.then(this.committed, this.notCommitted);
  }

  /**
   * A commit failed (or, `internal`, something between engine.apply and the commit): memory may be
   * ahead of the journal. Stop deciding, rebuild the engine from the store, retry until it works.
   */
  fail(e: unknown, why: 'storage' | 'internal' = 'storage'): void {
    if (why === 'storage') this.metrics.storageErrors++;
    const what = why === 'storage' ? 'storage commit failed' : 'internal error after a decision';
    if (this.ready) this.log.error({ err: e }, `${what}: not ready until the engine is rebuilt from the store`);
    this.ready = false;
    this.reason = `${what}: ${clipText((e as Error)?.message ?? String(e), MAX_REJECTED_TEXT_BYTES)}`;
    this.scheduleRecovery(0);
  }

  /** Storage reports healthy again: try to recover now instead of at the next retry. */
  retryNow(): void {
    if (this.ready || this.recovering) return;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    this.scheduleRecovery(0);
  }

  private scheduleRecovery(ms: number): void {
    if (this.recovering || this.retryTimer || this.draining) return;
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; void this.recover(); }, ms);
    this.retryTimer.unref?.();
  }

  private async recover(): Promise<void> {
    if (this.recovering || this.draining) return;
    this.recovering = true;
    try {
      // let every commit that was in flight settle first: they all fail or succeed against the old state
      await this.whenIdle();
      await this.store.saveConfig(this.configText); // a write probe: storage accepts writes again
      const engine = await this.opts.rebuild(this.configText);
      this.engine = engine;
      this.marks.clear(); // read again from the store (what failed is not in it)
      this.site = engine.site;
      this.refreshControllers();
      this.opts.onSite?.(engine.site, null);
      this.ready = true;
      this.reason = '';
      this.log.info('storage available again: engine rebuilt from the store, ready');
      this.sink.changed();
    } catch (e) {
      this.log.warn({ err: e }, 'recovery attempt failed; retrying');
      this.recovering = false;
      this.scheduleRecovery(this.opts.retryMs ?? 1000);
      return;
    }
    this.recovering = false;
  }

  // ── operator actions (HTTP) ──

  /** Applies one operator action (SPEC 6), journals it with who/why, resolves after the commit. */
  async action(who: string, why: string, name: ActionName, arg: { cred?: Cred; area?: number; on?: boolean }): Promise<{ changed: number; at: number }> {
    this.requireReady();
    let op: CoreOp;
    switch (name) {
      case 'forgive': op = { op: 'forgive', cred: arg.cred! }; break;
      case 'reset': op = { op: 'reset', cred: arg.cred! }; break;
      case 'exempt': op = { op: 'exempt', cred: arg.cred!, on: arg.on ?? true }; break;
      case 'setLocation': op = { op: 'setLocation', cred: arg.cred!, area: arg.area! }; break;
      case 'resetArea': op = { op: 'resetArea', area: arg.area! }; break;
      case 'supervisor': op = { op: 'supervisor', cred: arg.cred!, on: arg.on ?? true }; break;
      case 'lockdown': op = { op: 'lockdown', area: lockableArea(arg.area!), on: arg.on ?? true }; break;
    }
    const site = this.site;
    const t0 = performance.now();
    let at: number, changed: number, rec: EventRecord;
    try {
      const [result] = this.engine.apply([op], Date.now());
      this.metrics.engineSeconds += (performance.now() - t0) / 1000;
      at = this.engine.clock;
      changed = (result as { changed?: number }).changed ?? 0;
      rec = { at, kind: 'action', controller: `http:${who}`, who, why, action: name, applied: changed > 0, op: toReplayObject(op, site, at) };
      if (arg.cred) rec.cred = credToText(arg.cred);
      if (arg.area !== undefined) rec.area = site.areaIds[arg.area]!;
      if (arg.on !== undefined || TOGGLES.has(name)) rec.on = arg.on ?? true;
    } catch (e) {
      // as in run(): the engine may be ahead of the journal, so it is rebuilt from the store
      this.log.error({ err: e }, 'operator action failed after engine.apply');
      this.fail(e, 'internal');
      throw new ApbError('internal', 'internal error while applying the action; nothing was kept, the engine is rebuilt from the journal');
    }
    const ok = await this.commit([rec], []);
    if (!ok) throw new ApbError('storage_unavailable', 'the action could not be persisted; nothing was changed');
    const ev: HubEvent = { kind: 'action', at, who, why, action: name, changed };
    if (rec.cred) ev.cred = rec.cred;
    if (rec.area) ev.area = rec.area;
    if (TOGGLES.has(name)) ev.on = rec.on;
    setImmediate(() => this.emit(ev));
    this.sink.changed();
    return { changed, at };
  }

  // ── configuration swap ──

  /** Validates `text`, swaps it in atomically, journals it; invalid_config (nothing changed) on a bad file. */
  async reconfigure(text: string, who: string): Promise<ReloadReport> {
    const loaded = await loadSiteTextAsync(text); // throws invalid_config with every error; a large site is parsed off the main thread
    this.requireReady();
    const previous = this.configText;
    const report = this.engine.reconfigure(loaded.site);
    this.site = this.engine.site;
    this.configText = text;
    this.refreshControllers();
    this.opts.onSite?.(this.site, report);
    const rec: EventRecord = { at: Math.max(Date.now(), this.engine.clock), kind: 'config', who, op: { t: 'config', text } };
    const ok = await this.commit([rec], []);
    if (ok) {
      try { await this.store.saveConfig(text); } catch (e) { this.log.warn({ err: e }, 'saveConfig failed after the config event was journaled'); }
    }
    if (!ok) {
      this.configText = previous;
      throw new ApbError('storage_unavailable', 'the new configuration could not be persisted; the previous one will be restored');
    }
    this.log.info({ who, report }, 'configuration reloaded');
    setImmediate(() => this.emit({ kind: 'action', at: rec.at, who, why: 'configuration reload', action: 'config', changed: 1 }));
    this.sink.changed();
    return report;
  }

  requireReady(): void {
    if (this.draining) throw new ApbError('not_ready', 'the server is shutting down');
    if (!this.ready) throw new ApbError('storage_unavailable', `storage is unavailable (${this.reason})`);
  }

  /** Stops deciding (new messages get not_ready) and waits for every in-flight commit. */
  async drain(): Promise<void> {
    this.draining = true;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    await this.whenIdle();
  }
}
