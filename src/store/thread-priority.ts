/**
 * Linux: lowers the scheduling priority (nice 19, the lowest) of the CALLING thread only (setpriority
 * on its thread id), for background threads of the server (the index worker, the snapshot replica):
 * on a busy machine the kernel then runs the deciding main thread and the journal's commits first;
 * background work only takes longer (both read the journal at their own pace: a slower one queues
 * nothing in memory). Nice 19 rather than 10: at one message per frame on 2 cores shared with the
 * load generator, 122-133 k msg/s against 114-121 k at nice 10 (src/docs/performance.md).
 * Elsewhere, or if not allowed: nothing.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export const BACKGROUND_NICE = 19;

export function lowerThreadPriority(nice = BACKGROUND_NICE): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    // never the process's main thread (setpriority on the pid would be the main thread's)
    if (!Number.isInteger(tid) || tid <= 0 || tid === process.pid) return false;
    setPriority(tid, Math.max(getPriority(tid), nice));
    return true;
  } catch { return false; }
}
