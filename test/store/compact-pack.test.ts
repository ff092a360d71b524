/**
 * compact-pack.ts writes the MessagePack of a compact journal value by hand: whatever the groups
 * hold (names of any length and script, numbers of every range, records of any size), msgpackr (the
 * store's and the WAL's decoders) must read it back as the value msgpackr's own encoder writes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { CompactPacker, type CompactBatch } from '../../src/store/compact-pack.js';
import type { CompactGroup } from '../../src/store/compact-journal.js';

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'auto' } as never);
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, int64AsType: 'auto' } as never);

const name = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ minLength: 80, maxLength: 400 }), fc.constant('é'.repeat(86)), fc.constant('x'.repeat(255)), fc.constant('x'.repeat(256)));
const num = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 32 }), fc.integer({ min: 0, max: 127 }), fc.maxSafeInteger(), fc.double({ noNaN: true }), fc.constantFrom(0, -1, -32, -33, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -(2 ** 31) - 1, 1_767_261_600_000, 2 ** 53 - 1, 0.5));
const group: fc.Arbitrary<CompactGroup> = fc.record({
  c: name, r: fc.array(name, { maxLength: 20 }), a: fc.array(name, { maxLength: 3 }), n: num,
  b: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 65_530, maxLength: 65_540 })),
  v: fc.option(fc.constantFrom(2), { nil: undefined }),
}).map((g) => { if (g.v === undefined) delete (g as { v?: number }).v; return g as CompactGroup; });
const batch: fc.Arbitrary<CompactBatch> = fc.record({ s: num, n: num, a0: num, a1: num, k: fc.array(group, { maxLength: 20 }) });

describe('CompactPacker', () => {
  it('reads back as the value msgpackr writes, through the same decoder', () => {
    const packer = new CompactPacker();
    fc.assert(fc.property(batch, (b) => {
      const mine = packer.pack(b);
      assert.deepEqual(unpackr.unpack(mine), unpackr.unpack(packr.pack(b)));
    }), { numRuns: 300 });
  });

  it('every payload stays as it was packed (later packs do not overwrite it)', () => {
    const packer = new CompactPacker();
    const made: [Uint8Array, Buffer][] = [];
    for (let i = 0; i < 2000; i++) {
      const g: CompactGroup = { c: `c${i}`, r: ['r-in'], a: [], n: 1, b: Uint8Array.from({ length: 48 }, (_, k) => (i + k) & 255), v: 2 };
      const p = packer.pack({ s: i * 3 + 1, n: 1, a0: 1_767_261_600_000 + i, a1: 1_767_261_600_000 + i, k: [g] });
      made.push([p, Buffer.from(p)]);
    }
    for (const [p, copy] of made) assert.deepEqual(Buffer.from(p), copy);
  });
});
