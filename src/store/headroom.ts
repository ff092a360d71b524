/**
 * "Is there room on the disk again?" for the storage probe.
 * A small LMDB commit is no answer: on a full disk LMDB reuses free pages of
 * its own file, so a tiny probe write succeeds while the next real batch
 * still fails. Instead write HEADROOM_BYTES of real data into a scratch file
 * beside the store and delete it: that fails with ENOSPC/EDQUOT while the
 * disk (or quota) is full, without touching the LMDB file.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** free space the store wants before it declares itself healthy again after a failure */
export const HEADROOM_BYTES = 4 * 2 ** 20;
const CHUNK = Buffer.alloc(2 ** 20);

/** true when `headroomBytes` could be written in directory `dir` (0 bytes: always true) */
export function hasHeadroom(dir: string, headroomBytes = HEADROOM_BYTES): boolean {
  if (headroomBytes <= 0) return true;
  const path = join(dir, '.headroom-probe');
  let fd: number | undefined;
  try {
    fd = openSync(path, 'w', 0o600);
    for (let left = headroomBytes; left > 0;) {
      const n = writeSync(fd, CHUNK, 0, Math.min(CHUNK.length, left));
      if (n <= 0) return false;
      left -= n;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) try { closeSync(fd); } catch { /* ignore */ }
    try { unlinkSync(path); } catch { /* never created */ }
  }
}
