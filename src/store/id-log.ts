/**
 * The memory store's idempotency record for the ids a controller sends in
 * rising order (the usual case): two typed arrays, appended to and searched by
 * bisection, trimmed from the front by retention.
 *
 *   ids[head .. len)   Float64  message ids, strictly rising
 *   seqs[head .. len)  Float64  the journal seq of each id's record (its reply
 *                               is re-encoded from that record)
 *
 * Why not a Map entry per message: a Map that holds every id of a busy
 * :memory: server (millions) costs a cache miss and, now and then, a rehash of
 * the whole table per insert (measured: Map.set was 43 % of the main thread at
 * 64 messages per frame); here an insert is two stores at the end of an array.
 * Ids that do not rise (or are not numbers) go to the store's general map.
 */
export class IdLog {
  private ids = new Float64Array(64);
  private seqs = new Float64Array(64);
  private head = 0;
  private len = 0;

  /** the last (largest) id, -Infinity when empty */
  get last(): number { return this.len > this.head ? this.ids[this.len - 1]! : -Infinity; }

  /** appends id (> last) taking seq */
  push(id: number, seq: number): void {
    if (this.len === this.ids.length) this.grow();
    this.ids[this.len] = id;
    this.seqs[this.len++] = seq;
  }

  /** the seq of id's record, or undefined */
  find(id: number): number | undefined {
    let lo = this.head, hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ids[mid]! < id) lo = mid + 1; else hi = mid;
    }
    return lo < this.len && this.ids[lo] === id ? this.seqs[lo] : undefined;
  }

  /** forgets the ids whose records have seq <= lastDeleted (retention deletes the oldest first) */
  trim(lastDeleted: number): void {
    while (this.head < this.len && this.seqs[this.head]! <= lastDeleted) this.head++;
    if (this.head === this.len) { this.head = this.len = 0; return; }
    if (this.head > 4096 && this.head * 2 > this.len) this.compactFront();
  }

  private grow(): void {
    // a front that retention emptied is reused before the arrays double
    if (this.head * 2 >= this.len) { this.compactFront(); return; }
    const ids = new Float64Array(this.ids.length * 2), seqs = new Float64Array(this.seqs.length * 2);
    ids.set(this.ids.subarray(0, this.len));
    seqs.set(this.seqs.subarray(0, this.len));
    this.ids = ids; this.seqs = seqs;
  }

  private compactFront(): void {
    this.ids.copyWithin(0, this.head, this.len);
    this.seqs.copyWithin(0, this.head, this.len);
    this.len -= this.head;
    this.head = 0;
  }
}
