"""
Measurement helper for bench/core.ts (not part of apb): collapses the pages of
[start, end) of process `pid` into transparent huge pages with
process_madvise(MADV_COLLAPSE) (Linux 6.1+; needs the rights to ptrace the
process, e.g. root). V8 does not madvise(MADV_HUGEPAGE) WebAssembly memory,
so with THP set to "madvise" this is the only way to run the core's memory
on 2 MiB pages and see what they would change.

usage: python3 thp-collapse.py <pid> <start hex> <end hex>
prints: collapsed <n> failed <m> (2 MiB steps)
"""
import ctypes, sys, os
libc = ctypes.CDLL(None, use_errno=True)
pid, start, end = int(sys.argv[1]), int(sys.argv[2], 16), int(sys.argv[3], 16)
pidfd = libc.syscall(434, pid, 0)
if pidfd < 0: print('pidfd_open failed', ctypes.get_errno()); sys.exit(1)
class iovec(ctypes.Structure): _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
done = 0; fail = 0
step = 2 << 20
a = (start + step - 1) & ~(step - 1)
while a + step <= end:
    iov = iovec(a, step)
    r = libc.syscall(440, pidfd, ctypes.byref(iov), 1, 25, 0)
    if r < 0:
        fail += 1
        err = ctypes.get_errno()
    else: done += 1
    a += step
print('collapsed', done, 'failed', fail, ('errno %d' % err) if fail else '')
