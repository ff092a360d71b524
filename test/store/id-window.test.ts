/** The in-memory idempotency window (id-window.ts): what it answers without a read, and what it says it lost. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IdWindow, WINDOW } from '../../src/store/id-window.js';

describe('IdWindow', () => {
  it('keeps the last WINDOW ids with their batch keys, newest first, and names the newest key it evicted', () => {
    const w = new IdWindow(7);
    assert.equal(w.max, -1);
    assert.equal(w.above(0), true);
    for (let i = 1; i <= WINDOW + 10; i++) w.note(i, 100 + i);
    assert.equal(w.max, WINDOW + 10);
    assert.equal(w.above(WINDOW + 11), true);
    assert.equal(w.above(WINDOW + 10), false);
    assert.deepEqual([...w.keysOf(11)], [111]);
    assert.deepEqual([...w.keysOf(10)], [], 'evicted');
    assert.equal(w.evicted, 110, 'ids of batches up to key 110 may be missing');
    assert.deepEqual([...w.keysOf(WINDOW + 10)], [100 + WINDOW + 10]);
    w.note(500, 9999); // an id sent again (a failed commit, then a resend): newest first
    assert.deepEqual([...w.keysOf(500)], [9999, 600]);
  });

  it('ids above 2^53-1 (strings): kept beside the ring; the high-water mark turns Infinity', () => {
    const w = new IdWindow(0);
    w.note(5, 1);
    w.note('18446744073709551615', 2);
    assert.equal(w.max, Infinity);
    assert.deepEqual([...w.keysOf('18446744073709551615')], [2]);
    assert.equal(w.above('18446744073709551614'), false);
    assert.equal(w.above(6), false, 'nothing numeric is provably unused once a string id was used');
    w.raise('9007199254740993');
    assert.equal(w.above('18446744073709551615'), false);
  });

  it('raise moves the high-water mark without remembering a batch', () => {
    const w = new IdWindow(50);
    w.raise(40);
    assert.equal(w.max, 40);
    assert.deepEqual([...w.keysOf(40)], []);
    assert.equal(w.evicted, 50);
  });
});
