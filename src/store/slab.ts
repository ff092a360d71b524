/**
 * Small typed arrays carved out of shared ArrayBuffers (slabs), for arrays made once per frame on the
 * hot path (a frame's reply bytes and its id table, a compact group's records).
 *
 * Why: in V8 a typed array over 64 bytes gets its own malloc'd backing store, freed again by the
 * garbage collector, and its external-memory accounting brings the next collection forward; a smaller
 * one lives on the JS heap until its `.buffer` is read or native code (uWS `send`, a DataView) needs
 * it, when it is moved off the heap: a malloc and a copy. At one message per frame that was about a
 * tenth of the main thread. A view into a slab costs only its JS object.
 *
 *   slab (SLAB_BYTES)  ┌──────┬────┬──────────┬─────┬──────────────── free ──┐
 *                      │ view │pad │   view   │ ... │                        │
 *                      └──────┴────┴──────────┴─────┴────────────────────────┘
 *                        off advances (8-byte aligned); a request that does not fit starts a new slab
 *
 * A slab is freed when its last view is collected, so views that live long keep their whole slab:
 * callers whose arrays outlive others (the memory store keeps every group) use a slab of their own.
 * Requests over a quarter of a slab get an ArrayBuffer of their own.
 */
export const SLAB_BYTES = 64 * 1024;

export class Slab {
  private buf: ArrayBuffer;
  private off = 0;

  constructor(private readonly size = SLAB_BYTES) { this.buf = new ArrayBuffer(size); }

  /** byte offset of `bytes` fresh (zeroed: a slab is never reused) bytes in this.buf */
  private take(bytes: number): number {
    if (this.off + bytes > this.size) { this.buf = new ArrayBuffer(this.size); this.off = 0; }
    const at = this.off;
    this.off = (at + bytes + 7) & ~7;
    return at;
  }

  u8(n: number): Uint8Array {
    if (n > this.size >>> 2) return new Uint8Array(n);
    const at = this.take(n);
    return new Uint8Array(this.buf, at, n);
  }

  f64(n: number): Float64Array {
    if (n * 8 > this.size >>> 2) return new Float64Array(n);
    const at = this.take(n * 8);
    return new Float64Array(this.buf, at, n);
  }

  /** a copy of src[from, to) */
  copy(src: Uint8Array, from: number, to: number): Uint8Array {
    const n = to - from, out = this.u8(n);
    if (n <= 64) for (let i = 0; i < n; i++) out[i] = src[from + i]!; // no subarray object for a small copy
    else out.set(src.subarray(from, to));
    return out;
  }
}
