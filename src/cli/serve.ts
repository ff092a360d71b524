/**
 * `apb serve --config F --data D [--port 8080] [--host 127.0.0.1]
 *            [--log-level info] [--core wasm|reference] [--allow-js-fallback]`
 * SIGTERM / SIGINT: graceful shutdown (stop accepting, answer in-flight
 * frames, flush the store), exit 0. SIGHUP: reload the configuration file.
 */
import { ApbError, isApbError } from '../errors.js';
import { parseArgs, required } from './args.js';
import { startServer } from '../server/server.js';
import { createLogger } from '../server/log.js';

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { config: 'string', data: 'string', port: 'string', host: 'string', 'log-level': 'string', core: 'string', 'allow-js-fallback': 'boolean' }, 'serve');
  const configPath = required(a, 'config', 'serve');
  const data = required(a, 'data', 'serve');
  const port = a.port === undefined ? 8080 : Number(a.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ApbError('bad_message', 'apb serve: --port must be an integer 0-65535');
  const core = (a.core as string | undefined) ?? process.env.APB_CORE ?? 'wasm';
  if (core !== 'wasm' && core !== 'reference') throw new ApbError('bad_message', 'apb serve: --core must be wasm or reference');
  const log = createLogger((a['log-level'] as string | undefined) ?? process.env.APB_LOG_LEVEL);

  const server = await startServer({
    configPath, data, port, host: (a.host as string | undefined) ?? '127.0.0.1', logger: log,
    allowJsFallback: a['allow-js-fallback'] === true, core,
  });
  process.stdout.write(`apb serving ${server.url} (uWS native: ${server.native})\n`);

  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'signal received');
      server.close().then(() => resolve(0), (e) => { log.error({ err: e }, 'shutdown failed'); resolve(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      server.reload('sighup').then(
        (report) => log.info({ report }, 'SIGHUP: configuration reloaded'),
        (e) => log.error({ code: isApbError(e) ? e.code : 'internal', err: isApbError(e) ? { message: e.message, detail: e.detail } : e }, 'SIGHUP: reload refused, the previous configuration stays'),
      );
    });
  }).then((code) => {
    // uWS may keep idle keep-alive sockets: exit explicitly once everything is flushed
    setImmediate(() => process.exit(code));
    return code;
  });
}
