/**
 * `apb serve --config F [--config F2 ... | --config DIR] --data D ... --cluster nats://H:P[,...] --node NAME
 *  [--stream-replicas N] [--lease-ms MS] [--snapshot-every N]`, or the same settings in the site file's `cluster`
 * section (flags take precedence): the sites in cluster mode (src/cluster/host.ts).
 * Several sites: site k (in the order given; a directory's *.yaml, *.yml, *.json by name) listens
 * on --port + k (every one on a free port with --port 0) and keeps its data in D/<site key>; one
 * site keeps D itself, as before.
 * SIGTERM / SIGINT: a leader finishes its in-flight frames and releases its leases (another node
 * takes over at once), exit 0. SIGHUP: each site this node leads reloads its site file.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ApbError } from '../errors.js';
import type { Logger } from '../server/log.js';
import { loadSiteText } from '../config/load.js';
import type { SiteConfig } from '../config/types.js';
import { ClusterHost } from '../cluster/host.js';
import { checkNodeName, parseServers, siteNames } from '../cluster/names.js';

type ParsedArgs = Record<string, string | boolean | undefined>;

export interface ServeBasics {
  configPaths: string[]; data: string; port: number; host: string; log: Logger;
  core: 'wasm' | 'reference'; durability: 'commit' | 'flush';
}

/** the site files `--config` names: files as given, a directory's site files by name */
export function siteFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let dir = false;
    try { dir = statSync(p).isDirectory(); } catch { /* a missing file is reported when read */ }
    if (!dir) { out.push(p); continue; }
    const files = readdirSync(p).filter((f) => /\.(ya?ml|json)$/i.test(f)).sort().map((f) => join(p, f));
    if (files.length === 0) throw new ApbError('usage', `--config ${p}: the directory holds no site file (*.yaml, *.yml, *.json)`);
    out.push(...files);
  }
  return out;
}

function intFlag(a: ParsedArgs, name: string, min: number, max: number, dflt: number): number {
  const v = a[name];
  if (v === undefined) return dflt;
  const n = /^[0-9]+$/.test(v as string) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ApbError('usage', `--${name} must be an integer ${min}-${max}, got "${String(v)}"`);
  return n;
}

type ClusterSection = NonNullable<SiteConfig['cluster']>;

/** the sites' `cluster` sections, which must agree where they are given */
function sectionOf(files: { path: string; cluster: ClusterSection | undefined }[]): ClusterSection | undefined {
  let first: { path: string; cluster: ClusterSection } | undefined;
  for (const f of files) {
    if (!f.cluster) continue;
    if (!first) { first = { path: f.path, cluster: f.cluster }; continue; }
    const a = first.cluster, b = f.cluster;
    for (const k of ['servers', 'node', 'streamReplicas', 'leaseMs', 'snapshotEvery'] as const) {
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) throw new ApbError('usage', `cluster.${k} differs between ${first.path} and ${f.path}: one node has one cluster setting`);
    }
  }
  return first?.cluster;
}

/** cluster mode when --cluster or --node is given, or a site file has a `cluster` section */
export function wantsCluster(a: ParsedArgs, configPaths: string[]): boolean {
  if (a.cluster !== undefined || a.node !== undefined) return true;
  return siteFiles(configPaths).some((p) => /^cluster\s*:|"cluster"\s*:/m.test(readFileSafe(p)));
}

function readFileSafe(p: string): string { try { return readFileSync(p, 'utf8'); } catch { return ''; } }

export async function runCluster(a: ParsedArgs, b: ServeBasics): Promise<number> {
  const paths = siteFiles(b.configPaths);
  const loaded = paths.map((path) => ({ path, config: loadSiteText(readFileSync(path, 'utf8'), path).site.config }));
  const section = sectionOf(loaded.map((l) => ({ path: l.path, cluster: l.config.cluster })));
  if (a.cluster === undefined && !section) throw new ApbError('usage', '--node is only for cluster mode: give --cluster nats://HOST:PORT[,...] (or a cluster section in the site file) too');
  const servers = a.cluster !== undefined ? parseServers(a.cluster) : section!.servers;
  const nodeName = a.node ?? section?.node;
  if (nodeName === undefined) throw new ApbError('usage', 'cluster mode needs --node NAME (unique in the cluster), or cluster.node in the site file');
  const node = checkNodeName(nodeName);
  const replicas = intFlag(a, 'stream-replicas', 1, 5, section?.streamReplicas ?? 1);
  const leaseMs = intFlag(a, 'lease-ms', 500, 60_000, section?.leaseMs ?? 2000);
  const sites = loaded.map((l, k) => ({
    configPath: l.path,
    data: loaded.length === 1 ? b.data : join(b.data, siteNames(l.config.site).key),
    port: b.port === 0 ? 0 : b.port + k,
  }));
  if (sites.some((s) => s.port > 65535)) throw new ApbError('usage', `--port ${b.port} + ${sites.length - 1} sites runs past 65535`);
  const host = new ClusterHost({
    servers, node, sites, host: b.host, replicas, leaseMs,
    marginMs: Math.max(250, Math.round(leaseMs / 8)), snapshotEvery: intFlag(a, 'snapshot-every', 0, 1_000_000_000, section?.snapshotEvery ?? 100_000), core: b.core, durability: b.durability,
    allowJsFallback: a['allow-js-fallback'] === true, logger: b.log,
  });
  try { await host.start(); } catch (e) { await host.close().catch(() => undefined); throw e; }
  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      b.log.info({ signal: sig }, 'signal received');
      host.close().then(() => resolve(0), (e) => { b.log.error({ err: e }, 'shutdown failed'); resolve(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => { void host.reload(); });
    for (const s of host.sites) process.stdout.write(`apb cluster node ${node} on ${s.url} (site ${s.names.key})\n`);
  }).then((code) => {
    setImmediate(() => process.exit(code));
    return code;
  });
}
