/**
 * The index worker hashes the credentials and message ids of compact records without making their
 * text (fingerprint.ts). A query hashes a credential's text (derived-index.ts keysOf), and indexes
 * built by earlier versions hashed the ids' text too: the two must agree on every number, or a query
 * would miss what the indexer wrote.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FNV_BASIS, continueNumber, fingerprint } from '../../src/store/fingerprint.js';
import { ChunkEntries, entriesOf, idemFingerprint } from '../../src/store/derived-index.js';
import { compactRecords, f64At } from '../../src/store/compact-journal.js';
import { padId } from '../../src/store/common.js';
import { group } from './journal-util.js';

const numbers = fc.oneof(
  fc.nat(),
  fc.maxSafeNat(),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(0, -0, 9, 10, 99, 100, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1.5, -1.5, NaN, Infinity, -Infinity, 123456789012345680000),
  fc.double(),
);

/** the pairs of one index, as a sorted list of "h key" */
function pairs(list: { h: Uint32Array; k: Float64Array; n: number }): string[] {
  return Array.from({ length: list.n }, (_, i) => `${list.h[i]} ${list.k[i]}`).sort();
}

describe('D/index fingerprints of numbers', () => {
  it('continueNumber hashes exactly the text String(x) (padded) would give', () => {
    fc.assert(fc.property(numbers, fc.constantFrom(0, 1, 5, 20, 25), (x, width) => {
      assert.equal(continueNumber(FNV_BASIS, x) >>> 0, fingerprint(String(x)), `String(${x})`);
      assert.equal(continueNumber(FNV_BASIS, x, width) >>> 0, fingerprint(String(x).padStart(width, '0')), `${x} padded to ${width}`);
    }), { numRuns: 5000 });
  });

  it('idemFingerprint is the fingerprint of the name queries look ids up by (controller NUL padded id)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 12 }), fc.oneof(numbers, fc.string({ maxLength: 25 })), (c, id) => {
      assert.equal(idemFingerprint(c, id), fingerprint(`${c}\u0000${padId(id)}`));
    }), { numRuns: 3000 });
  });

  it('f64At reads the little-endian f64 a DataView reads, at any offset of any view', () => {
    fc.assert(fc.property(fc.array(fc.double(), { minLength: 1, maxLength: 8 }), fc.nat(7), (xs, shift) => {
      const buf = new Uint8Array(8 * xs.length + 16);
      const view = buf.subarray(shift, shift + 8 * xs.length + 1); // an offset view, as slab views are
      const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
      xs.forEach((x, i) => dv.setFloat64(8 * i, x, true));
      xs.forEach((x, i) => assert.ok(Object.is(f64At(view, 8 * i), x), `${x} at ${8 * i}`));
    }), { numRuns: 2000 });
  });

  it('a compact batch gives the same entries as the same batch by its names', () => {
    for (const [n, first] of [[1, 1], [7, 123_456_789], [300, 2 ** 40]] as const) {
      const g = group('ctl-7', first, n, n);
      const fromRecords = new ChunkEntries();
      const recs = [...compactRecords(g)];
      fromRecords.addNames(5, recs[0]!.at, recs.map((r) => String(r.cred)), [...new Set(recs.map((r) => r.reader))], recs.map((r) => [g.c, r.id] as const));
      const read = new ChunkEntries();
      entriesOf(5, { s: 5, n, a0: recs[0]!.at, k: g }, read);
      for (const kind of ['cred', 'reader', 'idem'] as const) assert.deepEqual(pairs(read[kind]), pairs(fromRecords[kind]), `${kind}, ${n} records`);
      assert.deepEqual(read.spans, [{ key: 5, a0: recs[0]!.at }]);
      assert.equal(read.events, n);
      assert.equal(read.skipped, 0);
    }
  });
});
