/**
 * Engine.restoreFromFile: a snapshot read from a file (straight into WASM
 * memory for the wasm core; through a buffer for the reference core) gives
 * the same engine as restore(bytes), and a bad file fails exactly as
 * restore(bytes) does with the engine unchanged.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../../src/engine/engine.js';
import type { Engine } from '../../src/engine/types.js';
import { ApbError } from '../../src/errors.js';
import { SEC, T0, int, siteOf } from './wasm-util.js';

const SITE = `areas:
  - { id: campus, entry: hard, exit: soft }
  - { id: building, parent: campus, entry: hard, presenceTimeout: 40 }
readers:
  - { id: gate-in, from: outside, to: campus, controller: c }
  - { id: gate-out, from: campus, to: outside, controller: c }
  - { id: b-in, from: campus, to: building, controller: c }`;

const PAD = 37; // the snapshot starts at an odd offset in the file: position is honoured

function loaded(kind: 'wasm' | 'reference'): Engine {
  const e = createEngine(siteOf(SITE, 90), { core: kind });
  for (let i = 0; i < 3000; i++) e.apply([{ op: 'badge', cred: int(1000 + i), reader: i % 3 }], T0 + i * SEC);
  return e;
}

/** runs f(fd, length) on a temp file holding PAD junk bytes then `bytes` */
function withFile<T>(bytes: Uint8Array, f: (fd: number) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'apb-restore-file-'));
  try {
    const p = join(dir, 'snap');
    const buf = new Uint8Array(PAD + bytes.length).fill(0xA5);
    buf.set(bytes, PAD);
    writeFileSync(p, buf);
    const fd = openSync(p, 'r');
    try { return f(fd); } finally { closeSync(fd); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** the error restore(bytes) throws, or undefined */
function errorOf(f: () => void): ApbError | undefined {
  try { f(); return undefined; } catch (e) { assert.ok(e instanceof ApbError, `an ApbError, got ${String(e)}`); return e; }
}

describe('Engine.restoreFromFile', () => {
  for (const kind of ['wasm', 'reference'] as const) {
    test(`${kind}: restores the same engine as restore(bytes)`, () => {
      const a = loaded(kind);
      const snap = a.snapshot();
      const b = createEngine(siteOf(SITE, 90), { core: kind });
      b.apply([{ op: 'badge', cred: int(7), reader: 0 }], T0); // state the restore must replace
      withFile(snap, (fd) => b.restoreFromFile!(fd, PAD, snap.length));
      assert.deepEqual(b.snapshot(), snap, 'byte-identical snapshot');
      assert.equal(b.clock, a.clock);
      assert.equal(b.state(int(7)).stored, false);
      assert.equal(b.core.size(), a.core.size());
      for (let x = 0; x < 2; x++) assert.equal(b.occupancy(x), a.occupancy(x));
      const op = { op: 'badge' as const, cred: int(1001), reader: 0 };
      assert.deepEqual(b.apply([op], a.clock + 5 * SEC), a.apply([op], a.clock + 5 * SEC));
    });

    test(`${kind}: a bad snapshot file fails as restore(bytes) does and leaves the engine unchanged`, () => {
      const good = loaded(kind).snapshot();
      const flip = (at: number): Uint8Array => { const c = Uint8Array.from(good); c[at] = c[at]! ^ 0xFF; return c; };
      const cases: { name: string; bytes: Uint8Array; length?: number }[] = [
        { name: 'engine magic', bytes: flip(0) },
        { name: 'core magic', bytes: flip(28) },
        { name: 'core header (area count)', bytes: flip(28 + 16 + 8) },
        { name: 'truncated', bytes: good.subarray(0, good.length - 10) },
        { name: 'trailing bytes', bytes: Uint8Array.from([...good.subarray(0, 24), ...new Uint8Array(4), ...good.subarray(28), 1, 2, 3]) },
        { name: 'too short', bytes: good.subarray(0, 20) },
        { name: 'file shorter than the length given', bytes: good.subarray(0, good.length - 10), length: good.length },
      ];
      // trailing bytes: fix the engine header's length so that only the core sees the extra bytes
      const tb = cases[4]!.bytes;
      new DataView(tb.buffer).setUint32(24, tb.length - 28, true);
      const e = loaded(kind);
      const before = e.snapshot();
      for (const c of cases) {
        const len = c.length ?? c.bytes.length;
        const fromFile = withFile(c.bytes, (fd) => errorOf(() => e.restoreFromFile!(fd, PAD, len)));
        assert.ok(fromFile, `${c.name}: rejected`);
        assert.equal(fromFile.code, 'bad_message', `${c.name}: code`);
        if (c.length === undefined) {
          const fromBytes = errorOf(() => e.restore(c.bytes));
          assert.equal(fromFile.message, fromBytes?.message, `${c.name}: same error as restore(bytes)`);
        }
        assert.deepEqual(e.snapshot(), before, `${c.name}: engine unchanged`);
      }
    });
  }
});
