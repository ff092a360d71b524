/**
 * `apb bridge --config bridge.yaml [--log-level L]`: runs the gate-side
 * agent until SIGTERM or SIGINT, then stops polling, closes the serial
 * ports, the engine link and the store, and exits 0. The bridge file is
 * checked completely before anything starts (every error is listed).
 */
import { ApbError } from '../errors.js';
import { parseArgs, required } from '../cli/args.js';
import { specOf } from '../cli/usage.js';
import { createLogger, isLogLevel, LOG_LEVELS } from '../server/log.js';
import { loadBridgeFile } from './config.js';
import { Bridge } from './bridge.js';

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, specOf('bridge'));
  const path = required(a, 'config');
  const level = (a['log-level'] as string | undefined) ?? process.env.APB_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new ApbError('usage', `${a['log-level'] === undefined ? 'APB_LOG_LEVEL' : '--log-level'} must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  const cfg = loadBridgeFile(path);
  const log = createLogger(level).child({ component: 'bridge' });
  const bridge = await Bridge.start(cfg, log);
  const readers = cfg.file.ports.reduce((n, p) => n + p.readers.length, 0);
  process.stdout.write(`apb bridge: ${readers} reader${readers === 1 ? '' : 's'} on ${cfg.file.ports.length} port${cfg.file.ports.length === 1 ? '' : 's'}, engine ${cfg.file.engine.url}, health ${bridge.url}/healthz\n`);
  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'signal received, stopping');
      bridge.stop().then(() => resolve(0), (e) => { log.error({ err: (e as Error).message }, 'stop failed'); resolve(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }).then((code) => { setImmediate(() => process.exit(code)); return code; });
}
