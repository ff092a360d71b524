/** Structured logs (pino, JSON lines on stderr). Level: --log-level, APB_LOG_LEVEL, default info. */
import { pino, type Logger } from 'pino';
import { ApbError } from '../errors.js';
import { rawLinesPossible } from '../store/lmdb-output.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const isLogLevel = (l: string): boolean => (LOG_LEVELS as readonly string[]).includes(l);

/**
 * Bearer tokens must never reach the log, whoever logs an object holding
 * one: any `token` or `authorization` field (one or two levels deep) is
 * written as "[redacted]".
 */
const REDACT = ['token', '*.token', 'authorization', '*.authorization', '*.headers.authorization'];

/**
 * JSON lines go to fd 2, one synchronous write each. For a minute after LMDB failed a page write, each
 * line starts with a newline in that same write: LMDB's C code (on any thread: the index worker's too)
 * may have printed a raw line without one, and no line of ours may be glued to it (store/lmdb-output.ts).
 */
export function createLogger(level?: string): Logger {
  const lvl = level ?? process.env.APB_LOG_LEVEL ?? 'info';
  // pino throws a stack trace on an unknown level: refuse it in one line instead
  if (!isLogLevel(lvl)) throw new ApbError('usage', `log level must be one of ${LOG_LEVELS.join(', ')}, got "${lvl}"`);
  const dest = pino.destination({ dest: 2, sync: true });
  const out = { write: (line: string): boolean => dest.write(rawLinesPossible() ? '\n' + line : line) };
  return pino({ name: 'apb', level: lvl, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, out);
}
