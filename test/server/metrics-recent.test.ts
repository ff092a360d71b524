/**
 * The stream's once-a-second stats (server.ts): the latencies of the last second, as p50 and p99.
 * The window is a ring of the last 4,096 samples, sorted only when a viewer wants stats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/server/metrics.js';

test('takeRecent: p50 and p99 of the window in µs, numeric order, then a new window; dropRecent clears it unread', () => {
  const m = new Metrics();
  // 1..100 ms in a shuffled order (a string sort would put 10 before 9)
  const ms = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
  for (const x of ms) m.observeLatency(x / 1000);
  assert.deepEqual(m.takeRecent(), { p50: 51_000, p99: 100_000, n: 100 });
  assert.deepEqual(m.takeRecent(), { p50: 0, p99: 0, n: 0 }, 'the window starts again');
  for (let i = 0; i < 10; i++) m.observeLatency(0.002);
  m.dropRecent();
  m.observeLatency(0.009);
  assert.deepEqual(m.takeRecent(), { p50: 9000, p99: 9000, n: 1 });
});
