/**
 * One writer per data directory. Two servers on one
 * directory would each keep their own seq counter, idempotency replies and
 * engine state: they would decide the same credential independently and
 * overwrite each other's journal entries.
 *
 * The lock must vanish when its holder dies, even by SIGKILL, or a crash
 * would keep the site down until someone deletes a file by hand. Node has
 * no flock()/fcntl(); a pid file alone cannot tell a dead holder from a
 * live one whose pid was reused. So the lock is a listening Unix socket:
 *  - Linux: in the abstract namespace ("\0apb:<sha256 of the directory's
 *    realpath>"). It is no file at all; the kernel frees the name when the
 *    last descriptor closes, i.e. when the process exits however it exits.
 *    bind() is atomic, so of two starters exactly one wins.
 *  - elsewhere: a socket file `apb.sock` in the directory. A stale file left
 *    by a crash refuses connections; it is then removed and bound again
 *    (two starters racing on a stale file in the same instant could both
 *    win: Linux has no such window).
 * The holder answers its pid to anyone who connects, so the refusal names it.
 * Abstract names are per network namespace: processes in different
 * containers sharing one volume do not see each other's lock.
 * Read-only users (`apb events`) take no lock; LMDB lets them read beside
 * the writer.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ApbError } from '../errors.js';

export interface DataLock {
  /** the socket name (abstract names start with "\0") */
  readonly name: string;
  release(): Promise<void>;
}

/** how long a refused starter waits for the holder to say its pid */
const ASK_TIMEOUT_MS = 2000;

/** The name of the lock of directory `dir` (which must exist). */
export function lockName(dir: string): string {
  const real = realpathSync(dir);
  if (process.platform === 'linux') return '\0apb:' + createHash('sha256').update(real).digest('hex').slice(0, 40);
  return join(real, 'apb.sock');
}

/**
 * Takes the lock of data directory `dir` (created 0700 if missing), or throws
 * ApbError('data_locked') naming the holder's pid.
 */
export async function lockDataDir(dir: string): Promise<DataLock> {
  let name: string;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    name = lockName(dir);
  } catch (err) {
    throw new ApbError('storage_unavailable', `cannot open the data directory ${dir}: ${(err as Error).message}`);
  }
  let server: Server;
  try {
    server = await bind(name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
      throw new ApbError('storage_unavailable', `cannot lock the data directory ${dir}: ${(err as Error).message}`);
    }
    const holder = await ask(name);
    if (holder.stale && !name.startsWith('\0')) {
      // a socket file left by a crashed holder: nobody listens on it
      try { unlinkSync(name); server = await bind(name); } catch { throw locked(dir, undefined); }
    } else {
      throw locked(dir, holder.pid);
    }
  }
  server.unref(); // the lock never keeps the process alive by itself
  server.on('error', () => undefined); // nothing a client does may take the holder down
  let released: Promise<void> | undefined;
  return {
    name,
    release: () => (released ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}

function locked(dir: string, pid: number | undefined): ApbError {
  const who = pid !== undefined ? `another apb process (pid ${pid})` : 'another apb process';
  return new ApbError('data_locked', `the data directory ${dir} is in use by ${who}: stop it first, or give another --data directory`, pid !== undefined ? { pid } : undefined);
}

function bind(name: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((conn) => {
      conn.on('error', () => undefined);
      conn.end(JSON.stringify({ pid: process.pid }) + '\n');
    });
    server.once('error', reject);
    server.listen({ path: name, exclusive: true }, () => { server.off('error', reject); resolve(server); });
  });
}

/** Asks the holder of `name` for its pid. `stale`: nobody listens (a leftover socket file). */
function ask(name: string): Promise<{ pid?: number; stale: boolean }> {
  return new Promise((resolve) => {
    let data = '';
    const sock = connect({ path: name });
    const timer = setTimeout(() => { sock.destroy(); resolve({ stale: false }); }, ASK_TIMEOUT_MS);
    const done = (r: { pid?: number; stale: boolean }): void => { clearTimeout(timer); sock.destroy(); resolve(r); };
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => { if (data.length < 256) data += d; });
    sock.on('end', () => {
      try {
        const pid = (JSON.parse(data) as { pid?: unknown }).pid;
        done(typeof pid === 'number' ? { pid, stale: false } : { stale: false });
      } catch { done({ stale: false }); }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => done({ stale: e.code === 'ECONNREFUSED' || e.code === 'ENOENT' }));
  });
}
