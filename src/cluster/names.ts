/**
 * Names of a site's objects on NATS (one set per site, independent of every other site):
 *
 *   stream   APB_<key>            the replicated journal: one message per journal batch
 *   subject  apb.<key>.journal    the only subject of that stream
 *   subject  apb.<key>.forward    request/reply, not stored: a follower forwards a controller's frame
 *                                 to the leader (header Apb-Controller), the reply is the leader's
 *   bucket   APB_LEASES           key-value bucket shared by the sites of a cluster
 *   key      <key>                the site's leader lease
 *   stream   APB_SNAP_<key>       the site's snapshots (snapshots.ts), subjects apb.<key>.snap.data
 *                                 (chunks) and apb.<key>.snap.manifest (one per complete snapshot)
 *   bucket   APB_NODES            key-value bucket shared by the cluster: one presence record per
 *                                 node (host.ts: its sites, what it leads, its URLs)
 *
 * <key> is the site file's `site` name made safe for NATS (letters, digits, `_` and `-`; anything
 * else becomes `_`), at most MAX_SITE_KEY_BYTES: two sites whose names map to the same key would
 * share a journal, so a cluster must not run two such sites (the operator picks distinct names).
 */
import { ApbError } from '../errors.js';

export const MAX_SITE_KEY_BYTES = 64;
export const LEASE_BUCKET = 'APB_LEASES';
export const NODES_BUCKET = 'APB_NODES';
/** at most this many characters in a node name (`--node`): it is written into every lease and header */
export const MAX_NODE_NAME_BYTES = 64;

export interface SiteNames { key: string; stream: string; subject: string; forward: string; snapStream: string; snapData: string; snapManifest: string }

export function siteNames(siteName: string): SiteNames {
  const key = siteName.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, MAX_SITE_KEY_BYTES);
  if (key === '' || /^_+$/.test(key)) throw new ApbError('usage', `the site name "${siteName}" gives no usable NATS key: use letters, digits, _ or -`);
  return {
    key, stream: `APB_${key}`, subject: `apb.${key}.journal`, forward: `apb.${key}.forward`,
    snapStream: `APB_SNAP_${key}`, snapData: `apb.${key}.snap.data`, snapManifest: `apb.${key}.snap.manifest`,
  };
}

export function checkNodeName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(name) || name.length > MAX_NODE_NAME_BYTES) {
    throw new ApbError('usage', `--node must be 1-${MAX_NODE_NAME_BYTES} letters, digits, _ or -, got "${String(name)}"`);
  }
  return name;
}

/** `nats://h:p[,nats://h:p...]`: each URL checked (scheme nats or tls, a host, a port) */
export function parseServers(list: unknown): string[] {
  if (typeof list !== 'string' || list === '') throw new ApbError('usage', '--cluster needs nats://HOST:PORT[,...]');
  const out = list.split(',').map((s) => s.trim());
  if (out.length > 16) throw new ApbError('usage', '--cluster takes at most 16 server URLs');
  for (const s of out) {
    let u: URL;
    try { u = new URL(s); } catch { throw new ApbError('usage', `--cluster: "${s}" is not a URL (nats://HOST:PORT)`); }
    if ((u.protocol !== 'nats:' && u.protocol !== 'tls:') || !u.hostname || !u.port) throw new ApbError('usage', `--cluster: "${s}" must be nats://HOST:PORT`);
  }
  return out;
}
