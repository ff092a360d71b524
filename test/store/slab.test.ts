/**
 * slab.ts: per-frame typed arrays carved out of shared buffers must never overlap, start zeroed,
 * keep f64 views aligned, roll over to a new slab when one is full, and give large requests a
 * buffer of their own.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Slab } from '../../src/store/slab.js';

describe('Slab', () => {
  it('views never overlap, start zeroed and aligned, whatever the sizes asked', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 })), { minLength: 1, maxLength: 200 }), (reqs) => {
      const slab = new Slab(1024);
      const seen = new Map<ArrayBuffer, [number, number][]>();
      reqs.forEach(([f64, n], k) => {
        const v = f64 ? slab.f64(n) : slab.u8(n);
        assert.equal(v.length, n);
        assert.ok(v.every((x) => x === 0), 'fresh memory is zeroed');
        if (f64) assert.equal(v.byteOffset % 8, 0, 'f64 views are aligned');
        v.fill(k + 1); // a later view that overlapped would not read zeros
        const spans = seen.get(v.buffer as ArrayBuffer) ?? [];
        for (const [a, b] of spans) assert.ok(v.byteOffset >= b || v.byteOffset + v.byteLength <= a, 'no overlap');
        spans.push([v.byteOffset, v.byteOffset + v.byteLength]);
        seen.set(v.buffer as ArrayBuffer, spans);
        if (v.byteLength > 256) assert.equal(v.buffer.byteLength, v.byteLength, 'over a quarter of the slab: a buffer of its own');
      });
    }));
  });

  it('copy gives the bytes asked for, in a slab', () => {
    const slab = new Slab(1024);
    const src = Uint8Array.from({ length: 50 }, (_, i) => i * 3);
    const a = slab.copy(src, 5, 20), b = slab.copy(src, 0, 50);
    assert.deepEqual([...a], [...src.subarray(5, 20)]);
    assert.deepEqual([...b], [...src]);
    assert.equal(a.buffer, b.buffer, 'both from one slab');
    src.fill(0);
    assert.equal(a[1], 18, 'a copy, not a view of the source');
  });
});
