/**
 * The frame scanner of the hub's fast path: reads a controller frame's
 * MessagePack bytes directly, without msgpackr and without an object per
 * message, and accepts only the commonest frames, whole:
 *
 *   a map, or an array of 1..cap maps, each exactly
 *     {t: "badge" | "passage", id: uint, cred: uint, reader: str}
 *   keys in any order, each once, no other key (so no `ts`); id and cred
 *   integers 0..2^53-1 in any integer encoding (positive fixint,
 *   uint 8/16/32/64, or int 8/16/32/64 holding a non-negative value);
 *   strings in any str encoding; reader byte-equal to the UTF-8 id of a
 *   reader this controller owns; ids strictly increasing within the frame
 *   and above `hwm` (the controller's high-water mark); nothing after the
 *   value.
 *
 * Anything else returns false and the frame takes the general path (which
 * decodes it with msgpackr and answers exactly as before). For an accepted
 * frame the op of message i is already written into input slot i of the
 * WASM core (assembly/batch.ts layout: op, int key kind, reader, key), and
 * ids[i] / creds[i] / readers[i] / kinds[i] hold what the hub needs for
 * replies and the journal.
 */
import type { CompiledSite } from '../config/types.js';
import { WIRE_IN_STRIDE, type WireViews } from '../engine/wasm-core.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const TWO32 = 0x100000000;

// key bytes
const K_T = 0x74; // "t"
const BADGE = [0x62, 0x61, 0x64, 0x67, 0x65];             // "badge"
const PASSAGE = [0x70, 0x61, 0x73, 0x73, 0x61, 0x67, 0x65]; // "passage"

/**
 * The readers one controller owns, by their UTF-8 bytes, in an
 * open-addressing table (FNV-1a of the bytes): a lookup allocates nothing.
 * Built once per controller on every site change.
 */
export class ReaderTable {
  readonly count: number;
  private readonly bytes: Uint8Array;
  private readonly start: Int32Array;
  private readonly len: Int32Array;
  private readonly index: Int32Array;
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(site: CompiledSite, controllerIndex: number) {
    const own: number[] = [];
    for (let r = 0; r < site.readerIds.length; r++) if (site.readerController[r] === controllerIndex && controllerIndex >= 0) own.push(r);
    const enc = own.map((r) => Buffer.from(site.readerIds[r]!, 'utf8'));
    let total = 0;
    for (const b of enc) total += b.length;
    this.bytes = new Uint8Array(total);
    this.start = new Int32Array(own.length);
    this.len = new Int32Array(own.length);
    this.index = Int32Array.from(own);
    this.count = own.length;
    let size = 8;
    while (size < own.length * 2) size <<= 1;
    this.mask = size - 1;
    this.slots = new Int32Array(size).fill(-1);
    let at = 0;
    enc.forEach((b, k) => {
      this.bytes.set(b, at); this.start[k] = at; this.len[k] = b.length; at += b.length;
      let h = hash(b, 0, b.length) & this.mask;
      while (this.slots[h] !== -1) h = (h + 1) & this.mask;
      this.slots[h] = k;
    });
  }

  /** The site index of the owned reader whose UTF-8 bytes are b[p, p+n), or -1. */
  find(b: Uint8Array, p: number, n: number): number {
    if (this.count === 0) return -1;
    let h = hash(b, p, n) & this.mask;
    const bytes = this.bytes;
    for (;;) {
      const k = this.slots[h]!;
      if (k === -1) return -1;
      if (this.len[k] === n) {
        const s = this.start[k]!;
        let i = 0;
        while (i < n && bytes[s + i] === b[p + i]) i++;
        if (i === n) return this.index[k]!;
      }
      h = (h + 1) & this.mask;
    }
  }
}

function hash(b: Uint8Array, p: number, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ b[p + i]!, 0x01000193);
  return h >>> 0;
}

/**
 * One scanner per hub (the hub is single-threaded and scans one frame at a
 * time); its arrays hold the last accepted frame until the next scan.
 */
export class FrameScanner {
  n = 0;
  /** the frame is an array (the reply is an array too) */
  batch = false;
  /** messages per kind in the last accepted frame */
  badges = 0;
  passages = 0;
  ids: Float64Array;
  creds: Float64Array;
  readers: Int32Array;
  kinds: Uint8Array;
  // parse state (fields, not locals returned through objects)
  private p = 0;
  private num = 0;
  private strAt = 0;
  private strLen = 0;

  constructor(cap: number) {
    this.ids = new Float64Array(cap);
    this.creds = new Float64Array(cap);
    this.readers = new Int32Array(cap);
    this.kinds = new Uint8Array(cap);
  }

  /**
   * Scans frame `b`; true when every message qualifies (see the header),
   * with the ops written into `v`'s input slots. `max`: the most messages
   * the fast path takes in one frame (<= the slot capacity).
   */
  scan(b: Uint8Array, table: ReaderTable, hwm: number, max: number, v: WireViews): boolean {
    const len = b.length;
    if (len === 0) return false;
    const t0 = b[0]!;
    let n: number;
    this.p = 0;
    if ((t0 & 0xf0) === 0x80 || t0 === 0xde || t0 === 0xdf) { n = 1; this.batch = false; }
    else if ((t0 & 0xf0) === 0x90) { n = t0 & 0x0f; this.p = 1; this.batch = true; }
    else if (t0 === 0xdc) { if (len < 3) return false; n = (b[1]! << 8) | b[2]!; this.p = 3; this.batch = true; }
    else if (t0 === 0xdd) { if (len < 5) return false; n = ((b[1]! << 24) | (b[2]! << 16) | (b[3]! << 8) | b[4]!) >>> 0; this.p = 5; this.batch = true; }
    else return false;
    if (n < 1 || n > max || n > this.ids.length || n > v.cap) return false;
    const u8 = v.u8, i32 = v.i32, u32 = v.u32;
    let last = hwm;
    let badges = 0;
    let s = v.inBase;
    for (let i = 0; i < n; i++, s += WIRE_IN_STRIDE) {
      // map header: exactly 4 entries
      let p = this.p;
      if (p >= len) return false;
      const h = b[p]!;
      if (h === 0x84) p += 1;
      else if (h === 0xde) { if (p + 3 > len || b[p + 1] !== 0 || b[p + 2] !== 4) return false; p += 3; }
      else if (h === 0xdf) { if (p + 5 > len || b[p + 1] !== 0 || b[p + 2] !== 0 || b[p + 3] !== 0 || b[p + 4] !== 4) return false; p += 5; }
      else return false;
      this.p = p;
      let seen = 0;
      let kind = -1, id = -1, cred = -1, reader = -1;
      for (let k = 0; k < 4; k++) {
        if (!this.str(b)) return false;
        const ka = this.strAt, kl = this.strLen;
        if (kl === 1 && b[ka] === K_T) {
          if (seen & 1) return false; seen |= 1;
          if (!this.str(b)) return false;
          kind = this.kindOf(b);
          if (kind < 0) return false;
        } else if (kl === 2 && b[ka] === 0x69 && b[ka + 1] === 0x64) { // "id"
          if (seen & 2) return false; seen |= 2;
          if (!this.uint(b)) return false;
          id = this.num;
        } else if (kl === 4 && b[ka] === 0x63 && b[ka + 1] === 0x72 && b[ka + 2] === 0x65 && b[ka + 3] === 0x64) { // "cred"
          if (seen & 4) return false; seen |= 4;
          if (!this.uint(b)) return false;
          cred = this.num;
        } else if (kl === 6 && b[ka] === 0x72 && b[ka + 1] === 0x65 && b[ka + 2] === 0x61 && b[ka + 3] === 0x64 && b[ka + 4] === 0x65 && b[ka + 5] === 0x72) { // "reader"
          if (seen & 8) return false; seen |= 8;
          if (!this.str(b)) return false;
          reader = table.find(b, this.strAt, this.strLen);
          if (reader < 0) return false;
        } else return false;
      }
      // four distinct known keys: all of t, id, cred, reader are present
      if (id <= last) return false;
      last = id;
      this.ids[i] = id; this.creds[i] = cred; this.readers[i] = reader; this.kinds[i] = kind;
      if (kind === 0) badges++;
      // input slot (assembly/batch.ts): op, key kind int, reader, u64 key as two u32 halves
      u8[s] = kind; u8[s + 1] = 0;
      i32[(s + 4) >> 2] = reader;
      const hi = Math.floor(cred / TWO32);
      u32[(s + 16) >> 2] = cred - hi * TWO32;
      u32[(s + 20) >> 2] = hi;
    }
    if (this.p !== len) return false;
    this.n = n;
    this.badges = badges;
    this.passages = n - badges;
    return true;
  }

  /** reads a str header at this.p: sets strAt/strLen, advances past the bytes */
  private str(b: Uint8Array): boolean {
    let p = this.p;
    const len = b.length;
    if (p >= len) return false;
    const h = b[p]!;
    let n: number;
    if ((h & 0xe0) === 0xa0) { n = h & 0x1f; p += 1; }
    else if (h === 0xd9) { if (p + 2 > len) return false; n = b[p + 1]!; p += 2; }
    else if (h === 0xda) { if (p + 3 > len) return false; n = (b[p + 1]! << 8) | b[p + 2]!; p += 3; }
    else if (h === 0xdb) { if (p + 5 > len) return false; n = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0; p += 5; }
    else return false;
    if (p + n > len) return false;
    this.strAt = p; this.strLen = n; this.p = p + n;
    return true;
  }

  /** 0 badge, 1 passage, -1 anything else (the str just read) */
  private kindOf(b: Uint8Array): number {
    const a = this.strAt, n = this.strLen;
    if (n === 5) { for (let i = 0; i < 5; i++) if (b[a + i] !== BADGE[i]) return -1; return 0; }
    if (n === 7) { for (let i = 0; i < 7; i++) if (b[a + i] !== PASSAGE[i]) return -1; return 1; }
    return -1;
  }

  /** reads an integer 0..2^53-1 in any integer encoding at this.p into this.num */
  private uint(b: Uint8Array): boolean {
    const p = this.p;
    const len = b.length;
    if (p >= len) return false;
    const h = b[p]!;
    if (h <= 0x7f) { this.num = h; this.p = p + 1; return true; }
    let w: number; // payload bytes
    let signed = false;
    switch (h) {
      case 0xcc: w = 1; break;
      case 0xcd: w = 2; break;
      case 0xce: w = 4; break;
      case 0xcf: w = 8; break;
      case 0xd0: w = 1; signed = true; break;
      case 0xd1: w = 2; signed = true; break;
      case 0xd2: w = 4; signed = true; break;
      case 0xd3: w = 8; signed = true; break;
      default: return false;
    }
    if (p + 1 + w > len) return false;
    if (signed && (b[p + 1]! & 0x80) !== 0) return false; // negative
    let v: number;
    if (w === 8) {
      const hi = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0;
      if (hi > 0x1fffff) return false; // beyond 2^53-1
      const lo = ((b[p + 5]! << 24) | (b[p + 6]! << 16) | (b[p + 7]! << 8) | b[p + 8]!) >>> 0;
      v = hi * TWO32 + lo;
      if (v > MAX_SAFE) return false;
    } else if (w === 4) v = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0;
    else if (w === 2) v = (b[p + 1]! << 8) | b[p + 2]!;
    else v = b[p + 1]!;
    this.num = v;
    this.p = p + 1 + w;
    return true;
  }
}
