/**
 * src/store/lmdb-output.ts: LMDB's C code prints a raw "Write error: ..." on
 * stderr with no newline when a page write fails; whatever lmdb-js then
 * reports through the console (routed to the server's JSON log) must start on
 * a line of its own, whichever error it names. In the full-disk test the
 * commit after an ENOSPC page write was reported as "Input/output error"
 * (code 5), and the JSON line was glued to the raw one.
 *
 * A child process plays both parts: it writes the raw line to fd 2, then a
 * module under a `node_modules/lmdb/` path (where routeLibraryOutput looks for
 * its caller) calls console.error, and the sink writes a JSON line to fd 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUTPUT_JS = fileURLToPath(new URL('../../src/store/lmdb-output.js', import.meta.url));

function run(errorText: string, code?: number): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'apb-lmdb-output-'));
  try {
    mkdirSync(join(dir, 'node_modules', 'lmdb'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'lmdb', 'fake.mjs'),
      `export function fail(message, code) { const e = new Error(message); if (code !== undefined) e.code = code; console.error(e); }\n`);
    writeFileSync(join(dir, 'child.mjs'), [
      `import { writeSync } from 'node:fs';`,
      `import { routeLibraryOutput } from ${JSON.stringify(OUTPUT_JS)};`,
      `import { fail } from './node_modules/lmdb/fake.mjs';`,
      `routeLibraryOutput((level, text, err) => writeSync(2, JSON.stringify({ level, msg: 'lmdb: ' + text, code: err?.code }) + '\\n'));`,
      `writeSync(2, 'Write error: No space left on device position 49152, size 12288');`,
      `fail(${JSON.stringify(errorText)}, ${code ?? 'undefined'});`,
      `console.error('not from lmdb');`,
    ].join('\n'));
    const r = spawnSync(process.execPath, [join(dir, 'child.mjs')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr.split('\n').filter((l) => l.trim() !== '');
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

for (const [text, code] of [['Input/output error', 5], ['No space left on device: Attempting to write page at position 49152', 28], ['MDB_MAP_FULL: Environment mapsize limit reached', undefined]] as const) {
  test(`a routed lmdb-js error after LMDB's raw line starts a line of its own: "${text}"`, () => {
    const lines = run(text, code);
    assert.deepEqual(lines, [
      'Write error: No space left on device position 49152, size 12288',
      JSON.stringify({ level: 'error', msg: `lmdb: ${text}`, code }),
      'not from lmdb',
    ]);
  });
}

// The index worker's failed D/index write: the worker ends LMDB's raw line itself, but its C code may print
// another before the main thread logs the reported message; the main thread ends the line again first.
test("a D/index write failure reported by the index worker is logged on a line of its own after LMDB's raw line", () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-lmdb-output-'));
  try {
    const msg = 'indexer: No space left on device: Attempting to write page at position 45056, size 16384';
    writeFileSync(join(dir, 'child.mjs'), [
      `import { writeSync } from 'node:fs';`,
      `import { endNativeWriteLine } from ${JSON.stringify(OUTPUT_JS)};`,
      `writeSync(2, 'Write error: No space left on device position 45056, size 16384');`,
      `endNativeWriteLine(${JSON.stringify(msg)});`,
      `writeSync(2, JSON.stringify({ msg: 'lmdb: ' + ${JSON.stringify(msg)} }) + '\\n');`,
      `endNativeWriteLine('indexer: some other failure');`,
      `writeSync(2, 'x');`,
      `writeSync(2, 'y\\n');`,
    ].join('\n'));
    const r = spawnSync(process.execPath, [join(dir, 'child.mjs')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stderr.split('\n').filter((l) => l.trim() !== ''), [
      'Write error: No space left on device position 45056, size 16384',
      JSON.stringify({ msg: `lmdb: ${msg}` }),
      'xy', // a message that names no storage failure adds no line
    ]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

// Another thread's C code (the index worker's LMDB) may print its raw line between any two writes of the
// main thread: after a failed page write the server's logger starts each line with a newline in the same
// write, so a line of ours is never glued to such a raw line (the full-disk test saw exactly that).
test("after a failed page write the server's log lines start on a line of their own, whatever printed last", () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-lmdb-output-'));
  try {
    const LOG_JS = fileURLToPath(new URL('../../src/server/log.js', import.meta.url));
    writeFileSync(join(dir, 'child.mjs'), [
      `import { writeSync } from 'node:fs';`,
      `import { endNativeWriteLine } from ${JSON.stringify(OUTPUT_JS)};`,
      `import { createLogger } from ${JSON.stringify(LOG_JS)};`,
      `const log = createLogger('info');`,
      `log.info('before');`,
      `writeSync(2, 'Write error: No space left on device position 45056, size 4096');`,
      `endNativeWriteLine(new Error('No space left on device: Attempting to write page at position 45056, size 4096'));`,
      `writeSync(2, 'Write error: No space left on device position 73728, size 16384');`, // another thread's, later
      `log.error('lmdb: No space left on device: Attempting to write page at position 73728, size 16384');`,
      `writeSync(2, 'Write error: No space left on device position 77824, size 4096');`,
      `log.warn('after');`,
    ].join('\n'));
    const r = spawnSync(process.execPath, [join(dir, 'child.mjs')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stderr.startsWith('{'), 'no newline before a line while no page write failed');
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.deepEqual(lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string }).msg : l)), [
      'before',
      'Write error: No space left on device position 45056, size 4096',
      'Write error: No space left on device position 73728, size 16384',
      'lmdb: No space left on device: Attempting to write page at position 73728, size 16384',
      'Write error: No space left on device position 77824, size 4096',
      'after',
    ]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
