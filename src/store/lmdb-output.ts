/**
 * lmdb-js reports a failed commit by `console.error(error)` (a multi-line
 * stack on stderr) besides rejecting the writes, which breaks the server's
 * JSON-lines log. While a store is open with `onLibraryOutput`, console
 * errors and warnings whose caller is lmdb-js go to that callback (the
 * server logs them as JSON); everything else reaches the console as before.
 *
 * LMDB's C code also prints one line of its own on a failed page write
 * ("Write error: <errno text> position P, size S", on file descriptor 2,
 * with no newline). JavaScript cannot intercept it; it is followed by the
 * console error routed here, so a newline is written first: that raw line
 * ends on its own line and the next JSON line stays intact. Another thread
 * (the index worker's LMDB) may print its raw line at any moment, between
 * any two writes of the main thread: so for a while after a failed page
 * write, the logger (src/server/log.ts) starts every line with a newline in
 * the same write as the line (rawLinesPossible).
 */
import { writeSync } from 'node:fs';
import { format } from 'node:util';

export type LibraryOutput = (level: 'error' | 'warn', text: string, err?: Error) => void;

const sinks: LibraryOutput[] = [];
let installed = false;
const LMDB_FRAME = /[\\/]node_modules[\\/]lmdb[\\/]/;
/**
 * lmdb-js' texts for a failed page write, the case where the C code may have printed its raw line.
 * The error it reports need not name the write: after an ENOSPC page write the commit has been
 * seen to fail with "Input/output error" (code 5), the raw line ("Write error: No space left on
 * device ...") still on stderr without its newline.
 */
const NATIVE_WRITE_ERROR = /Attempting to write page|Input\/output error|No space left on device/;
const COMMIT_FAILED = /^Commit failed/;
/** how long after a failed page write raw lines are expected: the retries of a full disk go on for seconds */
const RAW_WINDOW_MS = 60_000;
let rawUntil = 0;

/** may a raw line of LMDB's C code be on fd 2, now or soon: a failed page write was seen in the last minute */
export function rawLinesPossible(): boolean { return rawUntil !== 0 && Date.now() < rawUntil; }

/** a failed page write was seen: a raw line may be on fd 2 without its newline, and more may follow */
function rawLineRisk(): void {
  rawUntil = Date.now() + RAW_WINDOW_MS;
  try { writeSync(2, '\n'); } catch { /* stderr closed */ }
}

/** Routes lmdb-js console output to `sink` (the newest one wins) until the returned function is called. */
export function routeLibraryOutput(sink: LibraryOutput): () => void {
  install();
  sinks.push(sink);
  return () => { const i = sinks.lastIndexOf(sink); if (i >= 0) sinks.splice(i, 1); };
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const level of ['error', 'warn'] as const) {
    const original = console[level];
    const wrapper = (...args: unknown[]): void => {
      const sink = sinks.at(-1);
      if (sink && calledFromLmdb(wrapper)) {
        try { deliver(sink, level, args); return; } catch { /* fall through to the console */ }
      }
      original.apply(console, args);
    };
    console[level] = wrapper;
  }
}

/**
 * A failed page write that lmdb-js did not print (a synchronous transaction throws instead, as on the
 * index worker): LMDB's raw line is on fd 2 without a newline; end it before anything else is logged.
 */
export function endNativeWriteLine(err: unknown): void {
  // lmdb-js may also hand the failure over wrapped ("Commit failed (see commitError ...)", the cause a
  // promise): then whether the C line was printed is unknown, and an empty line costs nothing.
  // A string: the message of such an error reported by another thread (the index worker), about to be
  // logged here; that thread's own newline may have come before a later raw line of its C code.
  const msg = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  if (NATIVE_WRITE_ERROR.test(msg) || COMMIT_FAILED.test(msg)) rawLineRisk();
}

function calledFromLmdb(wrapper: (...a: unknown[]) => void): boolean {
  const probe: { stack?: string } = {};
  Error.captureStackTrace(probe, wrapper); // the first frame is the caller of console.error
  const frame = probe.stack?.split('\n', 3)[1] ?? '';
  return LMDB_FRAME.test(frame);
}

function deliver(sink: LibraryOutput, level: 'error' | 'warn', args: unknown[]): void {
  const err = args.find((a): a is Error => a instanceof Error);
  const rest = args.filter((a) => a !== err);
  const text = [rest.length ? format(...rest) : '', err ? err.message : ''].filter(Boolean).join(': ');
  // any error lmdb-js prints may follow a raw line of the C code (see NATIVE_WRITE_ERROR): an empty
  // line in the log costs nothing, a JSON line glued to that raw line breaks it
  if (err || NATIVE_WRITE_ERROR.test(text)) rawLineRisk();
  sink(level, text, err);
}
