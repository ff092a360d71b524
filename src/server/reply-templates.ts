/**
 * Reply templates of the hub's fast path. A decision reply is the map the
 * general path builds, {t:'decision', grant, reason, violations, area?}
 * then `id`, packed by codec.encodeReply; an ack is {t:'ack', id}. Every
 * byte before the id value depends only on the result's signature (kind,
 * grant, reason, area, violations), so per signature the encoded map is
 * built ONCE, by the same encoder from the same object, with id 0 (one
 * byte, 0x00, the last of the encoding), and cached without that byte: a
 * reply is then that prefix plus the id as msgpackr writes it (writeId).
 * The bytes are identical to the general path's and to
 * compactReply(record) (src/engine/wire-reply.ts); the fast-path test holds
 * the three equal.
 *
 * Lookup allocates nothing: signatures without violations are one integer
 * key; with violations, a trie over the violation words.
 */
import type { CompiledSite } from '../config/types.js';
import { REASONS, VIOLATION_CODES } from '../engine/types.js';
import { encodeReply } from './codec.js';

interface Node { prefix: Uint8Array | null; next: Map<number, Node> | null }

/** Most bytes writeId writes (int64: 0xd3 + 8). */
export const MAX_ID_BYTES_WIRE = 9;

export class ReplyTemplates {
  private site: CompiledSite | null = null;
  private ack: Uint8Array | null = null;
  private flat = new Map<number, Uint8Array>();
  private trie = new Map<number, Node>();

  /** Drops every template when the site changed (area names are in the bytes). */
  use(site: CompiledSite): void {
    if (site === this.site) return;
    this.site = site;
    this.flat.clear();
    this.trie.clear();
  }

  ackPrefix(): Uint8Array {
    return this.ack ??= strip(encodeReply({ t: 'ack', id: 0 }));
  }

  /**
   * The prefix of a decision reply. `words`: the core's violation words
   * (u32 view), nv of them from index `w0` (rules.ts format: code byte 0,
   * mode byte 1 (2 = hard), area in the high 16 bits, 0xFFFF = none).
   */
  decisionPrefix(grant: boolean, reason: number, area: number, words: Uint32Array, w0: number, nv: number): Uint8Array {
    const key = (grant ? 1 : 0) | (reason << 1) | ((area + 1) << 6); // reason < 32, area + 1 <= 0xFFFF
    if (nv === 0) {
      const t = this.flat.get(key);
      if (t !== undefined) return t;
      const made = this.build(grant, reason, area, words, w0, 0);
      this.flat.set(key, made);
      return made;
    }
    let node = this.trie.get(key);
    if (node === undefined) { node = { prefix: null, next: null }; this.trie.set(key, node); }
    for (let i = 0; i < nv; i++) {
      const w = words[w0 + i]!;
      let m: Map<number, Node> | null = node!.next;
      if (m === null) m = node!.next = new Map();
      let c: Node | undefined = m.get(w);
      if (c === undefined) { c = { prefix: null, next: null }; m.set(w, c); }
      node = c;
    }
    return node!.prefix ??= this.build(grant, reason, area, words, w0, nv);
  }

  /** The general path's reply object for this signature (messages.ts encodeResult, then id), encoded, minus the id byte. */
  private build(grant: boolean, reason: number, area: number, words: Uint32Array, w0: number, nv: number): Uint8Array {
    const site = this.site!;
    const violations: unknown[] = [];
    for (let i = 0; i < nv; i++) {
      const w = words[w0 + i]!;
      const a = w >>> 16;
      violations.push({ code: VIOLATION_CODES[w & 0xff]!, mode: ((w >>> 8) & 0xff) === 2 ? 'hard' : 'soft', area: a !== 0xffff ? site.areaIds[a] ?? null : null });
    }
    const body: Record<string, unknown> = grant
      ? { t: 'decision', grant: true, reason: REASONS[reason], violations, area: site.areaIds[area] }
      : { t: 'decision', grant: false, reason: REASONS[reason], violations };
    body.id = 0;
    return strip(encodeReply(body));
  }
}

/** The encoding of a map whose last value is id 0 (fixint 0x00), without that byte. */
function strip(bytes: Uint8Array): Uint8Array {
  if (bytes[bytes.length - 1] !== 0) throw new Error('reply template: the id is not the last byte');
  return bytes.slice(0, bytes.length - 1);
}

/**
 * Writes id (0..2^53-1) at out[p] exactly as codec.encodeReply writes
 * wireInt(id): up to 2^32-1 the smallest unsigned form (fixint, uint8,
 * uint16, uint32), beyond as a BigInt, which msgpackr packs as int64
 * (0xd3). Returns the new position.
 */
export function writeId(out: Uint8Array, p: number, id: number): number {
  if (id < 0x80) { out[p] = id; return p + 1; }
  if (id < 0x100) { out[p] = 0xcc; out[p + 1] = id; return p + 2; }
  if (id < 0x10000) { out[p] = 0xcd; out[p + 1] = id >>> 8; out[p + 2] = id & 0xff; return p + 3; }
  if (id <= 0xffffffff) {
    out[p] = 0xce; out[p + 1] = id >>> 24; out[p + 2] = (id >>> 16) & 0xff; out[p + 3] = (id >>> 8) & 0xff; out[p + 4] = id & 0xff;
    return p + 5;
  }
  const hi = Math.floor(id / 0x100000000), lo = id - hi * 0x100000000;
  out[p] = 0xd3;
  out[p + 1] = hi >>> 24; out[p + 2] = (hi >>> 16) & 0xff; out[p + 3] = (hi >>> 8) & 0xff; out[p + 4] = hi & 0xff;
  out[p + 5] = lo >>> 24; out[p + 6] = (lo >>> 16) & 0xff; out[p + 7] = (lo >>> 8) & 0xff; out[p + 8] = lo & 0xff;
  return p + 9;
}
