/**
 * What reached the disk: bytes written to the block device holding a path, for the benchmarks'
 * "bytes written per message / record" figures.
 *
 * Why not /proc/PID/io write_bytes (what these figures used before 2026-12-07): on a kernel whose
 * page cache uses large folios (this VM's 6.18 with ext4) it counts a whole folio, up to 2 MiB, each
 * time one page of it is dirtied again after a sync. 100 bytes written and fdatasync-ed 100 times
 * counted 200 MiB; the write-ahead log, written and synced in small pieces, showed 17 KB per message
 * while the device received about 1 KB.
 *
 * The device's counter (/sys/dev/block/MAJ:MIN/stat, sectors written × 512) is machine-wide: it
 * includes the file system's own journal (a real cost of our writes) and anything else writing to
 * that disk meanwhile, so run nothing else. `settle` first syncs the file system (`sync -f`), so the
 * dirty pages of a window are counted in that window and not in a later one.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

/** /sys path of the block device (or partition) holding `path`, or null (tmpfs, not Linux) */
function statFile(path: string): string | null {
  try {
    const dev = statSync(path).dev;
    // Linux's dev_t encoding (glibc gnu_dev_major / gnu_dev_minor)
    const major = Number((BigInt(dev) >> 8n) & 0xfffn) | Number((BigInt(dev) >> 32n) & ~0xfffn);
    const minor = Number(BigInt(dev) & 0xffn) | Number((BigInt(dev) >> 12n) & ~0xffn);
    const f = `/sys/dev/block/${major}:${minor}/stat`;
    readFileSync(f);
    return f;
  } catch { return null; }
}

/**
 * Bytes written so far to the device holding `path`, after syncing its file system when `settle`
 * (default); NaN when the path has no block device (tmpfs) or the system has no such counter.
 */
export function deviceWrittenBytes(path: string, settle = true): number {
  const f = statFile(path);
  if (!f) return NaN;
  if (settle) { try { execFileSync('sync', ['-f', path], { stdio: 'ignore' }); } catch { /* counted later instead */ } }
  const fields = readFileSync(f, 'utf8').trim().split(/\s+/);
  return Number(fields[6]) * 512; // field 7: sectors written
}
