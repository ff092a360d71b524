/**
 * Consecutive compact groups of the memory store (memory-store.ts), held in
 * typed columns and shared byte chunks instead of an object per group.
 *
 * Why: a :memory: server keeps every decision it journals. As one object per
 * group (plus its name arrays and a view on its bytes: five per frame, five
 * per message at one message per frame) the live heap grew by millions of
 * objects, and V8's major collections, which mark all of them, took a third
 * of the main thread at 64 messages per frame, with pauses of 10-20 ms. Here
 * a run of up to RUN_GROUPS groups is a handful of objects, whatever it holds.
 *
 *   group i of the run (columns, grown x2 up to RUN_GROUPS):
 *     s[i]     f64  seq of its first record (its records take s .. s+n-1)
 *     n[i]     u32  records
 *     a0[i]    f64  `at` of its first record · a1[i] f64 its largest `at`
 *     chunk[i] u32  which of `chunks` holds its bytes · off[i], len[i] u32 where
 *     head[i]  u32  index into `heads`: its controller and name tables, shared
 *                   by the groups of a controller that name the same ones
 *
 *   chunks: Uint8Array[CHUNK_BYTES] the groups' bytes are appended to, in order
 *   ┌ group 0 ┬ group 1 ┬ ... ┬──── free ───┐   a group that does not fit starts
 *   └─────────┴─────────┴─────┴─────────────┘   a new chunk (a larger one: its own)
 *
 * Retention trims from the front: `first` is the first group still kept; the
 * run's memory goes when its last group does (a run is 4,096 groups at most).
 */
import type { CompactGroup } from './compact-journal.js';

export const RUN_GROUPS = 4096;
const CHUNK_BYTES = 256 * 1024;
const FIRST_CAP = 16;

/** the controller and name tables of a group (CompactGroup without its bytes) */
interface GroupHead { c: string; r: string[]; a: string[]; v: number | undefined }

const sameNames = (x: string[], y: string[]): boolean => {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
};

export class GroupRun {
  private s = new Float64Array(FIRST_CAP);
  private n = new Uint32Array(FIRST_CAP);
  private a0 = new Float64Array(FIRST_CAP);
  private a1 = new Float64Array(FIRST_CAP);
  private chunk = new Uint32Array(FIRST_CAP);
  private off = new Uint32Array(FIRST_CAP);
  private len = new Uint32Array(FIRST_CAP);
  private head = new Uint32Array(FIRST_CAP);
  private readonly heads: GroupHead[] = [];
  /** each controller's latest head: frames of many controllers interleave, and each one's names rarely change */
  private readonly headOf = new Map<string, number>();
  private readonly chunks: Uint8Array[] = [];
  private used = CHUNK_BYTES;
  /** groups added; groups [first, count) are kept */
  count = 0;
  first = 0;
  /** records in the kept groups */
  events = 0;

  get full(): boolean { return this.count === RUN_GROUPS; }
  get empty(): boolean { return this.first === this.count; }
  /** seq of the first kept record */
  get firstSeq(): number { return this.s[this.first]!; }
  /** seq of the last record */
  get endSeq(): number { return this.end(this.count - 1); }

  /** group i's first seq, last seq, record count, first and largest `at` */
  seqOf(i: number): number { return this.s[i]!; }
  end(i: number): number { return this.s[i]! + this.n[i]! - 1; }
  records(i: number): number { return this.n[i]!; }
  firstAt(i: number): number { return this.a0[i]!; }
  lastAt(i: number): number { return this.a1[i]!; }

  /** appends group g (its bytes copied in), whose records take seqs s.. */
  add(g: CompactGroup, s: number, a0: number, a1: number): void {
    const i = this.count;
    if (i === this.s.length) this.grow();
    const b = g.b;
    if (this.used + b.length > CHUNK_BYTES) {
      this.chunks.push(new Uint8Array(Math.max(CHUNK_BYTES, b.length)));
      this.used = 0;
    }
    const c = this.chunks.length - 1;
    this.chunks[c]!.set(b, this.used);
    this.s[i] = s; this.n[i] = g.n; this.a0[i] = a0; this.a1[i] = a1;
    this.chunk[i] = c; this.off[i] = this.used; this.len[i] = b.length;
    this.used += b.length;
    let h = this.headOf.get(g.c);
    const known = h === undefined ? undefined : this.heads[h]!;
    if (known === undefined || known.v !== g.v || !sameNames(known.r, g.r) || !sameNames(known.a, g.a)) {
      h = this.heads.push({ c: g.c, r: g.r, a: g.a, v: g.v }) - 1;
      this.headOf.set(g.c, h);
    }
    this.head[i] = h!;
    this.count = i + 1;
    this.events += g.n;
  }

  /** group i as a CompactGroup (its bytes a view into the run's chunk) */
  group(i: number): CompactGroup {
    const h = this.heads[this.head[i]!]!;
    const c = this.chunks[this.chunk[i]!]!;
    const g: CompactGroup = { c: h.c, r: h.r, a: h.a, n: this.n[i]!, b: c.subarray(this.off[i]!, this.off[i]! + this.len[i]!) };
    if (h.v !== undefined) g.v = h.v;
    return g;
  }

  /** index of the first kept group whose last seq is > seq (count when none) */
  after(seq: number): number {
    let lo = this.first, hi = this.count;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.end(mid) <= seq) lo = mid + 1; else hi = mid; }
    return lo;
  }

  /** drops the first kept group (retention) */
  dropFirst(): void {
    this.events -= this.n[this.first]!;
    this.first++;
  }

  private grow(): void {
    const cap = Math.min(this.s.length * 2, RUN_GROUPS);
    const f64 = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => { const x = new Float64Array(cap); x.set(a); return x; };
    const u32 = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => { const x = new Uint32Array(cap); x.set(a); return x; };
    this.s = f64(this.s); this.a0 = f64(this.a0); this.a1 = f64(this.a1);
    this.n = u32(this.n); this.chunk = u32(this.chunk); this.off = u32(this.off); this.len = u32(this.len); this.head = u32(this.head);
  }
}
