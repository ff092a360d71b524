/**
 * `apb serve ... --cluster nats://H:P[,...] --node NAME [--stream-replicas N] [--lease-ms MS]`:
 * the site in cluster mode (src/cluster/node.ts). SIGTERM / SIGINT: a leader finishes its
 * in-flight frames and releases its lease (another node takes over at once), exit 0.
 * SIGHUP: the leader reloads the site file (a follower has no engine to reload).
 */
import { ApbError } from '../errors.js';
import type { Logger } from '../server/log.js';
import { ClusterNode } from '../cluster/node.js';
import { checkNodeName, parseServers } from '../cluster/names.js';

type ParsedArgs = Record<string, string | boolean | undefined>;

export interface ServeBasics {
  configPath: string; data: string; port: number; host: string; log: Logger;
  core: 'wasm' | 'reference'; durability: 'commit' | 'flush';
}

function intFlag(a: ParsedArgs, name: string, min: number, max: number, dflt: number): number {
  const v = a[name];
  if (v === undefined) return dflt;
  const n = /^[0-9]+$/.test(v as string) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ApbError('usage', `--${name} must be an integer ${min}-${max}, got "${String(v)}"`);
  return n;
}

export async function runCluster(a: ParsedArgs, b: ServeBasics): Promise<number> {
  if (a.cluster === undefined) throw new ApbError('usage', '--node is only for cluster mode: give --cluster nats://HOST:PORT[,...] too');
  const servers = parseServers(a.cluster);
  if (a.node === undefined) throw new ApbError('usage', '--cluster needs --node NAME (unique in the cluster)');
  const node = checkNodeName(a.node);
  const replicas = intFlag(a, 'stream-replicas', 1, 5, 1);
  const leaseMs = intFlag(a, 'lease-ms', 500, 60_000, 2000);
  const cn = new ClusterNode({
    servers, node, configPath: b.configPath, data: b.data, host: b.host, port: b.port, replicas, leaseMs,
    marginMs: Math.max(250, Math.round(leaseMs / 8)), core: b.core, durability: b.durability,
    allowJsFallback: a['allow-js-fallback'] === true, logger: b.log,
  });
  await cn.start();
  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      b.log.info({ signal: sig }, 'signal received');
      cn.close().then(() => resolve(0), (e) => { b.log.error({ err: e }, 'shutdown failed'); resolve(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      cn.reload().catch((e) => b.log.error({ err: e }, 'SIGHUP: reload refused, the previous configuration stays'));
    });
    process.stdout.write(`apb cluster node ${node} on ${cn.url} (site ${cn.names.key})\n`);
  }).then((code) => {
    setImmediate(() => process.exit(code));
    return code;
  });
}
