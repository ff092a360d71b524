/**
 * The compact journal record of the hot path: native `badge` and `passage`
 * messages with an integer credential and id (both at most 2^53-1), a known
 * reader and no `ts`, decided in one frame of one controller. Written by the
 * hub straight from the core's output, stored as ONE binary value inside the
 * journal batch (field `k` of a log value), so a frame of 64 badges costs one
 * buffer, not 64 event objects, 64 replay ops and 64 reply copies.
 *
 * A group (msgpack map inside the log value):
 *   c  string     controller id (every record of the group is this controller's)
 *   r  string[]   reader ids the records name (record byte 25 indexes it)
 *   a  string[]   area ids the records name (255 = none)
 *   n  number     records in b
 *   v  number     2 for the layout with SPEC 13.3 explanations (absent: layout 1)
 *   b  binary     the records, back to back, little-endian:
 *
 *   offset  size  field
 *   ------  ----  ---------------------------------------------------------
 *        0  f64   at       engine clock the message was applied at (ms)
 *        8  f64   id       the controller's message id
 *       16  f64   cred     the integer credential
 *       24  u8    kind     0 badge, 1 passage
 *       25  u8    reader   index into r
 *       26  u8    flags    bit 0: granted (badge) / applied (passage)
 *       27  u8    reason   index into REASONS (badge; 0 for passage)
 *       28  u8    area     badge granted: index into a of the area entered; else 255
 *       29  u8    nv       violations that follow
 *       30  u16   0        reserved
 *       32  4×nv           per violation: u8 code (VIOLATION_CODES index),
 *                          u8 mode (0 hard, 1 soft), u8 area (index into a,
 *                          255 = none), u8 0
 *
 * Layout 2 (v: 2) adds what a decision saw and why (SPEC 13.3), for badges:
 *       26  u8    flags    bit 0 granted/applied; badge: bit 1 seen freePass,
 *                          bit 2 exempt, bit 3 supervisor, bit 4 a pending move
 *       30  u8    seen location (index into a, 255 = unknown)
 *       31  u8    seen lastReader (index into r, 255 = none)
 *       32  f64   seen lastMoveAt          (badge only)
 *       40  f64   seen lastReaderAt        (badge only)
 *       48  f64   pending deadline         (badge with bit 4 only)
 *       56  u8    pending to (index into a), 7 bytes 0
 *   then 16×nv per violation: u8 code, u8 mode, u8 area, u8 aux (sequence:
 *   the reader's `from`, index into a), u32 n (occupancy: count;
 *   last_supervisor: others), f64 x (reuse: lockout ms; occupancy: max).
 *
 * Every record takes one journal seq, in order. The reply a record was
 * answered with is not stored: it is re-encoded from the record
 * (src/engine/wire-reply.ts), byte for byte what was sent.
 */
import { REASONS, VIOLATION_CODES } from '../engine/types.js';
import type { EventRecord } from './types.js';
import { Slab } from './slab.js';
import type { SeenRecord, ViolationRecord } from '../engine/explain.js';

export const RECORD_BYTES = 32;
export const VIOLATION_BYTES = 4;
const SEEN_BYTES = 16, PENDING_BYTES = 16, VIOLATION2_BYTES = 16;
const F_SEEN_FREEPASS = 2, F_SEEN_EXEMPT = 4, F_SEEN_SUPERVISOR = 8, F_SEEN_PENDING = 16;
export const NONE = 255;
/** at most this many distinct readers or areas per group (one byte each) */
export const MAX_NAMES = 254;

export interface CompactGroup { c: string; r: string[]; a: string[]; n: number; b: Uint8Array; v?: number }

const NO_GROUPS: readonly CompactGroup[] = [];
/** The compact groups of a journal value's `k` (journal-batch.ts), as an array: none when absent. */
export function groupsOf(k: CompactGroup | readonly CompactGroup[] | undefined): readonly CompactGroup[] {
  return k === undefined ? NO_GROUPS : Array.isArray(k) ? k : [k as CompactGroup];
}

/**
 * What is wrong with a compact group handed to a store's appendCompact (undefined: nothing), checked
 * before anything of it is recorded: every record inside b, and b holding exactly its n records.
 */
export function groupProblem(g: CompactGroup): string | undefined {
  if (!g || typeof g !== 'object' || typeof g.c !== 'string' || !Array.isArray(g.r) || !Array.isArray(g.a) || !(g.b instanceof Uint8Array)) return 'a group needs c, r, a and b';
  if (!Number.isInteger(g.n) || g.n < 0) return 'n must be a record count';
  let off = 0;
  for (let k = 0; k < g.n; k++) {
    if (off + RECORD_BYTES > g.b.length) return `record ${k} is past the end of b`;
    off += recordLength(g, off);
  }
  if (off !== g.b.length) return `b holds ${g.b.length} bytes, its ${g.n} records ${off}`;
  return undefined;
}

/** One decoded record; `seq` is assigned by position. */
export interface CompactRecord {
  at: number; id: number; cred: number; kind: 0 | 1; reader: string; granted: boolean;
  reason: number; area: string | null;
  violations: ViolationRecord[];
  /** layout 2 badges */
  seen?: SeenRecord;
}

const f64Bytes = new Uint8Array(8), f64View = new Float64Array(f64Bytes.buffer);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * The little-endian f64 at `off` of a group's bytes (a record's at, id or cred), read through an
 * 8-byte scratch. Readers of one field per record used a DataView per group, and a group is one
 * record at one message per frame: the DataView cost more than the rest of the group's work in
 * the index worker, and was an allocation per frame in the stores' appendCompact.
 */
export function f64At(b: Uint8Array, off: number): number {
  if (!LITTLE_ENDIAN) return new DataView(b.buffer, b.byteOffset, b.byteLength).getFloat64(off, true);
  const s = f64Bytes;
  s[0] = b[off]!; s[1] = b[off + 1]!; s[2] = b[off + 2]!; s[3] = b[off + 3]!;
  s[4] = b[off + 4]!; s[5] = b[off + 5]!; s[6] = b[off + 6]!; s[7] = b[off + 7]!;
  return f64View[0]!;
}

/** Length in bytes of the record at `off` of group g (its layout from g.v). */
export function recordLength(g: CompactGroup, off: number): number {
  const b = g.b;
  if (g.v !== 2) return RECORD_BYTES + VIOLATION_BYTES * b[off + 29]!;
  let n = RECORD_BYTES + VIOLATION2_BYTES * b[off + 29]!;
  if (b[off + 24] === 0) n += SEEN_BYTES + ((b[off + 26]! & F_SEEN_PENDING) !== 0 ? PENDING_BYTES : 0);
  return n;
}

/** the record of a violation of a layout-2 record, with its facts (explain.ts violationRecord, field for field) */
function violation2(g: CompactGroup, dv: DataView, p: number, seen: SeenRecord, reader: string, at: number): ViolationRecord {
  const b = g.b;
  const code = VIOLATION_CODES[b[p]!]!;
  const out: ViolationRecord = { code, mode: b[p + 1] === 1 ? 'soft' : 'hard', area: b[p + 2] === NONE ? null : g.a[b[p + 2]!]! };
  switch (code) {
    case 'reuse': out.reader = reader; out.lockout = dv.getFloat64(p + 8, true); out.sinceMs = at - seen.lastReaderAt; break;
    case 'exit_not_entered': case 'reentry': out.location = seen.location; break;
    case 'sequence': out.from = b[p + 3] === NONE ? null : g.a[b[p + 3]!]!; out.location = seen.location; break;
    case 'occupancy': out.count = dv.getUint32(p + 4, true); out.max = dv.getFloat64(p + 8, true); break;
    case 'last_supervisor': out.others = dv.getUint32(p + 4, true); break;
    default: break;
  }
  return out;
}

/** Decodes every record of a group (recovery, export, queries: never the hot path). */
export function* compactRecords(g: CompactGroup): Generator<CompactRecord> {
  const b = g.b;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const v2 = g.v === 2;
  let off = 0;
  for (let i = 0; i < g.n; i++) {
    const nv = b[off + 29]!;
    const at = dv.getFloat64(off, true), kind = b[off + 24] === 1 ? 1 : 0, reader = g.r[b[off + 25]!]!, flags = b[off + 26]!;
    const violations: CompactRecord['violations'] = [];
    let seen: SeenRecord | undefined;
    let p = off + RECORD_BYTES;
    if (v2 && kind === 0) {
      const pending = (flags & F_SEEN_PENDING) !== 0;
      seen = {
        location: b[off + 30] === NONE ? null : g.a[b[off + 30]!]!, lastMoveAt: dv.getFloat64(p, true),
        lastReader: b[off + 31] === NONE ? null : g.r[b[off + 31]!]!, lastReaderAt: dv.getFloat64(p + 8, true),
        freePass: (flags & F_SEEN_FREEPASS) !== 0, exempt: (flags & F_SEEN_EXEMPT) !== 0, supervisor: (flags & F_SEEN_SUPERVISOR) !== 0,
        pending: null,
      };
      p += SEEN_BYTES;
      if (pending) {
        seen.pending = { reader: seen.lastReader, to: b[p + 8] === NONE ? null : g.a[b[p + 8]!]!, deadline: dv.getFloat64(p, true) };
        p += PENDING_BYTES;
      }
    }
    for (let v = 0; v < nv; v++) {
      if (v2) { violations.push(violation2(g, dv, p, seen!, reader, at)); p += VIOLATION2_BYTES; continue; }
      violations.push({ code: VIOLATION_CODES[b[p]!]!, mode: b[p + 1] === 1 ? 'soft' : 'hard', area: b[p + 2] === NONE ? null : g.a[b[p + 2]!]! });
      p += VIOLATION_BYTES;
    }
    const rec: CompactRecord = {
      at, id: dv.getFloat64(off + 8, true), cred: dv.getFloat64(off + 16, true),
      kind, reader, granted: (flags & 1) === 1,
      reason: b[off + 27]!, area: b[off + 28] === NONE ? null : g.a[b[off + 28]!]!, violations,
    };
    if (seen) rec.seen = seen;
    yield rec;
    off = p;
  }
}

/**
 * The event record a compact record stands for: field for field what the
 * general path journals for the same message (the hub's differential test
 * holds the two equal).
 */
export function toEventRecord(g: CompactGroup, r: CompactRecord, seq: number): EventRecord {
  const rec: EventRecord = { seq, at: r.at, kind: r.kind === 0 ? 'badge' : 'passage', controller: g.c, id: r.id, reader: r.reader, cred: String(r.cred) };
  if (r.kind === 0) {
    rec.grant = r.granted;
    rec.reason = REASONS[r.reason]!;
    rec.violations = r.violations;
    if (r.granted && r.area !== null) rec.area = r.area;
    if (r.seen) rec.seen = r.seen;
  } else rec.applied = r.granted;
  if (r.granted) rec.op = { t: r.kind === 0 ? 'badge' : 'passage', cred: r.cred, reader: r.reader, ts: r.at };
  return rec;
}

/** All event records of a group, seqs from `firstSeq`. */
export function* groupEvents(g: CompactGroup, firstSeq: number): Generator<EventRecord> {
  let seq = firstSeq;
  for (const r of compactRecords(g)) yield toEventRecord(g, r, seq++);
}

/** A badge's seen state for CompactWriter.add, names as indexes already interned (-1 = none); reused. */
export interface SeenScratch {
  location: number; lastReader: number; lastMoveAt: number; lastReaderAt: number;
  /** F_SEEN_* bits: 2 freePass, 4 exempt, 8 supervisor */
  flags: number;
  /** pending move's target (interned), -1 = none */
  pendingTo: number; deadline: number;
}

/** the seen state of a credential never stored (a fresh scratch) */
export function seenNone(): SeenScratch {
  return { location: -1, lastReader: -1, lastMoveAt: 0, lastReaderAt: 0, flags: 0, pendingTo: -1, deadline: 0 };
}

/**
 * Builds a group's records without per-record objects: the hub appends each
 * decided message with `add`, then `finish` returns the group (one buffer
 * copy). Names are interned per group.
 */
export class CompactWriter {
  private buf = new Uint8Array(64 * 1024);
  private dv = new DataView(this.buf.buffer);
  private off = 0;
  private count = 0;
  /** the group's name tables (0 readers, 1 areas): scratch arrays that keep their capacity, the first used[t] in use */
  private readonly tables: [string[], string[]] = [[], []];
  private readonly used = [0, 0];
  /** the groups' bytes (slab.ts: no malloc per group; groups outlive the hub's other per-frame arrays) */
  private readonly slab = new Slab();

  constructor(private controller: string) {}

  get size(): number { return this.count; }

  reset(controller: string): void {
    this.controller = controller;
    this.off = 0; this.count = 0;
    this.used[0] = 0; this.used[1] = 0;
  }

  /*
   * Index of `name` in name table t, or -1 when the table is full (the caller takes the general path).
   * A linear search: a group names a few readers and areas (at most MAX_NAMES), and the names are the
   * site's own string objects, so this allocates nothing (a Map per group did, every frame).
   */
  private intern(t: 0 | 1, name: string): number {
    const list = this.tables[t], n = this.used[t]!;
    for (let i = 0; i < n; i++) if (list[i] === name) return i;
    if (n >= MAX_NAMES) return -1;
    list[n] = name;
    this.used[t] = n + 1;
    return n;
  }

  readerIndex(reader: string): number { return this.intern(0, reader); }
  areaIndex(area: string): number { return this.intern(1, area); }

  /**
   * Appends one record (layout 2). `viol` holds nv groups of five (code, mode, areaIndex, aux
   * areaIndex, n) and `violX` nv f64 facts, all interned already; a badge's `seen` fields come from
   * `s` (SeenScratch, names interned). Returns false (nothing written) if an index is out of range.
   */
  add(at: number, id: number, cred: number, kind: 0 | 1, reader: number, granted: boolean, reason: number, area: number, nv: number, viol: ArrayLike<number>, violX: ArrayLike<number>, s: SeenScratch): boolean {
    if (reader < 0 || area < -1 || nv > 255) return false;
    const pending = kind === 0 && s.pendingTo >= 0;
    const need = RECORD_BYTES + VIOLATION2_BYTES * nv + (kind === 0 ? SEEN_BYTES + (pending ? PENDING_BYTES : 0) : 0);
    if (this.off + need > this.buf.length) this.grow(need);
    const b = this.buf, dv = this.dv, o = this.off;
    dv.setFloat64(o, at, true);
    dv.setFloat64(o + 8, id, true);
    dv.setFloat64(o + 16, cred, true);
    b[o + 24] = kind; b[o + 25] = reader; b[o + 27] = reason;
    b[o + 28] = area < 0 ? NONE : area; b[o + 29] = nv;
    let p = o + RECORD_BYTES;
    if (kind === 0) {
      b[o + 26] = (granted ? 1 : 0) | s.flags | (pending ? F_SEEN_PENDING : 0);
      b[o + 30] = s.location < 0 ? NONE : s.location; b[o + 31] = s.lastReader < 0 ? NONE : s.lastReader;
      dv.setFloat64(p, s.lastMoveAt, true); dv.setFloat64(p + 8, s.lastReaderAt, true);
      p += SEEN_BYTES;
      if (pending) { dv.setFloat64(p, s.deadline, true); b.fill(0, p + 8, p + 16); b[p + 8] = s.pendingTo; p += PENDING_BYTES; }
    } else { b[o + 26] = granted ? 1 : 0; b[o + 30] = 0; b[o + 31] = 0; }
    for (let v = 0; v < nv; v++, p += VIOLATION2_BYTES) {
      b[p] = viol[5 * v]!; b[p + 1] = viol[5 * v + 1]!;
      const a = viol[5 * v + 2]!, x = viol[5 * v + 3]!;
      b[p + 2] = a < 0 ? NONE : a; b[p + 3] = x < 0 ? NONE : x;
      dv.setUint32(p + 4, viol[5 * v + 4]!, true);
      dv.setFloat64(p + 8, violX[v]!, true);
    }
    this.off += need;
    this.count++;
    return true;
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.off + need));
    next.set(this.buf.subarray(0, this.off));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  /** The group so far (its bytes copied once, into this writer's slab); the writer is reset for reuse. */
  finish(): CompactGroup {
    // exact-size copies: the scratch tables keep their capacity for the next group
    const g: CompactGroup = { c: this.controller, r: this.tables[0].slice(0, this.used[0]), a: this.tables[1].slice(0, this.used[1]), n: this.count, b: this.slab.copy(this.buf, 0, this.off), v: 2 };
    this.used[0] = 0; this.used[1] = 0;
    this.off = 0; this.count = 0;
    return g;
  }
}
