/**
 * The error codes are a published contract: README's "Error codes" table and
 * src/errors.ts ERROR_CODES must list the same codes with the same HTTP
 * status, and PROTOCOL.md's wire codes must all exist.
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

test('every wire error code of PROTOCOL.md v1 is defined', () => {
  // PROTOCOL.md "Frames": the codes a controller must handle (the contract lives outside the repo)
  for (const c of ['bad_frame', 'bad_message', 'unknown_type', 'forbidden_reader', 'unknown_area', 'too_large', 'rate_limited', 'storage_unavailable']) {
    assert.ok(c in ERROR_CODES, `PROTOCOL.md code ${c} is in ERROR_CODES`);
  }
});

test('ApbError carries code, status and detail', () => {
  const e = new ApbError('too_large', 'frame of 2000000 bytes exceeds 1048576', { size: 2000000 });
  assert.equal(e.code, 'too_large');
  assert.equal(e.status, 413);
  assert.deepEqual(e.detail, { size: 2000000 });
  assert.ok(e instanceof Error);
  assert.equal(new ApbError('abi_mismatch', 'x').status, 500);
});
