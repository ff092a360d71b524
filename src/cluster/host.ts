/**
 * A cluster node process (`apb serve --cluster ...`): one NATS connection, one ClusterNode (node.ts)
 * per site file, each with its own engine, data directory, stream, lease and port, and the
 * node-wide part: presence and leadership spread.
 *
 * Presence: every leaseMs/2 the node puts a record under its name in the APB_NODES bucket:
 *   { node, at, expiresAt: at + 3 leases, sites: { <key>: <url, '' until the site listens> }, leads: [<key>...] }
 * and reads everyone's. A record whose expiresAt has passed is a node that is gone (a node that
 * stops deletes its own).
 *
 * Spread: with S sites among the live nodes' and N live nodes, a node's share is ceil(S / N).
 *  - taking: a follower that already leads its share waits one more lease past an expired lease
 *    when a live node serving the site leads fewer: that node gets it first (takeDelayMs). Nobody
 *    waits when no such node exists, so losing a node never waits for the spread;
 *  - giving back: a leader leading more than its share, when a live node serving one of its sites
 *    leads fewer than its share, hands that site to it (ClusterNode.yieldTo: frames in progress are
 *    answered, the lease is released for that node alone), one site per 3 leases at most, so the
 *    records have been refreshed before the next decision.
 * So when a node returns or joins, sites move to it until no node leads more than its share.
 */
import { hostname } from 'node:os';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { ApbError } from '../errors.js';
import type { Logger } from '../server/log.js';
import { LEASE_BUCKET, NODES_BUCKET } from './names.js';
import { retrying } from './retry.js';
import { API_TIMEOUT_MS, ClusterNode, type Balancer, type NatsHandles, type SiteOptions } from './node.js';

export interface HostOptions {
  servers: string[];
  node: string;
  /** one per site: its file, data directory and port (0: any free one) */
  sites: { configPath: string; data: string; port: number }[];
  host: string;
  replicas: number;
  leaseMs: number;
  marginMs: number;
  snapshotEvery: number;
  core: 'wasm' | 'reference';
  durability: 'commit' | 'flush';
  allowJsFallback?: boolean;
  logger: Logger;
}

export interface Presence { node: string; at: number; expiresAt: number; sites: Record<string, string>; leads: string[] }

const enc = new TextEncoder();
const dec = new TextDecoder();

export class ClusterHost implements Balancer {
  readonly sites: ClusterNode[] = [];
  private nats!: NatsHandles;
  private nodesKv!: KV;
  private peers = new Map<string, Presence>();
  private presenceTimer: NodeJS.Timeout | undefined;
  private lastYield = 0;
  private readonly startedAt = Date.now();
  private closed = false;
  private refreshing = false;

  constructor(private readonly opts: HostOptions) {}

  private get log(): Logger { return this.opts.logger; }

  async start(): Promise<void> {
    const { opts } = this;
    let nc;
    try {
      nc = await connect({ servers: opts.servers, name: `apb-${opts.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    } catch (e) {
      throw new ApbError('storage_unavailable', `cannot reach NATS at ${opts.servers.join(',')}: ${(e as Error).message}`);
    }
    const js = jetstream(nc, { timeout: opts.leaseMs });
    const jsa = jetstream(nc, { timeout: API_TIMEOUT_MS });
    const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
    // created (or opened) with the API timeout; the lease bucket is then used with the lease's timeout
    const kvmApi = new Kvm(jsa);
    await retrying(this.log, 'the lease bucket', () => kvmApi.create(LEASE_BUCKET, { history: 1, replicas: opts.replicas }));
    this.nodesKv = await retrying(this.log, 'the nodes bucket', () => kvmApi.create(NODES_BUCKET, { history: 1, replicas: opts.replicas }));
    const kv = await retrying(this.log, 'the lease bucket', () => new Kvm(js).open(LEASE_BUCKET));
    this.nats = { nc, js, jsa, jsm, kv };
    const keys = new Set<string>();
    for (const s of opts.sites) {
      const o: SiteOptions = {
        node: opts.node, configPath: s.configPath, data: s.data, host: opts.host, port: s.port, replicas: opts.replicas,
        leaseMs: opts.leaseMs, marginMs: opts.marginMs, snapshotEvery: opts.snapshotEvery, core: opts.core,
        durability: opts.durability, allowJsFallback: opts.allowJsFallback, logger: opts.logger.child({ site: s.configPath }), balancer: this,
      };
      const site = new ClusterNode(o, this.nats);
      if (keys.has(site.names.key)) throw new ApbError('usage', `two site files give the NATS key "${site.names.key}" (${s.configPath}): each site of a cluster needs a distinct name`);
      keys.add(site.names.key);
      this.sites.push(site);
    }
    await this.refresh();
    for (const site of this.sites) await site.start();
    await this.refresh();
    this.presenceTimer = setInterval(() => { void this.refresh(); }, Math.max(100, Math.floor(this.opts.leaseMs / 2)));
  }

  /** the URL a site is served on, for other nodes (0.0.0.0 / :: are replaced by this host's name) */
  private urlOf_(site: ClusterNode): string {
    if (site.role === 'starting') return ''; // no port yet: the next record has it
    const h = this.opts.host === '0.0.0.0' || this.opts.host === '::' ? hostname() : this.opts.host;
    return site.url.replace(this.opts.host, h.includes(':') ? `[${h}]` : h);
  }

  private leads(): string[] { return this.sites.filter((s) => s.role === 'leader' || s.role === 'candidate').map((s) => s.names.key); }

  /** writes this node's record, reads everyone's, then balances */
  private async refresh(): Promise<void> {
    if (this.refreshing || this.closed) return;
    this.refreshing = true;
    try {
      const now = Date.now();
      const me: Presence = { node: this.opts.node, at: now, expiresAt: now + 3 * this.opts.leaseMs, sites: {}, leads: this.leads() };
      for (const s of this.sites) me.sites[s.names.key] = this.urlOf_(s);
      await this.nodesKv.put(this.opts.node, enc.encode(JSON.stringify(me)));
      const peers = new Map<string, Presence>();
      for await (const k of await this.nodesKv.keys()) {
        const e = await this.nodesKv.get(k);
        if (!e || e.operation !== 'PUT') continue;
        try { peers.set(k, JSON.parse(dec.decode(e.value)) as Presence); } catch { /* not a record */ }
      }
      peers.set(this.opts.node, me);
      this.peers = peers;
      this.balance(now);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster: presence not refreshed; next time');
    } finally { this.refreshing = false; }
  }

  /** live nodes' records (this node's with what it leads now) */
  private live(now = Date.now()): Presence[] {
    const out: Presence[] = [];
    for (const p of this.peers.values()) {
      if (p.node === this.opts.node) out.push({ ...p, leads: this.leads() });
      else if (now <= p.expiresAt) out.push(p);
    }
    return out;
  }

  /** ceil(sites / nodes) over the live nodes */
  share(now = Date.now()): number {
    const live = this.live(now);
    const sites = new Set<string>();
    for (const p of live) for (const k of Object.keys(p.sites)) sites.add(k);
    return Math.max(1, Math.ceil(sites.size / Math.max(1, live.length)));
  }

  takeDelayMs(key: string): number {
    const share = this.share();
    if (this.leads().length < share) return 0;
    const fewer = this.live().some((p) => p.node !== this.opts.node && key in p.sites && p.leads.length < share);
    return fewer ? this.opts.leaseMs : 0;
  }

  snapshotter(key: string, leader: string | undefined): boolean {
    const names = this.live().filter((p) => key in p.sites && p.node !== leader).map((p) => p.node).sort();
    return names.length === 0 || names[0] === this.opts.node;
  }

  urlOf(node: string, key: string): string | undefined { return this.peers.get(node)?.sites[key] || undefined; }

  /** gives one site back when this node leads more than its share and a live node serving it leads fewer */
  private balance(now: number): void {
    const L = this.opts.leaseMs;
    if (now - this.startedAt < 2 * L || now - this.lastYield < 3 * L) return;
    const share = this.share(now);
    const mine = this.sites.filter((s) => s.role === 'leader');
    if (mine.length <= share) return;
    const others = this.live(now).filter((p) => p.node !== this.opts.node && p.leads.length < share)
      .sort((a, b) => a.leads.length - b.leads.length || (a.node < b.node ? -1 : 1));
    for (const site of [...mine].sort((a, b) => (a.names.key < b.names.key ? -1 : 1))) {
      const to = others.find((p) => site.names.key in p.sites);
      if (!to) continue;
      this.lastYield = now;
      this.log.info({ site: site.names.key, to: to.node, leads: mine.length, share }, 'cluster: leading more than this node\'s share: handing a site over');
      void site.yieldTo(to.node);
      return;
    }
  }

  /** the nodes the cluster knows, as /healthz and the console show them */
  nodes(): { node: string; live: boolean; leads: string[] }[] {
    const now = Date.now();
    return [...this.peers.values()].map((p) => ({ node: p.node, live: p.node === this.opts.node || now <= p.expiresAt, leads: p.node === this.opts.node ? this.leads() : p.leads }))
      .sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  async reload(): Promise<void> {
    for (const s of this.sites) await s.reload().catch((e) => this.log.error({ err: e, site: s.names.key }, 'SIGHUP: reload refused, the previous configuration stays'));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.presenceTimer);
    for (const s of this.sites) await s.close().catch((e) => this.log.error({ err: e, site: s.names.key }, 'cluster: closing a site failed'));
    await this.nodesKv?.delete(this.opts.node).catch(() => undefined);
    await this.nats?.nc.close().catch(() => undefined);
  }
}
