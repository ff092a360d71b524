/**
 * The WebAssembly engine core (assembly/, built to build/apb.wasm) behind the
 * EngineCore contract. Hosted the way undici hosts llhttp: one compiled
 * module per process, one instance per core, one reused input region the
 * host writes whole batches into, and typed-array views over linear memory
 * rebuilt only when memory.buffer changes (memory grew).
 *
 * Batch ABI (assembly/batch.ts has the byte layout): apply() writes up to
 * batchCap() ops into the input region, calls applyBatch(n, now) once, and
 * reads grant/reason/area/violations out of the output and violation regions.
 * applyBatch may stop early (violation region full); the host calls again.
 */
import { readFileSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Cred } from './cred.js';
import { MAX_BIN_BYTES, MAX_STR_BYTES, MAX_U64, credToText } from './cred.js';
import type { CompiledSite } from '../config/types.js';
import type { CoreOp, CoreResult, CredState, EngineCore, InsidePage, InsideRow, Seen, SliceOptions, Violation } from './types.js';
import { MAX_TIME, REASONS, VIOLATION_CODES } from './types.js';
import { movePath } from '../config/tree.js';
import { ApbError } from '../errors.js';

/** The ABI this host speaks; assembly/index.ts ABI_VERSION must equal it. */
export const HOST_ABI_VERSION = 2;
/**
 * The snapshot format version in a snapshot's head: the core's layout
 * (assembly/snapshot.ts header field 14). Version 3 is the 64-byte buckets;
 * 1 (the ABI 1 host's snapshots, 14-field header, before SPEC 13) and 2 (the
 * ABI 2 host's, 24-byte records) are migrated by the core on restore. The
 * exported functions and batch slots did not change with the layout, so the
 * module ABI stays 2 while the snapshot version moved on; anything else is
 * refused naming both versions.
 */
export const SNAPSHOT_VERSION = 3;
const OLDEST_SNAPSHOT = 1;
const LEGACY_HDR_FIELDS = 14;

interface CoreExports {
  memory: WebAssembly.Memory;
  ABI_VERSION: WebAssembly.Global;
  init(capacity: number): void;
  siteBegin(areas: number, readers: number, moveListLen: number): number;
  siteStage(forgetAfterMs: number): void;
  siteInstallFirst(): void;
  reconfigure(areaMap: number, readerMap: number): void;
  scratch(n: number): number;
  inPtr(): number;
  outPtr(): number;
  violPtr(): number;
  factPtr(): number;
  batchCap(): number;
  statePtr(): number;
  applyBatch(n: number, now: number): number;
  advance(now: number): void;
  clockNow(): number;
  setScheduleActive(area: number, active: number): void;
  occupancy(area: number): number;
  supervisors(area: number): number;
  locked(area: number): number;
  size(): number;
  indexCapacity(): number;
  lookupState(): void;
  snapHeader(): number;
  snapHeaderBuf(): number;
  snapSegmentCount(): number;
  snapSegmentTable(): number;
  restoreBegin(): number;
  restoreEnd(): void;
  scanInside(area: number, from: number, max: number, out: number): void;
  /** absent from cores built before the grouped lookups (bench:core only) */
  lookupBatch?(n: number): number;
  calendarBytes?(): number;
  /** absent from cores built before the sliced muster scan (test/fixtures/core-layout2.wasm): credentialsInAsync is then one call */
  scanSlice?(area: number, from: number, max: number, out: number, budget: number): void;
}

const REQUIRED_FUNCTIONS = [
  'init', 'siteBegin', 'siteStage', 'siteInstallFirst', 'reconfigure', 'scratch', 'inPtr', 'outPtr', 'violPtr', 'factPtr',
  'batchCap', 'statePtr', 'applyBatch', 'advance', 'clockNow', 'setScheduleActive', 'occupancy', 'supervisors', 'locked', 'size',
  'indexCapacity', 'lookupState', 'snapHeader', 'snapHeaderBuf', 'snapSegmentCount', 'snapSegmentTable',
  'restoreBegin', 'restoreEnd', 'scanInside',
] as const;

// input/output slot layout (assembly/batch.ts)
const IN_STRIDE = 80;
const OUT_STRIDE = 48;
/** the result's violations when there are none: one shared, frozen array (no allocation per decision) */
const NO_VIOLATIONS = Object.freeze([]) as unknown as Violation[];
const HDR_FIELDS = 15; // assembly/snapshot.ts
const SNAP_MAGIC = 0x53425041; // "APBS" little-endian
const DESC_FIELDS = 18;  // assembly/site.ts
const MAX_INDEX = 0xFFFE; // area/reader indexes are 16 bits, 0xFFFF = none
const SCAN_ROW = 32;     // assembly/scan.ts
const SCAN_CHUNK = 4096; // rows per scanInside call (a 128 KiB scratch region at most)
/** credentialsInAsync: the work of one slice aimed at (ms), and its budget in scanSlice units (a bucket read is 1, ~7 ns at 10 M) */
export const SLICE_MS = 1;
const FIRST_RATE = 1 << 16, MIN_RATE = 1 << 10, MAX_RATE = 1 << 22; // units per ms: a cautious start (about half what a warm scan does at 10 M here), then measured
/** the next turn of the event loop, after pending I/O (decisions) */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

let defaultModule: WebAssembly.Module | undefined;

/** build/apb.wasm, compiled once per process */
function loadDefaultModule(): WebAssembly.Module {
  if (!defaultModule) {
    const path = fileURLToPath(new URL('../../apb.wasm', import.meta.url));
    let bytes: Buffer;
    try { bytes = readFileSync(path); } catch (e) {
      throw new ApbError('abi_mismatch', `cannot read the WebAssembly core ${path} (run "npm run asbuild"): ${(e as Error).message}`);
    }
    defaultModule = compile(bytes);
  }
  return defaultModule;
}

function compile(bytes: Uint8Array): WebAssembly.Module {
  try { return new WebAssembly.Module(bytes as unknown as BufferSource); } catch (e) {
    throw new ApbError('abi_mismatch', `the WebAssembly core does not compile: ${(e as Error).message}`);
  }
}

/** instantiates and checks the ABI version and exports; ApbError('abi_mismatch') otherwise */
function instantiate(mod: WebAssembly.Module): CoreExports {
  let inst: WebAssembly.Instance;
  try { inst = new WebAssembly.Instance(mod, {}); } catch (e) {
    throw new ApbError('abi_mismatch', `the WebAssembly core cannot be instantiated by this host: ${(e as Error).message}`);
  }
  const ex = inst.exports as Record<string, unknown>;
  const g = ex.ABI_VERSION;
  const version = g instanceof WebAssembly.Global ? Number(g.value) : undefined;
  if (version !== HOST_ABI_VERSION) {
    throw new ApbError('abi_mismatch', `the WebAssembly core has ABI version ${version ?? 'none'}, this host needs ${HOST_ABI_VERSION}; rebuild with "npm run asbuild"`);
  }
  if (!(ex.memory instanceof WebAssembly.Memory)) throw new ApbError('abi_mismatch', 'the WebAssembly core exports no memory');
  for (const f of REQUIRED_FUNCTIONS) {
    if (typeof ex[f] !== 'function') throw new ApbError('abi_mismatch', `the WebAssembly core lacks export ${f}`);
  }
  return ex as unknown as CoreExports;
}

/** Fills `into` from `fd` at `position` in 64 MiB steps; bad('truncated') if the file ends first. */
function readExactly(fd: number, into: Uint8Array, position: number, bad: (why: string) => never): Uint8Array {
  let off = 0;
  while (off < into.length) {
    let k: number;
    try { k = readSync(fd, into, off, Math.min(64 << 20, into.length - off), position + off); } catch (e) { return bad(`cannot be read (${(e as Error).message})`); }
    if (k === 0) bad('truncated');
    off += k;
  }
  return into;
}

function trap(e: unknown): never {
  if (e instanceof ApbError) throw e;
  throw new ApbError('internal', `WebAssembly core: ${(e as Error)?.message ?? String(e)}`);
}

export interface WasmCoreOptions {
  /** credentials expected: pre-sizes the index so it does not grow while loading */
  capacity?: number;
  /** another build of the core (tests, ABI checks); default build/apb.wasm */
  wasm?: Uint8Array;
}

export function createWasmCore(site: CompiledSite, opts: WasmCoreOptions = {}): WasmCore {
  return new WasmCore(site, opts);
}

/** Views over the batch regions (wireViews): byte offsets into u8 (i32/u32 index = offset >> 2). */
export interface WireViews { u8: Uint8Array; i32: Int32Array; u32: Uint32Array; f64: Float64Array; inBase: number; outBase: number; violBase: number; factBase: number; cap: number }
export const WIRE_IN_STRIDE = IN_STRIDE;
export const WIRE_OUT_STRIDE = OUT_STRIDE;

export class WasmCore implements EngineCore {
  readonly kind = 'wasm' as const;
  private readonly mod: WebAssembly.Module;
  private ex!: CoreExports;
  private site: CompiledSite;
  private buf!: ArrayBuffer;
  private u8!: Uint8Array;
  private i32!: Int32Array;
  private u32!: Uint32Array;
  private f64!: Float64Array;
  private u64!: BigUint64Array;
  private inBase = 0;
  private outBase = 0;
  private violBase = 0;
  private factBase = 0;
  private cap = 0;

  constructor(site: CompiledSite, opts: WasmCoreOptions = {}) {
    this.mod = opts.wasm ? compile(opts.wasm) : loadDefaultModule();
    this.site = site;
    this.attach(this.fresh(site, opts.capacity ?? 0));
  }

  /** a new instance with `site` installed and no credentials */
  private fresh(site: CompiledSite, capacity: number): CoreExports {
    const ex = instantiate(this.mod);
    try {
      ex.init(Math.max(0, Math.min(capacity | 0, 0x7fffffff)));
      writeSite(ex, site);
      ex.siteInstallFirst();
    } catch (e) { trap(e); }
    return ex;
  }

  private attach(ex: CoreExports): void {
    this.ex = ex;
    this.inBase = ex.inPtr();
    this.outBase = ex.outPtr();
    this.violBase = ex.violPtr();
    this.factBase = ex.factPtr();
    this.cap = ex.batchCap();
    this.refresh();
  }

  /**
   * Rebuilds the views when memory grew. Hot paths test `this.u8.length === 0`
   * first: growing linear memory detaches the old buffer, which empties every
   * view over it (cheaper than reading memory.buffer each call).
   */
  private refresh(): void {
    const b = this.ex.memory.buffer;
    if (b === this.buf) return;
    this.buf = b;
    this.u8 = new Uint8Array(b);
    this.i32 = new Int32Array(b);
    this.u32 = new Uint32Array(b);
    this.f64 = new Float64Array(b);
    this.u64 = new BigUint64Array(b);
  }

  // ---------- EngineCore ----------

  advance(now: number): void {
    checkTime(now, 'now');
    this.ex.advance(now);
  }

  setScheduleActive(area: number, active: boolean): void {
    if (Number.isInteger(area)) this.ex.setScheduleActive(area, active ? 1 : 0);
  }

  apply(ops: CoreOp[], now: number): CoreResult[] {
    checkTime(now, 'now');
    const n = ops.length;
    const out: CoreResult[] = new Array(n);
    if (n === 0) { this.ex.advance(now); return out; }
    try {
      let i = 0;
      while (i < n) {
        if (this.u8.length === 0) this.refresh();
        const k = Math.min(this.cap, n - i);
        let s = this.inBase;
        for (let j = 0; j < k; j++, s += IN_STRIDE) this.encode(s, ops[i + j]!);
        const done = this.ex.applyBatch(k, now);
        if (this.u8.length === 0) this.refresh(); // new records may have grown memory
        let o = this.outBase;
        for (let j = 0; j < done; j++, o += OUT_STRIDE) out[i + j] = this.decode(o, ops[i + j]!.op);
        i += done;
      }
    } catch (e) { trap(e); }
    return out;
  }

  occupancy(area: number): number {
    return Number.isInteger(area) ? this.ex.occupancy(area) : 0;
  }

  supervisors(area: number): number {
    return Number.isInteger(area) ? this.ex.supervisors(area) : 0;
  }

  locked(area: number): boolean {
    return Number.isInteger(area) && this.ex.locked(area) === 1;
  }

  state(cred: Cred): CredState {
    this.refresh();
    this.writeKey(this.inBase, cred);
    this.ex.lookupState();
    this.refresh();
    const s = this.f64, p = this.ex.statePtr() >> 3;
    const flags = s[p + 5]!;
    const pr = s[p + 6]!;
    return {
      stored: s[p] === 1,
      location: s[p + 1]!,
      lastMoveAt: s[p + 2]!,
      lastReader: s[p + 3]!,
      lastReaderAt: s[p + 4]!,
      freePass: (flags & 1) !== 0,
      exempt: (flags & 2) !== 0,
      supervisor: (flags & 4) !== 0,
      pending: pr >= 0 ? { reader: pr, to: s[p + 7]!, deadline: s[p + 8]! } : null,
    };
  }

  size(): number { return this.ex.size(); }

  /** assembly/scan.ts scanInside: the whole page in one go (credentialsInSlices with no budget never yields) */
  credentialsIn(area: number, from: number, max: number): InsidePage {
    const g = this.credentialsInSlices(area, from, max, () => 0);
    for (;;) { const r = g.next(); if (r.done) return r.value; }
  }

  /**
   * The same page in slices of bounded work (assembly/scan.ts scanSlice, SCAN_CHUNK rows per call,
   * decoded from the scratch region: layout there): yields after every slice that spent its budget
   * (`budget()` units, 0 = no limit) with the rows decoded so far, and the caller may apply batches before going on. Every
   * credential the area counted throughout is listed once, none the area does not count when its
   * slice ends; one that moved meanwhile may or may not be (the muster list's paging rule).
   */
  *credentialsInSlices(area: number, from: number, max: number, budget: () => number): Generator<number, InsidePage, void> {
    const rows: InsideRow[] = [];
    if (!Number.isInteger(area) || !Number.isInteger(from) || from < 0 || !(max >= 1)) return { rows, next: null };
    let rec = Math.min(from, 0xFFFFFFFF);
    for (;;) {
      const want = Math.min(SCAN_CHUNK, max - rows.length);
      const out = this.ex.scratch(16 + want * SCAN_ROW);
      const units = budget();
      if (units > 0 && this.ex.scanSlice) this.ex.scanSlice(area, rec, want, out, units);
      else this.ex.scanInside(area, rec, want, out);
      this.refresh();
      const u8 = this.u8, u32 = this.u32, dv = new DataView(this.buf);
      const k = u32[out >> 2]!;
      rec = u32[(out >> 2) + 1]!;
      const end = u32[(out >> 2) + 2]!;
      const more = u32[(out >> 2) + 3] === 1;
      for (let i = 0, r = out + 16; i < k; i++, r += SCAN_ROW) {
        const kind = u8[r + 6]!;
        let cred: Cred;
        if (kind === 0) cred = { kind: 'int', value: dv.getBigUint64(r + 8, true) };
        else {
          const at = dv.getUint32(r + 8, true), len = u8[at]!;
          const bytes = u8.slice(at + 1, at + 1 + len);
          cred = kind === 1 ? { kind: 'str', value: new TextDecoder().decode(bytes), bytes } : { kind: 'bin', value: bytes };
        }
        rows.push({ rec: u32[r >> 2]!, cred: credToText(cred), location: dv.getUint16(r + 4, true), lastMoveAt: dv.getFloat64(r + 16, true), lastReader: dv.getInt32(r + 24, true) });
      }
      if (!more && rec >= end) return { rows, next: null };
      if (rows.length >= max) return { rows, next: rec };
      if (more) yield rows.length;
    }
  }

  /** scanSlice units per millisecond, as the slices measured so far went (down at once, up at most x2 a slice) */
  private sliceRate = FIRST_RATE;

  /**
   * credentialsIn without holding the event loop: slices of about `sliceMs` (default SLICE_MS) with
   * a turn of the event loop between them (setImmediate: pending I/O, i.e. decisions, runs first).
   * The budget of a slice follows the measured time of the slices before it. Calls run one at a
   * time per core, in order: two scans under way at once would restart each other's.
   * `aborted()` true between slices: stops with ApbError not_ready (nobody is waiting for the answer).
   */
  credentialsInAsync(area: number, from: number, max: number, o: SliceOptions = {}): Promise<InsidePage> {
    if (!this.ex.scanSlice) return Promise.resolve(this.credentialsIn(area, from, max));
    // one at a time: a scan for another area or `from` abandons the one under way (assembly/scan.ts)
    const run = this.scanning.then(() => this.sliced(area, from, max, o));
    this.scanning = run.catch(() => undefined);
    return run;
  }

  private scanning: Promise<unknown> = Promise.resolve();

  private async sliced(area: number, from: number, max: number, o: SliceOptions): Promise<InsidePage> {
    const target = o.sliceMs ?? SLICE_MS;
    let units = 0;
    const g = this.credentialsInSlices(area, from, max, () => (units = Math.max(1, Math.round(this.sliceRate * target))));
    for (;;) {
      const t = performance.now();
      const r = g.next();
      const ms = performance.now() - t;
      // a slice that spent its budget measures the rate; a last, shorter one only corrects an overrun
      if (!r.done || ms > target) {
        const rate = units / Math.max(ms, 0.001);
        this.sliceRate = Math.min(MAX_RATE, Math.max(MIN_RATE, rate < this.sliceRate ? rate : Math.min(rate, 2 * this.sliceRate)));
      }
      if (r.done) return r.value;
      await nextTurn();
      if (o.aborted?.()) throw new ApbError('not_ready', 'muster list: the request was aborted');
    }
  }

  /** bytes of linear memory the core holds (all of it is this core's state) */
  memoryBytes(): number { return this.ex.memory.buffer.byteLength; }
  /** bytes the core's expiry calendar holds (its map and heap as allocated), NaN for a core without the export */
  calendarBytes(): number { return this.ex.calendarBytes ? this.ex.calendarBytes() : NaN; }
  /** credential slots of the table now (2 per 64-byte bucket; grows past 7/8 full) */
  indexCapacity(): number { return this.ex.indexCapacity(); }

  /**
   * Snapshot bytes (little-endian):
   *   u32 magic "APBS" | u32 ABI version | u32 header fields H | u32 segments S
   *   | i64 × H header (assembly/snapshot.ts) | u32 × S segment lengths | segment bytes ...
   */
  snapshot(headroom = 0, into?: Uint8Array): Uint8Array {
    const h = headroom > 0 ? Math.floor(headroom) : 0;
    const ex = this.ex;
    const hdr = ex.snapHeader();
    const n = ex.snapSegmentCount();
    const tab = ex.snapSegmentTable() >> 2;
    this.refresh();
    const u32 = this.u32;
    let total = 16 + HDR_FIELDS * 8 + n * 4;
    for (let i = 0; i < n; i++) total += u32[tab + 2 * i + 1]!;
    // one buffer, written once: on this kind of VM first-touching pages
    // costs far more than copying into them, so no intermediate copies, and
    // a spare one (an evicted snapshot) is written over when it is large enough
    // (too small: a new one with 1/16 to spare, so that the next image of a slightly larger engine fits)
    const need = h + total;
    const reuse = into !== undefined && into.length >= need;
    const out = reuse ? into.subarray(0, need) : into !== undefined ? new Uint8Array(need + (need >>> 4)).subarray(0, need) : new Uint8Array(need);
    if (reuse) out.fill(0, 0, h);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    dv.setUint32(h, SNAP_MAGIC, true);
    // the layout the core wrote (header field 14): a core of an older layout (tests, benches) writes its own version
    dv.setUint32(h + 4, Number(new DataView(this.u8.buffer).getBigInt64(hdr + 14 * 8, true)), true);
    dv.setUint32(h + 8, HDR_FIELDS, true);
    dv.setUint32(h + 12, n, true);
    out.set(this.u8.subarray(hdr, hdr + HDR_FIELDS * 8), h + 16);
    let at = h + 16 + HDR_FIELDS * 8;
    for (let i = 0; i < n; i++) { dv.setUint32(at, u32[tab + 2 * i + 1]!, true); at += 4; }
    for (let i = 0; i < n; i++) {
      const p = u32[tab + 2 * i]!, len = u32[tab + 2 * i + 1]!;
      out.set(this.u8.subarray(p, p + len), at);
      at += len;
    }
    return out;
  }

  restore(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array) || bytes.length < 16) badSnap('too short');
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const { n, fields } = checkSnapHead(dv);
    const bad = badSnap;
    const segAt = 16 + fields * 8;
    if (bytes.length < segAt + n * 4) bad('truncated');
    const ex = this.fresh(this.site, 0); // the index comes with the snapshot
    let u8 = new Uint8Array(ex.memory.buffer);
    u8.set(bytes.subarray(16, segAt), ex.snapHeaderBuf());
    if (fields === LEGACY_HDR_FIELDS) markLegacy(ex);
    else checkLayout(ex, dv.getUint32(4, true));
    let rc: number;
    try { rc = ex.restoreBegin(); } catch (e) { trap(e); }
    if (rc !== 0) bad(RESTORE_ERRORS[rc] ?? `code ${rc}`);
    const count = ex.snapSegmentCount();
    const tab = ex.snapSegmentTable();
    if (count !== n) bad(`has ${n} segments, expected ${count}`);
    u8 = new Uint8Array(ex.memory.buffer);
    const u32 = new Uint32Array(ex.memory.buffer);
    let at = segAt + n * 4;
    for (let i = 0; i < n; i++) {
      const p = u32[(tab >> 2) + 2 * i]!, len = u32[(tab >> 2) + 2 * i + 1]!;
      if (dv.getUint32(segAt + 4 * i, true) !== len) bad(`segment ${i} has the wrong length`);
      if (at + len > bytes.length) bad('truncated');
      u8.set(bytes.subarray(at, at + len), p);
      at += len;
    }
    if (at !== bytes.length) bad('trailing bytes');
    try { ex.restoreEnd(); } catch (e) { trap(e); }
    this.buf = undefined as unknown as ArrayBuffer;
    this.attach(ex);
  }

  /**
   * restore() straight from a file: bytes [position, position + length) of `fd`
   * hold what restore() takes. The small header is read first; then each
   * segment is read directly into the new instance's linear memory (no
   * intermediate buffer: first-touching fresh pages is the dominant cost of a
   * large restore). Same validation and errors as restore(); the core is
   * unchanged when it throws.
   */
  restoreFromFile(fd: number, position: number, length: number): void {
    const bad = badSnap;
    if (length < 16) bad('too short');
    const head = readExactly(fd, new Uint8Array(16), position, bad);
    const { n, fields } = checkSnapHead(new DataView(head.buffer));
    const segAt = 16 + fields * 8;
    if (length < segAt + n * 4) bad('truncated');
    // header fields + segment length table: one small read
    const meta = readExactly(fd, new Uint8Array(segAt - 16 + n * 4), position + 16, bad);
    const mv = new DataView(meta.buffer);
    const ex = this.fresh(this.site, 0); // the index comes with the snapshot
    new Uint8Array(ex.memory.buffer).set(meta.subarray(0, fields * 8), ex.snapHeaderBuf());
    if (fields === LEGACY_HDR_FIELDS) markLegacy(ex);
    else checkLayout(ex, new DataView(head.buffer).getUint32(4, true));
    let rc: number;
    try { rc = ex.restoreBegin(); } catch (e) { trap(e); }  // grows memory once, for every segment
    if (rc !== 0) bad(RESTORE_ERRORS[rc] ?? `code ${rc}`);
    const count = ex.snapSegmentCount();
    const tab = ex.snapSegmentTable();
    if (count !== n) bad(`has ${n} segments, expected ${count}`);
    const u32 = new Uint32Array(ex.memory.buffer);
    // check every length before reading anything (same checks, same order as restore())
    let at = segAt + n * 4;
    for (let i = 0; i < n; i++) {
      const len = u32[(tab >> 2) + 2 * i + 1]!;
      if (mv.getUint32(fields * 8 + 4 * i, true) !== len) bad(`segment ${i} has the wrong length`);
      if (at + len > length) bad('truncated');
      at += len;
    }
    if (at !== length) bad('trailing bytes');
    const mem = ex.memory.buffer;
    at = segAt + n * 4;
    for (let i = 0; i < n; i++) {
      const p = u32[(tab >> 2) + 2 * i]!, len = u32[(tab >> 2) + 2 * i + 1]!;
      readExactly(fd, new Uint8Array(mem, p, len), position + at, bad);
      at += len;
    }
    try { ex.restoreEnd(); } catch (e) { trap(e); }
    this.buf = undefined as unknown as ArrayBuffer;
    this.attach(ex);
  }

  reconfigure(site: CompiledSite, areaMap: Int32Array, readerMap: Int32Array): void {
    const oldA = this.site.areaIds.length, oldR = this.site.readerIds.length;
    const newA = site.areaIds.length, newR = site.readerIds.length;
    if (areaMap.length !== oldA || readerMap.length !== oldR) {
      throw new ApbError('internal', `reconfigure: maps have ${areaMap.length}/${readerMap.length} entries, the site has ${oldA} areas/${oldR} readers`);
    }
    for (const m of areaMap) if (!(Number.isInteger(m) && m >= -1 && m < newA)) throw new ApbError('internal', `reconfigure: area map entry ${m} out of range`);
    for (const m of readerMap) if (!(Number.isInteger(m) && m >= -1 && m < newR)) throw new ApbError('internal', `reconfigure: reader map entry ${m} out of range`);
    const ex = this.ex;
    try {
      writeSite(ex, site);
      const p = ex.scratch((oldA + oldR) * 4 + 8);
      this.refresh();
      this.i32.set(areaMap, p >> 2);
      this.i32.set(readerMap, (p >> 2) + oldA);
      ex.reconfigure(p, p + oldA * 4);
    } catch (e) { trap(e); }
    this.site = site;
    this.violBase = ex.violPtr(); // a deeper tree may have needed a larger violation region
    this.factBase = ex.factPtr();
    this.refresh();
  }

  // ---------- fast path ----------

  /**
   * Bulk integer badges through the batch ABI without result objects
   * (benchmarks, load tools): credential i is hi[i] * 2^32 + lo[i], at
   * readers[i]; grants[i] becomes 1 or 0. Returns how many were granted.
   */
  badgeInts(lo: Uint32Array, hi: Uint32Array, readers: Int32Array, now: number, grants: Uint8Array): number {
    checkTime(now, 'now');
    const total = lo.length;
    let granted = 0;
    let i = 0;
    while (i < total) {
      if (this.u8.length === 0) this.refresh();
      const k = Math.min(this.cap, total - i);
      this.fillInts(lo, hi, readers, i, k);
      const done = this.ex.applyBatch(k, now);
      if (this.u8.length === 0) this.refresh();
      const o8 = this.u8;
      let o = this.outBase;
      for (let j = 0; j < done; j++, o += OUT_STRIDE) { const g = o8[o]!; grants[i + j] = g; granted += g; }
      i += done;
    }
    return granted;
  }

  /**
   * The lookups of badgeInts alone (bench:core): how many of the integer
   * credentials hi[i] * 2^32 + lo[i] are stored. Decides nothing and changes
   * nothing. Throws abi_mismatch on a core built without lookupBatch.
   */
  lookupInts(lo: Uint32Array, hi: Uint32Array): number {
    const look = this.ex.lookupBatch;
    if (!look) throw new ApbError('abi_mismatch', 'this WebAssembly core has no lookupBatch export');
    let hits = 0;
    for (let i = 0; i < lo.length; i += this.cap) {
      if (this.u8.length === 0) this.refresh();
      const k = Math.min(this.cap, lo.length - i);
      this.fillInts(lo, hi, undefined, i, k);
      hits += look(k);
    }
    return hits;
  }

  /** input slots 0..k-1 := integer badges lo/hi[i..i+k-1] at readers[i..] (reader 0 without them) */
  private fillInts(lo: Uint32Array, hi: Uint32Array, readers: Int32Array | undefined, i: number, k: number): void {
    const u8 = this.u8, u32 = this.u32, i32 = this.i32;
    let s = this.inBase;
    for (let j = 0; j < k; j++, s += IN_STRIDE) {
      u8[s] = 0; u8[s + 1] = 0;
      i32[(s + 4) >> 2] = readers ? readers[i + j]! : 0;
      u32[(s + 16) >> 2] = lo[i + j]!;
      u32[(s + 20) >> 2] = hi[i + j]!;
    }
  }

  // ---------- wire fast path (src/server/hub.ts) ----------

  /**
   * The batch ABI's regions for a host that fills input slots itself and
   * reads output slots and violation words straight from linear memory
   * (the hub's allocation-free path for native badge/passage frames). The
   * views are current when returned; decideWire() may grow memory, so read
   * `wireViews()` again after it. Layout: assembly/batch.ts.
   */
  wireViews(): WireViews {
    if (this.u8.length === 0) this.refresh();
    const v = this.views;
    v.u8 = this.u8; v.i32 = this.i32; v.u32 = this.u32; v.f64 = this.f64;
    v.inBase = this.inBase; v.outBase = this.outBase; v.violBase = this.violBase; v.factBase = this.factBase; v.cap = this.cap;
    return v;
  }

  /**
   * Input slot 0 kept aside: the driver's tick() runs periodic resets through
   * apply(), which writes slot 0, between the caller filling the slots and
   * decideWire (Driver.decideWire saves and restores it around such a tick).
   */
  private readonly slot0 = new Uint8Array(IN_STRIDE);
  saveSlot0(): void { if (this.u8.length === 0) this.refresh(); this.slot0.set(this.u8.subarray(this.inBase, this.inBase + IN_STRIDE)); }
  restoreSlot0(): void { if (this.u8.length === 0) this.refresh(); this.u8.set(this.slot0, this.inBase); }

  private readonly views: WireViews = { u8: new Uint8Array(0), i32: new Int32Array(0), u32: new Uint32Array(0), f64: new Float64Array(0), inBase: 0, outBase: 0, violBase: 0, factBase: 0, cap: 0 };

  /**
   * Decides the first n (<= cap) input slots as filled by the caller, at
   * clock `now` (one applyBatch call): returns how many were done (fewer
   * when the violation region filled up; the caller moves the rest to the
   * front and calls again after reading these results). Same checks and
   * traps as apply().
   */
  decideWire(n: number, now: number): number {
    checkTime(now, 'now');
    if (!(Number.isInteger(n) && n >= 1 && n <= this.cap)) throw new ApbError('internal', `decideWire: ${n} slots (1..${this.cap})`);
    let done: number;
    try { done = this.ex.applyBatch(n, now); } catch (e) { trap(e); }
    if (this.u8.length === 0) this.refresh(); // new records may have grown memory
    return done;
  }

  // ---------- encoding ----------

  private writeKey(s: number, cred: Cred): void {
    const u8 = this.u8;
    switch (cred.kind) {
      case 'int':
        if (typeof cred.value !== 'bigint' || cred.value < 0n || cred.value > MAX_U64) throw new ApbError('bad_message', 'cred: integer out of range 0..2^64-1');
        u8[s + 1] = 0;
        this.u64[(s + 16) >> 3] = cred.value;
        return;
      case 'str': {
        const b = cred.bytes;
        if (!(b instanceof Uint8Array) || b.length < 1 || b.length > MAX_STR_BYTES) throw new ApbError('bad_message', `cred: string must be 1-${MAX_STR_BYTES} UTF-8 bytes`);
        u8[s + 1] = 1; u8[s + 2] = b.length; u8.set(b, s + 16);
        return;
      }
      case 'bin': {
        const b = cred.value;
        if (!(b instanceof Uint8Array) || b.length < 1 || b.length > MAX_BIN_BYTES) throw new ApbError('bad_message', `cred: binary must be 1-${MAX_BIN_BYTES} bytes`);
        u8[s + 1] = 2; u8[s + 2] = b.length; u8.set(b, s + 16);
        return;
      }
      default: throw new ApbError('bad_message', 'cred: unknown kind');
    }
  }

  /** writes `op` into the input slot at byte offset s */
  private encode(s: number, op: CoreOp): void {
    const u8 = this.u8;
    switch (op.op) {
      case 'badge':
        u8[s] = 0; this.writeKey(s, op.cred); this.i32[(s + 4) >> 2] = op.reader; return;
      case 'passage':
        u8[s] = 1; this.writeKey(s, op.cred); this.i32[(s + 4) >> 2] = op.reader; return;
      case 'offline':
        checkTime(op.ts, 'ts');
        u8[s] = 2; this.writeKey(s, op.cred); this.i32[(s + 4) >> 2] = op.reader;
        this.f64[(s + 8) >> 3] = op.ts; u8[s + 3] = op.granted ? 1 : 0; return;
      case 'forgive':
        u8[s] = 3; this.writeKey(s, op.cred); return;
      case 'reset':
        u8[s] = 4; this.writeKey(s, op.cred); return;
      case 'exempt':
        u8[s] = 5; this.writeKey(s, op.cred); u8[s + 3] = op.on ? 1 : 0; return;
      case 'setLocation':
        u8[s] = 6; this.writeKey(s, op.cred); this.i32[(s + 4) >> 2] = op.area; return;
      case 'resetArea':
        u8[s] = 7; u8[s + 1] = 0; this.u32[(s + 16) >> 2] = 0; this.u32[(s + 20) >> 2] = 0;
        this.i32[(s + 4) >> 2] = op.area; return;
      case 'supervisor':
        u8[s] = 8; this.writeKey(s, op.cred); u8[s + 3] = op.on ? 1 : 0; return;
      case 'lockdown':
        u8[s] = 9; u8[s + 1] = 0; this.u32[(s + 16) >> 2] = 0; this.u32[(s + 20) >> 2] = 0;
        this.i32[(s + 4) >> 2] = op.area; u8[s + 3] = op.on ? 1 : 0; return;
      default: throw new ApbError('internal', `wasm core: unknown op ${(op as { op: string }).op}`);
    }
  }

  /** the result in the output slot at byte offset o, for an op of kind `op` */
  private decode(o: number, op: CoreOp['op']): CoreResult {
    const u8 = this.u8;
    switch (op) {
      case 'badge':
        return {
          op: 'badge', grant: u8[o] === 1, reason: REASONS[u8[o + 1]!]!, violations: this.violations(o),
          area: this.i32[(o + 4) >> 2]!, pending: u8[o + 2] === 1, seen: seenAt(this.u32, this.f64, o),
        };
      case 'passage': return { op: 'passage', applied: u8[o] === 1 };
      case 'offline': return { op: 'offline', applied: u8[o] === 1, violations: this.violations(o), seen: seenAt(this.u32, this.f64, o) };
      default: return { op, changed: this.i32[(o + 4) >> 2]! };
    }
  }

  private violations(o: number): Violation[] {
    const n = this.u32[(o + 12) >> 2]!;
    if (n === 0) return NO_VIOLATIONS;
    const start = this.u32[(o + 8) >> 2]!;
    const out: Violation[] = new Array(n);
    const base = (this.violBase >> 2) + start;
    for (let i = 0; i < n; i++) {
      const w = this.u32[base + i]!;
      const area = w >>> 16;
      const v: Violation = { code: VIOLATION_CODES[w & 0xff]!, mode: ((w >>> 8) & 0xff) === 2 ? 'hard' : 'soft', area: area === 0xFFFF ? -1 : area };
      if (v.code === 'occupancy' || v.code === 'last_supervisor') v.count = this.u32[(this.factBase >> 2) + start + i]!;
      out[i] = v;
    }
    return out;
  }
}

/**
 * The `seen` state of the badge result in the output slot at byte offset o
 * (assembly/rules.ts seenInto: the record's move and reader words as the
 * decision found them, the pending move's deadline and target). Words are
 * read as u32 halves: bits 0-43 a time, 44-59 an index, 60-63 flags.
 */
export function seenAt(u32: Uint32Array, f64: Float64Array, o: number): Seen {
  const mlo = u32[(o + 16) >> 2]!, mhi = u32[(o + 20) >> 2]!;
  const rlo = u32[(o + 24) >> 2]!, rhi = u32[(o + 28) >> 2]!;
  const loc = (mhi >>> 12) & 0xffff, lr = (rhi >>> 12) & 0xffff;
  const pending = (rhi & (1 << 28)) !== 0;
  return {
    location: loc === 0xffff ? -1 : loc,
    lastMoveAt: (mhi & 0xfff) * 2 ** 32 + mlo,
    lastReader: lr === 0xffff ? -1 : lr,
    lastReaderAt: (rhi & 0xfff) * 2 ** 32 + rlo,
    freePass: (mhi & (1 << 30)) !== 0,
    exempt: (mhi & 0x80000000) !== 0,
    supervisor: (rhi & (1 << 30)) !== 0,
    pending: pending ? { reader: lr, to: u32[(o + 40) >> 2]!, deadline: f64[(o + 32) >> 3]! } : null,
  };
}

function badSnap(why: string): never {
  throw new ApbError('bad_message', `wasm core snapshot: ${why}`);
}

/** restoreBegin()'s non-zero return codes (assembly/snapshot.ts) */
const RESTORE_ERRORS = ['', 'bad magic', 'made for a site with other areas or readers', 'made for a site with other timeouts', 'corrupt header'];

/**
 * checks the 16-byte snapshot head (magic, ABI version, header size); returns the segment count and
 * the header's field count (a snapshot of ABI 1 has the 14 fields of layout 1, restored as such)
 */
function checkSnapHead(dv: DataView): { n: number; fields: number } {
  if (dv.getUint32(0, true) !== SNAP_MAGIC) badSnap('not a wasm core snapshot');
  const abi = dv.getUint32(4, true);
  if (!(abi >= OLDEST_SNAPSHOT && abi <= SNAPSHOT_VERSION)) {
    badSnap(`made by ABI version ${abi}, this core reads snapshot versions ${OLDEST_SNAPSHOT} to ${SNAPSHOT_VERSION}`);
  }
  const fields = abi === OLDEST_SNAPSHOT ? LEGACY_HDR_FIELDS : HDR_FIELDS;
  if (dv.getUint32(8, true) !== fields) badSnap('header size differs');
  return { n: dv.getUint32(12, true), fields };
}

/** a 15-field header's layout (field 14) must be the version its head names: the core reads the body by it */
function checkLayout(ex: CoreExports, version: number): void {
  const layout = new DataView(ex.memory.buffer).getBigInt64(ex.snapHeaderBuf() + 14 * 8, true);
  if (layout !== BigInt(version)) badSnap(`version ${version} in its head, layout ${layout} in its header`);
}

/** header field 14 (layout) = 1: the header just copied in came from an ABI 1 snapshot, which has no such field */
function markLegacy(ex: CoreExports): void {
  new DataView(ex.memory.buffer).setBigInt64(ex.snapHeaderBuf() + LEGACY_HDR_FIELDS * 8, 1n, true);
}

function checkTime(t: number, field: string): void {
  if (!(Number.isInteger(t) && t >= 0 && t <= MAX_TIME)) throw new ApbError('bad_message', `${field}: time must be an integer 0..2^44-1 ms`);
}

/** stages `site`'s dense tables in the instance (assembly/site.ts descriptor) */
function writeSite(ex: CoreExports, site: CompiledSite): void {
  const A = site.areaIds.length, R = site.readerIds.length;
  if (A < 1 || A > MAX_INDEX || R > MAX_INDEX) throw new ApbError('invalid_config', `the WebAssembly core holds at most ${MAX_INDEX} areas and readers`);
  const paths = site.readerIds.map((_, r) => movePath(site, site.readerFrom[r]!, site.readerTo[r]!));
  let L = 0;
  for (const p of paths) L += p.exited.length + p.entered.length;
  const desc = ex.siteBegin(A, R, L);
  const b = ex.memory.buffer;
  const d = new Uint32Array(b, desc, DESC_FIELDS);
  const i32 = (k: number, n: number): Int32Array => new Int32Array(b, d[k]!, n);
  const u32 = (k: number, n: number): Uint32Array => new Uint32Array(b, d[k]!, n);
  const u8 = (k: number, n: number): Uint8Array => new Uint8Array(b, d[k]!, n);
  const f64 = (k: number, n: number): Float64Array => new Float64Array(b, d[k]!, n);
  i32(0, A).set(site.parent);
  i32(1, A).set(site.depth);
  u8(2, A).set(site.entry);
  u8(3, A).set(site.exit);
  u8(4, A).set(site.strict);
  u8(17, A).set(site.supervision);
  f64(5, A).set(site.presenceTimeoutMs);
  f64(6, A).set(site.maxOccupancy);
  i32(7, R).set(site.readerFrom);
  i32(8, R).set(site.readerTo);
  f64(9, R).set(site.reuseLockoutMs);
  u8(10, R).set(site.reuseHard);
  f64(11, R).set(site.readerPassageMs);
  const exitAt = u32(12, R), exitLen = u32(13, R), entryAt = u32(14, R), entryLen = u32(15, R), mv = i32(16, L);
  let at = 0;
  paths.forEach((p, r) => {
    exitAt[r] = at; exitLen[r] = p.exited.length; mv.set(p.exited, at); at += p.exited.length;
    entryAt[r] = at; entryLen[r] = p.entered.length; mv.set(p.entered, at); at += p.entered.length;
  });
  for (const t of [...site.presenceTimeoutMs, ...site.reuseLockoutMs, ...site.readerPassageMs, site.forgetAfterMs]) {
    if (!(t >= 0 && t <= MAX_TIME)) throw new ApbError('invalid_config', `a duration of ${t} ms is out of range for the WebAssembly core`);
  }
  ex.siteStage(site.forgetAfterMs);
}
