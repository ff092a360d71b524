/**
 * src/engine/messages.ts: message validation in wire and replay mode, the
 * reply encoding, and the replay/journal line form (bigint- and binary-safe
 * JSON) round-tripping every op.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeResult, parseReplayLine, stringifyReplay, toReplayObject } from '../../src/engine/messages.js';
import type { CoreOp } from '../../src/engine/types.js';
import { MAX_TIME } from '../../src/engine/types.js';
import { bin, int, site, str } from './harness.js';

const S = site(`areas:
  - { id: hall, entry: hard }
  - { id: vip, parent: hall }
readers:
  - { id: in, from: outside, to: hall, controller: c }
`);

const code = (f: () => unknown): string => {
  try { f(); } catch (e) { return `${(e as { code: string }).code}: ${(e as Error).message}`; }
  return 'no error';
};

test('wire mode: id required and range-checked, ts optional, extra fields ignored', () => {
  const d = decodeMessage({ t: 'badge', id: 7, cred: 5, reader: 'in', future: { x: 1 } }, S, { mode: 'wire' });
  assert.deepEqual(d, { t: 'badge', op: { op: 'badge', cred: int(5), reader: 0 }, id: 7 });
  assert.equal(decodeMessage({ t: 'badge', id: 2n ** 64n - 1n, cred: 5, reader: 'in' }, S, { mode: 'wire' }).id, 2n ** 64n - 1n);
  assert.equal(decodeMessage({ t: 'badge', id: 5n, cred: 5, reader: 'in' }, S, { mode: 'wire' }).id, 5, 'small bigint ids become numbers');
  assert.match(code(() => decodeMessage({ t: 'badge', cred: 5, reader: 'in' }, S, { mode: 'wire' })), /^bad_message: id: missing/);
  assert.match(code(() => decodeMessage({ t: 'badge', id: -1, cred: 5, reader: 'in' }, S, { mode: 'wire' })), /^bad_message: id:/);
  assert.match(code(() => decodeMessage({ t: 'badge', id: 2n ** 64n, cred: 5, reader: 'in' }, S, { mode: 'wire' })), /^bad_message: id:/);
  assert.match(code(() => decodeMessage({ t: 'badge', id: 1.5, cred: 5, reader: 'in' }, S, { mode: 'wire' })), /^bad_message: id:/);
  assert.deepEqual(decodeMessage({ t: 'ping', id: 1 }, S, { mode: 'wire' }), { t: 'ping', op: null, id: 1 });
  assert.match(code(() => decodeMessage({ t: 'forgive', id: 1, cred: 5 }, S, { mode: 'wire' })), /^unknown_type/);
  assert.equal(decodeMessage({ t: 'passage', id: 1, cred: 5, reader: 'in', ts: 9 }, S, { mode: 'wire' }).ts, 9);
  assert.match(code(() => decodeMessage({ t: 'offline', id: 1, cred: 5, reader: 'in', granted: true }, S, { mode: 'wire' })), /^bad_message: ts: missing/);
});

test('field validation names the field', () => {
  const m = (extra: Record<string, unknown>) => code(() => decodeMessage({ t: 'badge', cred: 5, reader: 'in', ts: 1, ...extra }, S, { mode: 'replay' }));
  assert.match(m({ t: 5 }), /^bad_message: t:/);
  assert.match(m({ t: 'hello' }), /^unknown_type: t:/);
  assert.match(m({ cred: -1 }), /^bad_message: cred:/);
  assert.match(m({ cred: '' }), /^bad_message: cred:/);
  assert.match(m({ cred: 'x'.repeat(65) }), /^bad_message: cred:/);
  assert.match(m({ cred: new Uint8Array(33) }), /^bad_message: cred:/);
  assert.match(m({ cred: true }), /^bad_message: cred:/);
  assert.match(m({ reader: 3 }), /^bad_message: reader:/);
  assert.match(m({ ts: -1 }), /^bad_message: ts:/);
  assert.match(m({ ts: MAX_TIME + 1 }), /^bad_message: ts:/);
  assert.match(m({ ts: 1.5 }), /^bad_message: ts:/);
  assert.match(m({ ts: '5' }), /^bad_message: ts:/);
  assert.equal(m({ ts: MAX_TIME }), 'no error');
  assert.deepEqual(decodeMessage({ t: 'badge', cred: 5, reader: 'nowhere', ts: 1 }, S, { mode: 'replay' }).op, { op: 'badge', cred: int(5), reader: -1 });
  assert.match(code(() => decodeMessage({ t: 'resetArea', area: 'lobby', ts: 1 }, S, { mode: 'replay' })), /^unknown_area: area: unknown area "lobby"/);
  assert.match(code(() => decodeMessage({ t: 'setLocation', cred: 1, area: 3, ts: 1 }, S, { mode: 'replay' })), /^bad_message: area:/);
  assert.match(code(() => decodeMessage({ t: 'offline', cred: 1, reader: 'in', ts: 1, granted: 'yes' }, S, { mode: 'replay' })), /^bad_message: granted:/);
  assert.match(code(() => decodeMessage({ t: 'ping', ts: 1 }, S, { mode: 'replay' })), /^unknown_type/);
});

test('replay lines: integers beyond 2^53 stay exact, binary is {"hex"}, non-objects are bad_frame', () => {
  assert.deepEqual(parseReplayLine('{"cred":18446744073709551615,"ts":1}'), { cred: 18446744073709551615n, ts: 1 });
  assert.deepEqual(parseReplayLine('{"cred":9007199254740993}'), { cred: 9007199254740993n });
  assert.deepEqual(parseReplayLine('{"cred":9007199254740991}'), { cred: 9007199254740991 });
  assert.deepEqual(parseReplayLine(' {"cred" : {"hex":"00ff"} , "s":"1234567890123456789"} '), { cred: Uint8Array.from([0, 255]), s: '1234567890123456789' });
  assert.match(code(() => parseReplayLine('{"cred":{"hex":"0"}}')), /^bad_message: cred:/);
  assert.match(code(() => parseReplayLine('{"cred":1')), /^bad_frame/);
  assert.match(code(() => parseReplayLine('{"cred":12345678901234567890,}')), /^bad_frame/);
  assert.match(code(() => parseReplayLine('[1]')), /^bad_frame/);
  assert.match(code(() => parseReplayLine('null')), /^bad_frame/);
  assert.match(code(() => parseReplayLine('"x"')), /^bad_frame/);
});

test('every op survives toReplayObject -> stringifyReplay -> parseReplayLine -> decodeMessage', () => {
  const ops: CoreOp[] = [
    { op: 'badge', cred: int(2n ** 64n - 1n), reader: 0 },
    { op: 'passage', cred: str('ticket "7" ✓'), reader: 0 },
    { op: 'offline', cred: bin('04a1b2'), reader: 0, ts: 123, granted: false },
    { op: 'forgive', cred: int(0) },
    { op: 'reset', cred: str('123') },
    { op: 'exempt', cred: int(9), on: true },
    { op: 'setLocation', cred: int(9), area: 2 },
    { op: 'resetArea', area: 0 },
  ];
  for (const op of ops) {
    const line = stringifyReplay(toReplayObject(op, S, 1000));
    const d = decodeMessage(parseReplayLine(line), S, { mode: 'replay' });
    assert.deepEqual(d.op, op, line);
    assert.equal(d.ts, op.op === 'offline' ? 123 : 1000);
  }
});

const SEEN = { location: -1, lastMoveAt: 0, lastReader: -1, lastReaderAt: 0, freePass: false, exempt: false, supervisor: false, pending: null };

test('encodeResult: decisions carry area ids (null for reuse), everything else is an ack', () => {
  assert.deepEqual(encodeResult({ op: 'badge', grant: true, reason: 'soft_violation', violations: [{ code: 'reuse', mode: 'soft', area: -1 }, { code: 'reentry', mode: 'soft', area: 1 }], area: 2, pending: false, seen: SEEN }, S),
    { t: 'decision', grant: true, reason: 'soft_violation', violations: [{ code: 'reuse', mode: 'soft', area: null }, { code: 'reentry', mode: 'soft', area: 'hall' }], area: 'vip' });
  assert.deepEqual(encodeResult({ op: 'badge', grant: false, reason: 'unknown_reader', violations: [], area: -1, pending: false, seen: SEEN }, S),
    { t: 'decision', grant: false, reason: 'unknown_reader', violations: [] });
  assert.deepEqual(encodeResult({ op: 'offline', applied: true, violations: [], seen: SEEN }, S), { t: 'ack' });
  assert.deepEqual(encodeResult({ op: 'resetArea', changed: 3 }, S), { t: 'ack' });
});
