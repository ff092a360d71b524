/**
 * The error codes are a published contract: README's "Error codes" table and
 * src/errors.ts ERROR_CODES must list the same codes with the same HTTP
 * status, and every code a controller can receive on its WebSocket must be
 * defined and explained in the controller protocol page (src/docs/protocol.md).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApbError, ERROR_CODES, HTTP_STATUS, type ErrorCode } from '../src/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function readmeTable(): Map<string, string> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Error codes');
  assert.ok(start >= 0, 'README.md has an "## Error codes" section');
  const end = readme.indexOf('\n## ', start + 5);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([a-z_]+)`\s*\|\s*([0-9—-]+)\s*\|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

test('README error table lists exactly the codes of ERROR_CODES', () => {
  const rows = readmeTable();
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CODES).sort());
});

test('README error table gives each code its HTTP status', () => {
  for (const [code, status] of readmeTable()) {
    const expected = HTTP_STATUS[code as ErrorCode];
    assert.equal(status, expected === undefined ? '—' : String(expected), `status of ${code}`);
  }
});

/** the codes a controller of protocol native can get on /v1/controller (the published protocol) */
const WIRE_CODES = ['bad_frame', 'bad_message', 'unknown_type', 'forbidden_reader', 'too_large', 'rate_limited', 'storage_unavailable', 'not_ready', 'internal'];

test('every wire error code is defined and explained in the protocol page', () => {
  const page = readFileSync(join(root, 'src', 'docs', 'protocol.md'), 'utf8');
  const start = page.indexOf('\n## Errors');
  assert.ok(start >= 0, 'src/docs/protocol.md has an "## Errors" section');
  const section = page.slice(start, page.indexOf('\n## ', start + 5));
  for (const c of WIRE_CODES) {
    assert.ok(c in ERROR_CODES, `wire code ${c} is in ERROR_CODES`);
    assert.match(section, new RegExp('^\\| `' + c + '` \\|', 'm'), `protocol.md's error table has a row for ${c}`);
  }
  // and it names no code the engine does not have
  for (const m of section.matchAll(/^\| `([a-z_]+)` \|/gm)) assert.ok(m[1]! in ERROR_CODES, `protocol.md's code ${m[1]} is in ERROR_CODES`);
});

test('ApbError carries code, status and detail', () => {
  const e = new ApbError('too_large', 'frame of 2000000 bytes exceeds 1048576', { size: 2000000 });
  assert.equal(e.code, 'too_large');
  assert.equal(e.status, 413);
  assert.deepEqual(e.detail, { size: 2000000 });
  assert.ok(e instanceof Error);
  assert.equal(new ApbError('abi_mismatch', 'x').status, 500);
});
