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
 * Every record takes one journal seq, in order. The reply a record was
 * answered with is not stored: it is re-encoded from the record
 * (src/engine/wire-reply.ts), byte for byte what was sent.
 */
import { REASONS, VIOLATION_CODES } from '../engine/types.js';
import type { EventRecord } from './types.js';

export const RECORD_BYTES = 32;
export const VIOLATION_BYTES = 4;
export const NONE = 255;
/** at most this many distinct readers or areas per group (one byte each) */
export const MAX_NAMES = 254;

export interface CompactGroup { c: string; r: string[]; a: string[]; n: number; b: Uint8Array }

/** One decoded record; `seq` is assigned by position. */
export interface CompactRecord {
  at: number; id: number; cred: number; kind: 0 | 1; reader: string; granted: boolean;
  reason: number; area: string | null;
  violations: { code: string; mode: 'hard' | 'soft'; area: string | null }[];
}

/** Length in bytes of the record at `off`. */
export function recordLength(b: Uint8Array, off: number): number {
  return RECORD_BYTES + VIOLATION_BYTES * b[off + 29]!;
}

/** Decodes every record of a group (recovery, export, queries: never the hot path). */
export function* compactRecords(g: CompactGroup): Generator<CompactRecord> {
  const b = g.b;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = 0;
  for (let i = 0; i < g.n; i++) {
    const nv = b[off + 29]!;
    const violations: CompactRecord['violations'] = [];
    for (let v = 0; v < nv; v++) {
      const p = off + RECORD_BYTES + v * VIOLATION_BYTES;
      violations.push({ code: VIOLATION_CODES[b[p]!]!, mode: b[p + 1] === 1 ? 'soft' : 'hard', area: b[p + 2] === NONE ? null : g.a[b[p + 2]!]! });
    }
    yield {
      at: dv.getFloat64(off, true), id: dv.getFloat64(off + 8, true), cred: dv.getFloat64(off + 16, true),
      kind: b[off + 24] === 1 ? 1 : 0, reader: g.r[b[off + 25]!]!, granted: (b[off + 26]! & 1) === 1,
      reason: b[off + 27]!, area: b[off + 28] === NONE ? null : g.a[b[off + 28]!]!, violations,
    };
    off += RECORD_BYTES + VIOLATION_BYTES * nv;
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
  } else rec.applied = r.granted;
  if (r.granted) rec.op = { t: r.kind === 0 ? 'badge' : 'passage', cred: r.cred, reader: r.reader, ts: r.at };
  return rec;
}

/** All event records of a group, seqs from `firstSeq`. */
export function* groupEvents(g: CompactGroup, firstSeq: number): Generator<EventRecord> {
  let seq = firstSeq;
  for (const r of compactRecords(g)) yield toEventRecord(g, r, seq++);
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
   * Appends one record; `viol` holds nv triples (code, mode, areaIndex) already
   * interned. Returns false (nothing written) if an index is out of range.
   */
  add(at: number, id: number, cred: number, kind: 0 | 1, reader: number, granted: boolean, reason: number, area: number, nv: number, viol: ArrayLike<number>): boolean {
    if (reader < 0 || area < -1 || nv > 255) return false;
    const need = RECORD_BYTES + VIOLATION_BYTES * nv;
    if (this.off + need > this.buf.length) this.grow(need);
    const b = this.buf, dv = this.dv, o = this.off;
    dv.setFloat64(o, at, true);
    dv.setFloat64(o + 8, id, true);
    dv.setFloat64(o + 16, cred, true);
    b[o + 24] = kind; b[o + 25] = reader; b[o + 26] = granted ? 1 : 0; b[o + 27] = reason;
    b[o + 28] = area < 0 ? NONE : area; b[o + 29] = nv; b[o + 30] = 0; b[o + 31] = 0;
    for (let v = 0; v < nv; v++) {
      const p = o + RECORD_BYTES + v * VIOLATION_BYTES;
      b[p] = viol[3 * v]!; b[p + 1] = viol[3 * v + 1]!; const a = viol[3 * v + 2]!; b[p + 2] = a < 0 ? NONE : a; b[p + 3] = 0;
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

  /** The group so far (its bytes copied once); the writer is reset for reuse. */
  finish(): CompactGroup {
    // exact-size copies: the scratch tables keep their capacity for the next group
    const g: CompactGroup = { c: this.controller, r: this.tables[0].slice(0, this.used[0]), a: this.tables[1].slice(0, this.used[1]), n: this.count, b: this.buf.slice(0, this.off) };
    this.used[0] = 0; this.used[1] = 0;
    this.off = 0; this.count = 0;
    return g;
  }
}
