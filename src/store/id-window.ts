/**
 * Idempotency from memory: per controller, the batch keys of its
 * last WINDOW message ids (two typed arrays, a ring) and its high-water mark.
 *
 * - a lookup above the high-water mark is a miss without any read (the
 *   usual case: controllers number their messages upwards);
 * - a lookup inside the window names the journal batch that holds the reply
 *   (one read of a recent, cached journal page, or no read at all while the
 *   batch is still in flight);
 * - an older id falls back to the derived idempotency index (D/index) and,
 *   for what the indexer has not reached yet, to the journal tail.
 *
 * `evicted` is the largest batch key whose ids may be missing from the ring
 * (evicted, or never loaded at open): ids in batches above it are all in it.
 * Ids above 2^53-1 (decimal strings, rare) are kept in a small map beside it.
 */
import { padId } from './common.js';

export const WINDOW = 4096;

export class IdWindow {
  // grown by doubling up to WINDOW: a controller that sends little costs little (64 KiB at full size)
  private ids = new Float64Array(64);
  private keys = new Float64Array(64);
  private pos = 0;
  private len = 0;
  /** string ids (> 2^53-1) → batch key, insertion order = age */
  private big: Map<string, number> | undefined;
  /** largest batch key whose ids may be missing here */
  evicted: number;
  /** largest numeric id, -1 if none */
  maxNum = -1;
  /** largest string id, zero-padded (undefined if none) */
  maxBig: string | undefined;

  constructor(evicted: number) { this.evicted = evicted; }

  note(id: number | string, key: number): void {
    if (typeof id === 'number') {
      if (id > this.maxNum) this.maxNum = id;
      const cap = this.ids.length;
      if (this.len === cap && cap < WINDOW) this.grow();
      if (this.len === this.ids.length) { const old = this.keys[this.pos]!; if (old > this.evicted) this.evicted = old; } else this.len++;
      this.ids[this.pos] = id; this.keys[this.pos] = key;
      this.pos = (this.pos + 1) % this.ids.length;
      return;
    }
    const p = padId(id);
    if (this.maxBig === undefined || p > this.maxBig) this.maxBig = p;
    const m = (this.big ??= new Map());
    m.delete(id);
    m.set(id, key);
    if (m.size > WINDOW) {
      for (const [k, v] of m) { m.delete(k); if (v > this.evicted) this.evicted = v; break; }
    }
  }

  /** doubles the ring, oldest entry first */
  private grow(): void {
    const cap = this.ids.length, ids = new Float64Array(cap * 2), keys = new Float64Array(cap * 2);
    for (let n = 0, p = this.pos; n < this.len; n++, p = (p + 1) % cap) { ids[n] = this.ids[p]!; keys[n] = this.keys[p]!; }
    this.ids = ids; this.keys = keys; this.pos = this.len;
  }

  /** raises the high-water mark only (ids read from a checkpoint or the journal, not kept in the ring) */
  raise(id: number | string): void {
    if (typeof id === 'number') { if (id > this.maxNum) this.maxNum = id; return; }
    const p = padId(id);
    if (this.maxBig === undefined || p > this.maxBig) this.maxBig = p;
  }

  /** true when `id` is above every id this controller has used: certainly unused */
  above(id: number | string): boolean {
    if (typeof id === 'number') return this.maxBig === undefined && id > this.maxNum;
    return this.maxBig === undefined || padId(id) > this.maxBig;
  }

  /** the high-water mark as Store.maxId gives it */
  get max(): number { return this.maxBig !== undefined ? Infinity : this.maxNum; }

  /**
   * Batch keys recorded for `id`, newest first (an id sent twice, e.g. after a failed commit, has more
   * than one; the caller takes the first whose batch exists).
   */
  *keysOf(id: number | string): Generator<number> {
    if (typeof id !== 'number') { const k = this.big?.get(id); if (k !== undefined) yield k; return; }
    const ids = this.ids, cap = ids.length;
    for (let n = 0, p = this.pos; n < this.len; n++) {
      p = p === 0 ? cap - 1 : p - 1;
      if (ids[p] === id) yield this.keys[p]!;
    }
  }
}
