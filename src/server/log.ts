/** Structured logs (pino, JSON lines on stderr). Level: --log-level, APB_LOG_LEVEL, default info. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level?: string): Logger {
  const lvl = level ?? process.env.APB_LOG_LEVEL ?? 'info';
  return pino({ name: 'apb', level: lvl, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
