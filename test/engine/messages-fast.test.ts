/**
 * The wire-badge fast path of decodeMessage (src/engine/messages.ts) must
 * answer exactly like the general path: same Decoded value, or the same
 * error code and message. fast-check builds messages from field values near
 * every boundary the general path checks (types, ranges, inherited fields,
 * explicit undefined), plus the ASCII fast path of string credentials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeGeneral, decodeMessage } from '../../src/engine/messages.js';
import { parseCred } from '../../src/engine/cred.js';
import { MAX_TIME } from '../../src/engine/types.js';
import { site } from './harness.js';

const S = site(`areas:
  - { id: hall, entry: hard }
readers:
  - { id: in, from: outside, to: hall, controller: c }
  - { id: out, from: hall, to: outside, controller: c }
`);

type Outcome = { ok: unknown } | { err: string };
function outcome(f: () => unknown): Outcome {
  try { return { ok: f() }; } catch (e) { return { err: `${(e as { code?: string }).code}: ${(e as Error).message}` }; }
}

const ABSENT = Symbol('absent');
const numbers = [0, 1, 7, -0, -1, 1.5, 2 ** 53 - 1, 2 ** 53, MAX_TIME, MAX_TIME + 1, NaN, Infinity];
const anyValue = fc.oneof(
  fc.constantFrom<unknown>(ABSENT, undefined, null, true, 'in', 'out', 'nope', '', 'é', 'x'.repeat(64), 'x'.repeat(65), 'é'.repeat(33), 5n, -1n, 2n ** 64n, new Uint8Array([1, 2]), [], {}),
  fc.constantFrom(...numbers),
  fc.nat(),
  fc.string({ maxLength: 70 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

/** a message: each field absent, own, or (sometimes) inherited from a prototype */
const message = fc.record({
  t: fc.oneof(fc.constant<unknown>('badge'), fc.constantFrom<unknown>('passage', 'offline', 'ping', 'forgive', 'x', 5, ABSENT)),
  id: anyValue, ts: anyValue, cred: anyValue, reader: anyValue, granted: fc.constantFrom<unknown>(ABSENT, true, 'yes'),
  inherited: fc.subarray(['t', 'id', 'ts', 'cred', 'reader']),
}).map(({ inherited, ...fields }) => {
  const proto: Record<string, unknown> = {};
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === ABSENT) continue;
    (inherited.includes(k) ? proto : own)[k] = v;
  }
  return inherited.length ? Object.assign(Object.create(proto) as Record<string, unknown>, own) : own;
});

test('wire badges: the fast path equals the general path, results and errors', () => {
  fc.assert(fc.property(message, (msg) => {
    assert.deepStrictEqual(outcome(() => decodeMessage(msg, S, { mode: 'wire' })), outcome(() => decodeGeneral(msg, S, 'wire')));
  }), { numRuns: 3000 });
});

test('common wire badges decode as before (integer and string credentials, known and unknown readers)', () => {
  const d = decodeMessage({ t: 'badge', id: 3, cred: 42, reader: 'out' }, S, { mode: 'wire' });
  assert.deepStrictEqual(d, { t: 'badge', op: { op: 'badge', cred: { kind: 'int', value: 42n }, reader: 1 }, id: 3 });
  const e = decodeMessage({ t: 'badge', id: 4, cred: 'card-9', reader: 'zz', ts: 12 }, S, { mode: 'wire' });
  assert.deepStrictEqual(e, { t: 'badge', op: { op: 'badge', cred: { kind: 'str', value: 'card-9', bytes: new TextEncoder().encode('card-9') }, reader: -1 }, id: 4, ts: 12 });
});

test('string credentials: bytes equal TextEncoder output and the limits hold', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
    const want = new TextEncoder().encode(s);
    const got = outcome(() => parseCred(s));
    if (want.length >= 1 && want.length <= 64) assert.deepStrictEqual(got, { ok: { kind: 'str', value: s, bytes: want } });
    else assert.deepStrictEqual(got, { err: 'bad_message: cred: string must be 1-64 UTF-8 bytes' });
  }), { numRuns: 2000 });
});
