/**
 * MessagePack of a compact journal value (journal-batch.ts: `{s, n, a0, a1, k: [group...]}`, each
 * group `{c, r, a, n, b, v}`, compact-journal.ts) written by hand, for the WAL record and the LMDB
 * value of every turn of fast-path frames.
 *
 * Why: msgpackr's generic encoder walked each group's object and arrays with its type checks and
 * was about 8 % of the main thread at one message per frame; the shape here is fixed. The bytes are
 * plain MessagePack that msgpackr (the store's and the WAL's decoders) reads back as the same value;
 * they need not be msgpackr's bytes (nothing compares them, the journal stores these).
 *
 * Encodings, as msgpackr's: a safe integer as the smallest (u)int up to 32 bits, anything else as
 * float64; strings as str8/16/32 of their UTF-8; `b` as bin8/16/32.
 */
import type { CompactGroup } from './compact-journal.js';
import { Slab } from './slab.js';

export interface CompactBatch { s: number; n: number; a0: number; a1: number; k: CompactGroup[] }

const enc = new TextEncoder();

export class CompactPacker {
  private buf = new Uint8Array(64 * 1024);
  private dv = new DataView(this.buf.buffer);
  private p = 0;
  /** payloads live until their batch is in LMDB (tens of ms), all alike: one slab for them */
  private readonly slab = new Slab();

  pack(b: CompactBatch): Buffer {
    this.p = 0;
    this.need(64);
    this.byte(0x85);
    this.key1(0x73); this.num(b.s);          // s
    this.key1(0x6e); this.num(b.n);          // n
    this.key2(0x61, 0x30); this.num(b.a0);   // a0
    this.key2(0x61, 0x31); this.num(b.a1);   // a1
    this.key1(0x6b);                         // k
    this.arrayHead(b.k.length);
    for (const g of b.k) {
      this.need(32);
      this.byte(g.v === undefined ? 0x85 : 0x86);
      this.key1(0x63); this.str(g.c);
      this.key1(0x72); this.arrayHead(g.r.length); for (const x of g.r) this.str(x);
      this.key1(0x61); this.arrayHead(g.a.length); for (const x of g.a) this.str(x);
      this.need(8); this.key1(0x6e); this.num(g.n);
      this.key1(0x62); this.bin(g.b);
      if (g.v !== undefined) { this.need(16); this.key1(0x76); this.num(g.v); }
    }
    const out = this.slab.copy(this.buf, 0, this.p);
    // a Buffer view (no copy), as msgpackr's pack returned: lmdb-js stores it as it is (asBinary)
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  }

  private need(n: number): void {
    if (this.p + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.p + n));
    next.set(this.buf.subarray(0, this.p));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  private byte(x: number): void { this.buf[this.p++] = x; }
  private key1(c: number): void { this.buf[this.p++] = 0xa1; this.buf[this.p++] = c; }
  private key2(c: number, d: number): void { this.buf[this.p++] = 0xa2; this.buf[this.p++] = c; this.buf[this.p++] = d; }

  private num(x: number): void {
    this.need(9);
    const buf = this.buf;
    if (Number.isSafeInteger(x) && x >= -0x80000000 && x <= 0xffffffff) {
      if (x >= 0) {
        if (x < 0x80) buf[this.p++] = x;
        else if (x < 0x100) { buf[this.p++] = 0xcc; buf[this.p++] = x; }
        else if (x < 0x10000) { buf[this.p++] = 0xcd; this.dv.setUint16(this.p, x); this.p += 2; }
        else { buf[this.p++] = 0xce; this.dv.setUint32(this.p, x); this.p += 4; }
      } else if (x >= -0x20) buf[this.p++] = x & 0xff;
      else if (x >= -0x80) { buf[this.p++] = 0xd0; this.dv.setInt8(this.p, x); this.p += 1; }
      else if (x >= -0x8000) { buf[this.p++] = 0xd1; this.dv.setInt16(this.p, x); this.p += 2; }
      else { buf[this.p++] = 0xd2; this.dv.setInt32(this.p, x); this.p += 4; }
      return;
    }
    buf[this.p++] = 0xcb; this.dv.setFloat64(this.p, x); this.p += 8;
  }

  private arrayHead(n: number): void {
    this.need(5);
    if (n < 16) this.buf[this.p++] = 0x90 | n;
    else if (n < 0x10000) { this.buf[this.p++] = 0xdc; this.dv.setUint16(this.p, n); this.p += 2; }
    else { this.buf[this.p++] = 0xdd; this.dv.setUint32(this.p, n); this.p += 4; }
  }

  private str(s: string): void {
    // at most 3 UTF-8 bytes per UTF-16 unit; the header is written once the length is known
    const max = s.length * 3;
    this.need(5 + max);
    const head = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    const at = this.p + head;
    let n = 0;
    let ascii = true;
    for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); if (c >= 0x80) { ascii = false; break; } this.buf[at + i] = c; }
    if (ascii) n = s.length;
    else n = enc.encodeInto(s, this.buf.subarray(at)).written;
    const buf = this.buf;
    if (head === 2) { buf[this.p] = 0xd9; buf[this.p + 1] = n; }
    else if (head === 3) { buf[this.p] = 0xda; this.dv.setUint16(this.p + 1, n); }
    else { buf[this.p] = 0xdb; this.dv.setUint32(this.p + 1, n); }
    this.p = at + n;
  }

  private bin(b: Uint8Array): void {
    const n = b.length;
    this.need(5 + n);
    if (n < 0x100) { this.buf[this.p++] = 0xc4; this.buf[this.p++] = n; }
    else if (n < 0x10000) { this.buf[this.p++] = 0xc5; this.dv.setUint16(this.p, n); this.p += 2; }
    else { this.buf[this.p++] = 0xc6; this.dv.setUint32(this.p, n); this.p += 4; }
    this.buf.set(b, this.p);
    this.p += n;
  }
}
