/**
 * The benchmarks' "bytes written" figures (bench/disk-writes.ts) count what reached the disk, not
 * /proc/PID/io write_bytes: on a kernel with large page-cache folios the latter counts a whole folio
 * per re-dirtied page, and this test shows the gap where it exists.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceWrittenBytes } from '../../bench/disk-writes.js';

const dir = mkdtempSync(join(tmpdir(), 'apb-diskw-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const onDevice = Number.isFinite(deviceWrittenBytes(dir, false));

describe('bench: bytes that reached the disk', () => {
  it('counts what a write and its sync send to the device', { skip: onDevice ? false : `${tmpdir()} has no block device (tmpfs?): nothing to count` }, () => {
    const fd = openSync(join(dir, 'f'), 'w+');
    try {
      const before = deviceWrittenBytes(dir);
      writeSync(fd, Buffer.alloc(8 * 2 ** 20, 1));
      fdatasyncSync(fd);
      const got = deviceWrittenBytes(dir) - before;
      // the device may also get the file system's journal and other writers' blocks: at least, not wildly more
      assert.ok(got >= 8 * 2 ** 20, `8 MiB written and synced, the device counted ${got} bytes`);
      assert.ok(got < 64 * 2 ** 20, `8 MiB written and synced, the device counted ${got} bytes`);
    } finally { closeSync(fd); }
  });

  it('small synced overwrites count about their blocks, not whole page-cache folios', { skip: onDevice ? false : 'no block device' }, () => {
    const fd = openSync(join(dir, 'g'), 'w+');
    const wb = (): number => Number(/write_bytes: (\d+)/.exec(readFileSync('/proc/thread-self/io', 'utf8'))?.[1] ?? NaN);
    try {
      writeSync(fd, Buffer.alloc(4 * 2 ** 20));
      fdatasyncSync(fd);
      const d0 = deviceWrittenBytes(dir), w0 = wb();
      const b = Buffer.alloc(100, 7);
      for (let i = 0; i < 50; i++) { writeSync(fd, b, 0, 100, i * 104); fdatasyncSync(fd); }
      const device = deviceWrittenBytes(dir) - d0, proc = wb() - w0;
      // 50 synced writes of 100 bytes: a 4 KiB block each plus the file system's journal blocks, if any
      assert.ok(device >= 50 * 100 && device < 50 * 64 * 1024, `device counted ${device} bytes for 50 synced 100-byte writes`);
      // what the old figure used, for the record (not asserted: it depends on the kernel's folio sizes)
      process.stdout.write(`# 50 synced 100-byte writes: device ${device} B, /proc/thread-self/io write_bytes ${proc} B\n`);
    } finally { closeSync(fd); }
  });
});
