/**
 * Linux: lowers the scheduling priority (nice 10) of the CALLING thread only (setpriority on its
 * thread id), for background threads of the server (the index worker): on a busy machine the kernel
 * then runs the deciding main thread and the journal's commits first; background work only takes
 * longer. Elsewhere, or if not allowed: nothing.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export function lowerThreadPriority(nice = 10): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    // never the process's main thread (setpriority on the pid would be the main thread's)
    if (!Number.isInteger(tid) || tid <= 0 || tid === process.pid) return false;
    setPriority(tid, Math.max(getPriority(tid), nice));
    return true;
  } catch { return false; }
}
