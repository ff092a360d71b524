/** Structured logs (pino, JSON lines on stderr). Level: --log-level, APB_LOG_LEVEL, default info. */
import { pino, type Logger } from 'pino';
import { ApbError } from '../errors.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const isLogLevel = (l: string): boolean => (LOG_LEVELS as readonly string[]).includes(l);

/**
 * Bearer tokens must never reach the log, whoever logs an object holding
 * one: any `token` or `authorization` field (one or two levels deep) is
 * written as "[redacted]".
 */
const REDACT = ['token', '*.token', 'authorization', '*.authorization', '*.headers.authorization'];

export function createLogger(level?: string): Logger {
  const lvl = level ?? process.env.APB_LOG_LEVEL ?? 'info';
  // pino throws a stack trace on an unknown level: refuse it in one line instead
  if (!isLogLevel(lvl)) throw new ApbError('usage', `log level must be one of ${LOG_LEVELS.join(', ')}, got "${lvl}"`);
  return pino({ name: 'apb', level: lvl, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination({ dest: 2, sync: true }));
}
