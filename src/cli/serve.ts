/**
 * `apb serve --config F [--config F2 ...] --data D [--port 8080] [--host 127.0.0.1]
 *            [--log-level info] [--core wasm|reference] [--durability commit|flush] [--allow-js-fallback]
 *            [--cluster nats://H:P[,...] --node NAME [--stream-replicas N] [--lease-ms MS]]`
 * (cluster mode: serve-cluster.ts)
 * SIGTERM / SIGINT: graceful shutdown (stop accepting, answer in-flight
 * frames, flush the store), exit 0. SIGHUP: reload the configuration file.
 */
import { ApbError, isApbError } from '../errors.js';
import { parseArgs, required } from './args.js';
import { specOf } from './usage.js';
import { startServer } from '../server/server.js';
import { createLogger, isLogLevel, LOG_LEVELS } from '../server/log.js';
import { runCluster, wantsCluster } from './serve-cluster.js';
import { allValues } from './args.js';

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, specOf('serve'));
  const configPath = required(a, 'config');
  const data = required(a, 'data');
  const port = a.port === undefined ? 8080 : /^[0-9]+$/.test(a.port as string) ? Number(a.port) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ApbError('usage', `--port must be an integer 0-65535, got "${String(a.port)}"`);
  const core = (a.core as string | undefined) ?? process.env.APB_CORE ?? 'wasm';
  if (core !== 'wasm' && core !== 'reference') throw new ApbError('usage', `${a.core === undefined ? 'APB_CORE' : '--core'} must be wasm or reference, got "${core}"`);
  const durability = (a.durability as string | undefined) ?? 'commit';
  if (durability !== 'commit' && durability !== 'flush') throw new ApbError('usage', `--durability must be commit or flush, got "${durability}"`);
  const level = (a['log-level'] as string | undefined) ?? process.env.APB_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new ApbError('usage', `${a['log-level'] === undefined ? 'APB_LOG_LEVEL' : '--log-level'} must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  const log = createLogger(level);
  // several --config (or a directory of site files): cluster mode only, one site per process otherwise
  const configPaths = allValues(argv, 'config');
  if (wantsCluster(a, configPaths)) {
    return runCluster(a, { configPaths, data, port, host: (a.host as string | undefined) ?? '127.0.0.1', log, core, durability });
  }
  if (configPaths.length > 1) throw new ApbError('usage', 'several --config: one process serves several sites in cluster mode only (--cluster); otherwise run one apb serve per site');

  const server = await startServer({
    configPath, data, port, host: (a.host as string | undefined) ?? '127.0.0.1', logger: log,
    allowJsFallback: a['allow-js-fallback'] === true, core, durability,
  });
  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'signal received');
      server.close().then(() => resolve(0), (e) => { log.error({ err: e }, 'shutdown failed'); resolve(1); });
    };
    // handlers first, then the line supervisors and tests wait for: a SIGTERM sent the moment it
    // appears is a clean shutdown, not Node's default exit
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      server.reload('sighup').then(
        () => undefined, // the hub logs the report ('configuration reloaded', who 'sighup'): one line per reload
        // config messages never quote token values (src/config/schema-kit.ts `secret`), so the detail is safe to log
        (e) => log.error({ code: isApbError(e) ? e.code : 'internal', err: isApbError(e) ? { message: e.message, detail: e.detail } : e }, 'SIGHUP: reload refused, the previous configuration stays'),
      );
    });
    process.stdout.write(`apb serving ${server.url} (uWS native: ${server.native})\n`);
  }).then((code) => {
    // uWS may keep idle keep-alive sockets: exit explicitly once everything is flushed
    setImmediate(() => process.exit(code));
    return code;
  });
}
