/**
 * One site of a cluster node (`apb serve --cluster ...`; host.ts runs one of these per site file):
 * the site decided by one node at a time, its journal replicated through NATS JetStream, the other
 * nodes kept up to date and ready to take over. No consensus or replication of our own: JetStream's
 * stream (replicated by its RAFT group over `replicas` servers) is the source of truth, its
 * expected-last-sequence check is the fence, and a key-value bucket holds the lease.
 *
 * Objects per site (names.ts): stream APB_<key> on subject apb.<key>.journal, lease <key> in bucket
 * APB_LEASES, snapshots in stream APB_SNAP_<key> (snapshots.ts). Journal messages: journal-message.ts
 * and headers.ts. The leader's side of the journal is publisher.ts, the followers' follower.ts.
 *
 * Lease (lease.ts): {node, epoch, since, renewedAt, expiresAt[, handoff]}, written by
 * compare-and-swap on the key's revision, renewed every leaseMs/4 (followers look at it every
 * leaseMs/8). A follower judges it expired when expiresAt + marginMs has passed on its own clock
 * (NATS 2.9 has no per-key TTL; clocks are assumed within marginMs), plus the balancer's delay when
 * this node already leads its share of the sites (host.ts).
 *
 * Takeover (follower → leader):
 *   1. CAS the expired lease to {me, epoch + 1};
 *   2. read the stream's last seq L, apply every message up to L to the local journal (durably);
 *   3. publish the fence with expected last seq L (refused: someone appended meanwhile: back to 2);
 *      from here no older leader can append: its next publish expects a seq and a message id the
 *      fence has replaced;
 *   4. start the server on the local data (its hot engine, else recovery) with the journaled
 *      configuration: serve, and answer the frames followers forward.
 *
 * Local journal: D/cluster-position.json {stream, streamSeq, end} records how far the local journal
 * follows the stream; at start a journal that does not end where that file says (a crash with
 * unacknowledged batches, a deposed leader) is moved aside and rebuilt from the stream. An empty
 * journal, or one the trimmed stream no longer continues, starts from the newest cluster snapshot
 * (snapshots.ts) and the stream after it.
 *
 * Hot engine: a follower keeps an engine (store/replica.ts, the code recovery uses) applying each
 * ingested batch; it answers HTTP reads on the follower's port (follower-port.ts), is snapshotted
 * now and then (locally, and to the cluster by one follower, which then trims the stream), and is
 * handed to the server at takeover.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { headers, Empty, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { ApbError } from '../errors.js';
import { loadSiteText } from '../config/load.js';
import type { CompiledSite } from '../config/types.js';
import { openStore } from '../store/index.js';
import type { LmdbStore } from '../store/lmdb-store.js';
import type { Store } from '../store/types.js';
import { JournalReplica, loadJournaledSite } from '../store/replica.js';
import type { Engine } from '../engine/types.js';
import { startServer, type RunningServer } from '../server/server.js';
import { Auth } from '../server/auth.js';
import type { Logger } from '../server/log.js';
import { siteNames, type SiteNames } from './names.js';
import { isWrongRevision, releaseLease, renewLease, tryTakeLease, type HeldLease, readLease } from './lease.js';
import { listenFollower, type FollowerPort } from './follower-port.js';
import { JournalPublisher } from './publisher.js';
import { StreamFollower } from './follower.js';
import { SiteSnapshots, type SnapshotManifest } from './snapshots.js';
import { H_CONTROLLER, H_ERROR, H_FENCE, H_NODE } from './headers.js';
import { fence } from './fenced-store.js';
import { delay, freePort, retrying } from './retry.js';


/** JetStream API calls that are not on the reply path */
export const API_TIMEOUT_MS = 5000;
/** a candidate that has not caught up with the stream and fenced it by then gives the lease up */
const CATCH_UP_MS = 15_000;

/** The NATS side shared by every site of a node (host.ts). */
export interface NatsHandles {
  nc: NatsConnection;
  /** publishing (timeout: the lease) */
  js: JetStreamClient;
  /** JetStream API calls other than publishing (consumers): a longer timeout, as NATS may be electing */
  jsa: JetStreamClient;
  jsm: JetStreamManager;
  /** the lease bucket */
  kv: KV;
}

/** What the node's balancer (host.ts) tells a site. */
export interface Balancer {
  /** extra ms a follower waits past an expired lease before taking it (0: at once) */
  takeDelayMs(key: string): number;
  /** this node is the one follower that uploads the site's snapshots and trims its stream */
  snapshotter(key: string, leader: string | undefined): boolean;
  /** the URL another node serves the site on (refusals name it), from the presence records */
  urlOf(node: string, key: string): string | undefined;
  /** the cluster's nodes as the presence records tell (for /healthz and the console) */
  nodes(): { node: string; live: boolean; leads: string[] }[];
}

export interface SiteOptions {
  node: string;
  configPath: string;
  data: string;
  host: string;
  port: number;
  /** replicas of the site's streams when this node creates them (1-5) */
  replicas: number;
  /** lease duration (ms); default 2000 */
  leaseMs?: number;
  /** clock-skew margin a follower adds before judging a lease expired (ms); default 250 */
  marginMs?: number;
  /** journal records between two follower snapshots (0: none); default 100 000 */
  snapshotEvery?: number;
  core: 'wasm' | 'reference';
  durability: 'commit' | 'flush';
  allowJsFallback?: boolean;
  logger: Logger;
  balancer?: Balancer;
}

export type Role = 'starting' | 'follower' | 'candidate' | 'leader' | 'stepping-down' | 'closed';
interface Position { stream: string; streamSeq: number; end: number }

const ROLES: Role[] = ['starting', 'follower', 'candidate', 'leader', 'stepping-down', 'closed'];

export class ClusterNode {
  role: Role = 'starting';
  readonly names: SiteNames;
  private readonly text: string;
  readonly leaseMs: number;
  private readonly marginMs: number;
  private readonly snapshotEvery: number;
  private store!: LmdbStore;
  /** follower: the engine kept up to date with the local journal (replica.ts), handed to the server at takeover */
  private replica: JournalReplica | undefined;
  /** how the last takeover got its engine: the follower's hot engine, or recovery from the local journal */
  private takeoverEngine: 'hot' | 'recovered' | undefined;
  private fenced!: Store;
  private server: RunningServer | undefined;
  private port_: FollowerPort | undefined;
  /** leader: the subscription answering frames forwarded by followers */
  private fwdSub: Subscription | undefined;
  private readonly site: CompiledSite;
  /** follower: controllers' tokens, from the configuration in force (journaled), and its text */
  private auth: Auth;
  private authText: string;
  private held: HeldLease | undefined;
  /** the lease as last read by a follower (for /healthz: who leads) */
  private seenLeader: string | undefined;
  private seenEpoch = 0;
  /** leader: the lease is ours until then, on this clock */
  private validUntil = 0;
  /** stepping down must rebuild the local journal from the stream (a local write failed while leading) */
  private mustReset = false;
  private renewing = false;
  private renewStarted = 0;
  private taking = false;
  /** leader: handing the site to another node (host.ts balancing) */
  private yielding = false;
  /** stream seq and journal end of the last message known durable both in the stream and locally */
  private appliedSeq = 0;
  private appliedEnd = 0;
  /** JetStream's store time of the last message applied (ms), for the lag in ms */
  private appliedAt = 0;
  private posTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly publisher: JournalPublisher;
  private readonly follower: StreamFollower;
  private readonly snaps: SiteSnapshots;
  /** journal seq of the last follower snapshot (local), and whether one is being written */
  private snapEnd = 0;
  private snapping = false;
  private port: number;
  readonly counters = { takeovers: 0, stepDowns: 0, forwarded: 0, answeredForwarded: 0, snapshots: 0, uploaded: 0, trimmed: 0, seeded: 0 };

  constructor(private readonly opts: SiteOptions, private readonly nats: NatsHandles) {
    this.text = readFileSync(opts.configPath, 'utf8');
    this.site = loadSiteText(this.text, opts.configPath).site;
    this.names = siteNames(this.site.config.site);
    this.leaseMs = opts.leaseMs ?? 2000;
    this.marginMs = opts.marginMs ?? 250;
    this.snapshotEvery = opts.snapshotEvery ?? 100_000;
    this.port = opts.port;
    this.auth = new Auth(this.site);
    this.authText = this.text;
    const self = this;
    this.publisher = new JournalPublisher(nats.js, {
      node: opts.node, subject: this.names.subject,
      epoch: () => self.held?.lease.epoch,
      validUntil: () => self.validUntil,
      stepDown: (why) => self.stepDown(why),
      acknowledged: (seq, end) => self.notePosition(seq, end),
    });
    this.follower = new StreamFollower(nats.jsa, nats.jsm, {
      stream: this.names.stream, log: opts.logger,
      active: () => self.role === 'follower' || self.role === 'candidate',
      store: () => self.store,
      appliedEnd: () => self.appliedEnd,
      applied: (seq, end, at) => self.applied(seq, end, at),
      fence: (epoch, node) => { if (epoch > self.seenEpoch) { self.seenEpoch = epoch; self.seenLeader = node || self.seenLeader; } },
      resync: (why) => { void self.resync(why); },
    });
    this.snaps = new SiteSnapshots(nats.js, nats.jsm, this.names, opts.replicas);
  }

  private get log(): Logger { return this.opts.logger; }
  get node(): string { return this.opts.node; }
  get leader(): string | undefined { return this.role === 'leader' ? this.opts.node : this.seenLeader; }

  async start(): Promise<void> {
    const { opts, names } = this;
    const { jsm } = this.nats;
    await retrying(this.log, `the streams of site ${names.key}`, async () => {
      try { await jsm.streams.info(names.stream); } catch {
        await jsm.streams.add({ name: names.stream, subjects: [names.subject], num_replicas: opts.replicas, storage: 'file' as never, max_msgs_per_subject: -1 })
          .catch(async (e) => { if (!/already in use|exists/.test((e as Error).message)) throw e; });
      }
      await this.snaps.ensure();
    });
    await this.openLocal();
    // a port chosen now, not by the kernel at each listen: the site's port passes from the follower
    // port to the server and back, and a kernel-chosen (port 0) listen socket's accepted connections
    // keep its port from being bound again exclusively
    if (this.port === 0) this.port = await freePort(opts.host);
    this.port_ = await this.listenAsFollower();
    this.port = this.port_.port;
    this.log.info({ node: opts.node, site: names.key, stream: names.stream, port: this.port, position: this.appliedSeq }, 'cluster: following');
    this.role = 'follower';
    await this.follower.follow();
    // followers look at the lease every eighth of it (a takeover starts at most that late); the
    // leader renews every quarter
    this.leaseTimer = setInterval(() => this.tick(), Math.max(50, Math.floor(this.leaseMs / 8)));
  }

  get url(): string { return `http://${this.opts.host}:${this.port}`; }

  /** the follower's port (follower-port.ts): controllers' frames forwarded, reads from the replica */
  private listenAsFollower(): Promise<FollowerPort> {
    const self = this;
    return listenFollower(this.opts.host, this.port, {
      view: this.view(), log: this.log,
      auth: () => self.auth,
      site: () => self.replica?.engine?.site ?? self.site,
      engine: () => self.replica?.engine,
      store: () => self.store,
      lag: () => ({ records: self.lag(), ms: self.lagMs() }),
      leaderUrl: () => (self.seenLeader ? self.opts.balancer?.urlOf(self.seenLeader, self.names.key) : undefined),
      forward: (c, f) => self.forwardFrame(c, f),
    }, this.opts.allowJsFallback);
  }

  /** a controller's frame, to whichever node leads (NATS request/reply); the leader's reply bytes */
  private async forwardFrame(controller: string, frame: Uint8Array): Promise<Uint8Array> {
    const h = headers();
    h.set(H_CONTROLLER, controller);
    const m = await this.nats.nc.request(this.names.forward, frame, { timeout: API_TIMEOUT_MS, headers: h });
    if (m.headers?.get(H_ERROR)) throw new ApbError('not_ready', m.headers.get(H_ERROR));
    this.counters.forwarded++;
    return m.data;
  }

  /** leader: answers the frames followers forward, through the server's own frame path */
  private serveForwarded(): void {
    this.fwdSub?.unsubscribe();
    this.fwdSub = this.nats.nc.subscribe(this.names.forward, {
      callback: (err, m) => {
        if (err) return;
        const server = this.server;
        const controller = m.headers?.get(H_CONTROLLER) ?? '';
        const refuse = (why: string): void => { const h = headers(); h.set(H_ERROR, why); m.respond(Empty, { headers: h }); };
        if (!server || this.role !== 'leader') { refuse('this node does not lead the site'); return; }
        this.counters.answeredForwarded++;
        server.forward(controller, m.data).then((b) => { m.respond(b); }, (e: unknown) => refuse((e as Error).message));
      },
    });
  }

  // ---- local journal ------------------------------------------------------------------------

  private posFile(): string { return `${this.opts.data}/cluster-position.json`; }

  private openStore(): Promise<LmdbStore> {
    return openStore(this.opts.data, {
      durability: this.opts.durability,
      replicate: (s, e, p) => this.publisher.publish(s, e, p),
      onLibraryOutput: (level, text) => this.log[level](`lmdb: ${text}`),
    }) as Promise<LmdbStore>;
  }

  private moveAside(why: string, extra: Record<string, unknown>): void {
    const aside = `${this.opts.data}.stale-${Date.now()}`;
    this.log.warn({ data: this.opts.data, movedTo: aside, ...extra }, `cluster: ${why}: moved aside, rebuilt from the cluster`);
    renameSync(this.opts.data, aside);
  }

  private async openLocal(): Promise<void> {
    const state = await retrying(this.log, `the state of stream ${this.names.stream}`, async () => (await this.nats.jsm.streams.info(this.names.stream)).state);
    let store = await this.openStore();
    let pos: Position | undefined;
    try { pos = JSON.parse(readFileSync(this.posFile(), 'utf8')) as Position; } catch { pos = undefined; }
    const fits = store.lastSeq === 0 || (pos !== undefined && pos.stream === this.names.stream && pos.end === store.lastSeq && pos.streamSeq <= state.last_seq);
    // the stream no longer holds the message after this journal's end (trimmed behind a snapshot)
    const behindTrim = (p: number): boolean => state.last_seq > 0 && state.first_seq > p + 1;
    if (!fits || (store.lastSeq > 0 && behindTrim(pos!.streamSeq))) {
      await store.close();
      this.moveAside(fits ? 'the local journal ends before the trimmed stream starts' : 'the local journal does not match the stream', { localEnd: store.lastSeq, position: pos, streamFirst: state.first_seq });
      store = await this.openStore();
      pos = undefined;
    }
    if (store.lastSeq === 0 && behindTrim(0)) {
      // empty, and the stream starts after a snapshot: the newest cluster snapshot, then the stream after it
      // picked and fetched together, again on failure: an upload meanwhile may purge the chunks of
      // the snapshot picked (the older of two kept), and the next pick is then a newer one
      let m: SnapshotManifest, bytes: Uint8Array;
      try {
        ({ m, bytes } = await retrying(this.log, `a snapshot of site ${this.names.key}`, async () => {
          const first = (await this.nats.jsm.streams.info(this.names.stream)).state.first_seq;
          const pick = await this.snaps.forJoin(first);
          if (!pick || first > pick.streamSeq + 1) throw new ApbError('storage_unavailable', `the stream ${this.names.stream} starts at ${first} and no snapshot covers what was trimmed before it`);
          return { m: pick, bytes: await this.snaps.fetch(pick) };
        }));
      } catch (e) { await store.close(); throw e; }
      await store.seedFromSnapshot(m.journalSeq, m.at, bytes, m.configText, m.idmax);
      await store.close();
      store = await this.openStore();
      pos = { stream: this.names.stream, streamSeq: m.streamSeq, end: m.journalSeq };
      this.counters.seeded++;
      this.log.info({ streamSeq: m.streamSeq, journalSeq: m.journalSeq, bytes: bytes.length, from: m.node }, 'cluster: local journal started from the cluster snapshot');
    }
    this.store = store;
    this.appliedSeq = this.follower.receivedSeq = store.lastSeq === 0 ? 0 : pos!.streamSeq;
    this.appliedEnd = store.lastSeq;
    this.snapEnd = store.latestSnapshotFile()?.seq ?? 0;
    if (pos && store.lastSeq > 0) this.writePosition();
    this.fenced = fence(store, () => this.publisher.open);
    this.makeReplica();
    // a local write that fails while leading: the stream may hold a batch this journal lacks
    store.onHealthChange((healthy) => {
      if (!healthy && this.store === store && (this.role === 'leader' || this.role === 'candidate')) {
        this.mustReset = true;
        this.stepDown('the local store failed');
      }
    });
  }

  /** the hot engine: newest local snapshot plus the local journal, then every batch as it is ingested */
  private makeReplica(): void {
    const r = new JournalReplica(this.store, this.opts.core, this.text, this.log);
    try {
      r.restoreSnapshot();
      r.catchUp(this.appliedEnd);
      this.replica = r;
      this.refreshAuth();
    } catch (e) {
      this.replica = undefined; // the takeover recovers from the store instead
      this.log.warn({ err: (e as Error).message }, 'cluster: no hot engine; a takeover will recover from the local journal');
    }
  }

  private advanceReplica(): void {
    if (!this.replica) return;
    try { this.replica.catchUp(this.appliedEnd); } catch (e) {
      this.replica = undefined;
      this.log.warn({ err: (e as Error).message }, 'cluster: the hot engine could not apply the journal; a takeover will recover from the local journal');
    }
    this.refreshAuth();
  }

  /**
   * Followers check controllers' tokens against the configuration in force, the journaled one (as
   * the leader does): a token a reload on the leader removed stops working on every node at once.
   * The node's own site file only seeds an empty journal.
   */
  private refreshAuth(): void {
    const text = this.replica?.text ?? this.store.configText();
    if (text === undefined || text === this.authText) return;
    try {
      this.auth = new Auth(this.replica?.engine?.site ?? loadJournaledSite(text, 'configuration in force').site);
      this.authText = text;
    } catch (e) { this.log.warn({ err: (e as Error).message }, 'cluster: the journaled configuration gives no tokens; the previous ones stay'); }
  }

  private async resetLocal(): Promise<void> {
    await this.store.close();
    this.moveAside('local journal held batches the stream refused, or could not follow it', {});
    await this.openLocal();
  }

  private notePosition(streamSeq: number, end: number): void {
    if (streamSeq <= this.appliedSeq) return;
    this.appliedSeq = streamSeq;
    this.appliedEnd = end;
    this.posTimer ??= setTimeout(() => { this.posTimer = undefined; this.writePosition(); }, 50);
  }

  private writePosition(): void {
    const p: Position = { stream: this.names.stream, streamSeq: this.appliedSeq, end: this.appliedEnd };
    try {
      if (!existsSync(this.opts.data)) mkdirSync(this.opts.data, { recursive: true, mode: 0o700 });
      const tmp = this.posFile() + '.tmp';
      writeFileSync(tmp, JSON.stringify(p), { mode: 0o600 });
      renameSync(tmp, this.posFile());
    } catch (e) { this.log.warn({ err: e }, 'cluster: cannot write the position file'); }
  }

  // ---- follower -----------------------------------------------------------------------------

  /** a stream message is in the local journal: the hot engine applies it; now and then a snapshot */
  private applied(streamSeq: number, end: number, storedAt: number): void {
    this.notePosition(streamSeq, end);
    this.appliedAt = storedAt;
    this.advanceReplica();
    if (this.snapshotEvery > 0 && this.appliedEnd - this.snapEnd >= this.snapshotEvery) void this.snapshot();
  }

  /**
   * A follower's snapshot of its hot engine at the journal seq it has applied: kept locally (a
   * restart restores it), and, by the one follower the balancer names, uploaded to the site's
   * snapshot stream, after which the journal stream is trimmed up to the older snapshot kept there
   * (a follower a little behind the newest one still finds the stream after its position).
   */
  private async snapshot(): Promise<void> {
    const r = this.replica;
    if (this.snapping || this.role !== 'follower' || !r?.engine || r.position !== this.appliedEnd) return;
    this.snapping = true;
    try {
      const seq = r.position, streamSeq = this.appliedSeq, text = r.text ?? this.text, at = Date.now();
      const bytes = r.engine.snapshot(); // synchronous: the engine exactly at `seq`
      const idmax = this.store.idHighWater();
      this.snapEnd = seq;
      await this.store.saveSnapshot(seq, bytes, text, at);
      this.counters.snapshots++;
      if (!this.opts.balancer || this.opts.balancer.snapshotter(this.names.key, this.seenLeader)) {
        const trimmed = await this.snaps.upload({ streamSeq, journalSeq: seq, at, configText: text, idmax, node: this.opts.node }, bytes);
        this.counters.uploaded++;
        if (trimmed > 0) this.counters.trimmed = trimmed;
        this.log.info({ seq, streamSeq, bytes: bytes.length, trimmedBefore: trimmed }, 'cluster: snapshot uploaded');
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster: follower snapshot failed; next time');
    } finally { this.snapping = false; }
  }

  /** the local journal cannot follow the stream (a gap, a refused batch): rebuilt from the cluster */
  private async resync(why: string): Promise<void> {
    if (this.role !== 'follower') return;
    this.role = 'starting';
    this.log.error({ why }, 'cluster: follower out of step with the stream: rebuilding the local journal');
    await this.follower.unfollow();
    await this.follower.lastIngest.catch(() => undefined);
    this.follower.lastIngest = Promise.resolve();
    for (let attempt = 0; this.role === 'starting'; attempt++) {
      try { await this.resetLocal(); break; } catch (e) {
        this.log.error({ err: (e as Error).message, attempt }, 'cluster: rebuilding the local journal failed; retrying');
        await delay(Math.min(5000, 250 * 2 ** Math.min(attempt, 4)));
      }
    }
    if (this.role !== 'starting') return;
    this.role = 'follower';
    await this.follower.follow().catch((e) => this.log.error({ err: e }, 'cluster: cannot follow'));
  }

  // ---- lease --------------------------------------------------------------------------------

  private tick(): void {
    if (this.role === 'follower') { void this.tryTakeover(); void this.follower.watch(); }
    else if (this.role === 'leader' || this.role === 'candidate') {
      if (Date.now() > this.validUntil) { this.stepDown('the lease lapsed before it could be renewed'); return; }
      if (Date.now() - this.renewStarted >= this.leaseMs / 4) void this.renew();
    }
  }

  private async renew(): Promise<void> {
    if (this.renewing || !this.held) return;
    this.renewing = true;
    const now = Date.now();
    this.renewStarted = now;
    try {
      const h = await renewLease(this.nats.kv, this.names.key, this.held, this.leaseMs, now);
      if (this.role !== 'leader' && this.role !== 'candidate') return;
      if (!h) { this.stepDown('another node took the lease'); return; }
      this.held = h;
      this.validUntil = now + this.leaseMs;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster: lease renewal failed; retrying');
    } finally { this.renewing = false; }
  }

  private async tryTakeover(): Promise<void> {
    if (this.taking) return;
    this.taking = true;
    try {
      const now = Date.now();
      const { kv } = this.nats;
      const cur = await readLease(kv, this.names.key);
      if (cur.lease) { this.seenLeader = cur.lease.node; this.seenEpoch = Math.max(this.seenEpoch, cur.lease.epoch); }
      const extra = this.opts.balancer?.takeDelayMs(this.names.key) ?? 0;
      const held = await tryTakeLease(kv, this.names.key, this.opts.node, this.leaseMs, this.marginMs + extra, now);
      if (!held || this.role !== 'follower') return;
      this.held = held;
      this.validUntil = now + this.leaseMs;
      await this.takeOver().catch((e) => this.stepDown(`the takeover failed: ${(e as Error).message}`));
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster: lease check failed');
    } finally { this.taking = false; }
  }

  /** Takeover steps 2-4 (see the file comment). */
  private async takeOver(): Promise<void> {
    const epoch = this.held!.lease.epoch;
    const f = this.follower;
    this.role = 'candidate';
    this.log.info({ epoch }, 'cluster: lease taken; catching up with the stream');
    const deadline = Date.now() + CATCH_UP_MS;
    for (;;) {
      if (this.role !== 'candidate') return;
      const last = (await this.nats.jsm.streams.info(this.names.stream)).state.last_seq;
      while (f.receivedSeq < last && this.role === 'candidate') {
        if (Date.now() > deadline) { this.stepDown(`could not catch up with the stream (at ${f.receivedSeq} of ${last})`); return; }
        await delay(2);
      }
      await f.lastIngest;
      await this.store.whenCommitted();
      if (this.role !== 'candidate') return;
      await f.unfollow();
      try {
        const h = headers();
        h.set(H_FENCE, String(epoch));
        h.set(H_NODE, this.opts.node);
        const fenceId = `${this.opts.node}.${epoch}.fence`;
        const ack = await this.nats.js.publish(this.names.subject, Empty, { msgID: fenceId, expect: { lastSequence: last }, headers: h });
        f.receivedSeq = ack.seq;
        this.publisher.start(ack.seq, fenceId);
        this.notePosition(ack.seq, this.appliedEnd);
        break;
      } catch (e) {
        if (!isWrongRevision(e)) { this.stepDown(`the fence could not be published: ${(e as Error).message}`); return; }
        await f.follow(); // someone appended after L: read it too, then fence again
      }
    }
    this.seenLeader = this.opts.node;
    this.seenEpoch = epoch;
    // the hot engine, when it has applied the whole local journal under the configuration in force
    const text = this.store.configText() ?? this.text;
    let engine: Engine | undefined;
    const r = this.replica;
    this.replica = undefined;
    if (r?.engine) {
      try {
        r.catchUp(this.store.lastSeq);
        if (r.position === this.store.lastSeq && r.text === text) engine = r.engine;
      } catch { /* recovered from the store below */ }
    }
    this.takeoverEngine = engine ? 'hot' : 'recovered';
    this.log.info({ engine: this.takeoverEngine }, 'cluster: starting the server');
    try {
      await this.port_?.close();
      this.port_ = undefined;
      this.server = await startServer({
        // the configuration in force is the journaled one (a reload on the previous leader reached this
        // node through the stream); the file is only read again on SIGHUP
        configText: text, engine,
        configPath: this.opts.configPath, data: this.opts.data, port: this.port, host: this.opts.host,
        logger: this.log, core: this.opts.core, durability: this.opts.durability, allowJsFallback: this.opts.allowJsFallback,
        store: this.fenced, cluster: this.view(),
      });
    } catch (e) {
      this.stepDown(`the server could not start: ${(e as Error).message}`);
      return;
    }
    if (this.role !== 'candidate') {
      // stepped down while the server was starting: it must not serve
      const s = this.server;
      this.server = undefined;
      await s?.close().catch(() => undefined);
      if (!this.port_ && this.role === 'follower') this.port_ = await this.listenAsFollower().catch(() => undefined);
      return;
    }
    this.role = 'leader';
    this.serveForwarded();
    this.counters.takeovers++;
    this.log.info({ epoch, streamSeq: this.appliedSeq, url: this.server.url }, 'cluster: leading the site');
  }

  /**
   * Balancing (host.ts): hands the site to `to` gracefully: the server stops taking frames and
   * answers every one it has (the lease is still renewed meanwhile), then the node steps down,
   * releasing the lease for `to` alone for one lease period.
   */
  async yieldTo(to: string): Promise<void> {
    if (this.role !== 'leader' || this.yielding) return;
    this.yielding = true;
    this.log.info({ to }, 'cluster: handing the site over (balancing)');
    try {
      this.fwdSub?.unsubscribe();
      this.fwdSub = undefined;
      const s = this.server;
      this.server = undefined;
      await s?.close().catch((e) => this.log.error({ err: e }, 'cluster: closing the server failed'));
      this.stepDown(`handing over to ${to}`, to);
    } finally { this.yielding = false; }
  }

  /**
   * Leaves the leader (or candidate) role: nothing more is published, every reply still waiting is
   * refused, the server closes, the lease is released (unless taken; for `handoff` only, when
   * given), and the node follows again (from a rebuilt local journal when it holds batches the
   * stream may not have).
   */
  stepDown(why: string, handoff?: string): void {
    if (this.role !== 'leader' && this.role !== 'candidate') return;
    this.role = 'stepping-down';
    this.publisher.stop();
    this.counters.stepDowns++;
    this.log.warn({ why, epoch: this.held?.lease.epoch }, 'cluster: stepping down');
    this.fwdSub?.unsubscribe();
    this.fwdSub = undefined;
    void (async () => {
      const server = this.server;
      this.server = undefined;
      await server?.close().catch((e) => this.log.error({ err: e }, 'cluster: closing the server failed'));
      const held = this.held;
      this.held = undefined;
      if (held && !/took the lease/.test(why)) await releaseLease(this.nats.kv, this.names.key, held, handoff, this.leaseMs);
      await this.follower.unfollow();
      await this.follower.lastIngest.catch(() => undefined);
      await this.store.whenCommitted().catch(() => undefined);
      // every batch the local journal holds was acknowledged by the stream: it is a prefix of it
      if (this.mustReset || this.store.lastSeq !== this.appliedEnd) await this.resetLocal();
      else this.makeReplica(); // the server's engine went with it: a new hot engine from the journal
      this.mustReset = false;
      this.follower.receivedSeq = this.appliedSeq;
      this.follower.lastIngest = Promise.resolve();
      try {
        this.port_ = await this.listenAsFollower();
      } catch (e) { this.log.error({ err: e }, 'cluster: cannot listen as a follower'); }
      this.role = 'follower';
      await this.follower.follow();
    })().catch((e) => this.log.error({ err: e }, 'cluster: stepping down failed'));
  }

  /** SIGHUP: the leader re-reads its site file (followers take the journaled configuration as it comes) */
  async reload(): Promise<void> {
    if (this.role !== 'leader' || !this.server) { this.log.info({ site: this.names.key }, 'cluster: SIGHUP ignored: this node does not lead the site'); return; }
    await this.server.reload('sighup');
  }

  // ---- operations ---------------------------------------------------------------------------

  private lag(): number { return this.role === 'leader' ? 0 : Math.max(this.follower.pending, this.follower.streamLast - this.appliedSeq); }
  /** ms since the stream stored the last message this node applied, when it has not applied everything (0: up to date) */
  private lagMs(): number { return this.lag() === 0 || this.appliedAt === 0 ? 0 : Math.max(0, Date.now() - this.appliedAt); }

  view(): { health(): Record<string, unknown>; metrics(): string; leader(): string | undefined } {
    const c = this.counters;
    return {
      health: () => ({
        node: this.opts.node, site: this.names.key, role: this.role, leader: this.leader,
        leaderUrl: this.leader && this.leader !== this.opts.node ? this.opts.balancer?.urlOf(this.leader, this.names.key) : undefined,
        epoch: this.held?.lease.epoch ?? this.seenEpoch, streamSeq: this.appliedSeq, journalSeq: this.appliedEnd, lag: this.lag(), lagMs: this.lagMs(),
        forwarded: c.forwarded, takeoverEngine: this.takeoverEngine, snapshotSeq: this.snapEnd,
        snapshots: c.snapshots, snapshotsUploaded: c.uploaded, startedFromSnapshot: c.seeded > 0,
        nodes: this.opts.balancer?.nodes(),
      }),
      metrics: () => {
        const site = `site="${this.names.key}",node="${this.opts.node}"`;
        const line = (name: string, type: string, help: string, v: number): string[] => [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${site}} ${v}`];
        const L = [
          '# HELP apb_cluster_role 1 for the role this node has for the site', '# TYPE apb_cluster_role gauge',
          ...ROLES.map((r) => `apb_cluster_role{${site},role="${r}"} ${r === this.role ? 1 : 0}`),
          ...line('apb_cluster_epoch', 'gauge', 'lease epoch of the site as this node knows it', this.held?.lease.epoch ?? this.seenEpoch),
          ...line('apb_cluster_lag_messages', 'gauge', 'stream messages this node has not applied yet', this.lag()),
          ...line('apb_cluster_lag_ms', 'gauge', 'ms since the stream stored the last message applied, while behind', this.lagMs()),
          ...line('apb_cluster_stream_seq', 'gauge', 'last stream message applied locally', this.appliedSeq),
          ...line('apb_cluster_published_total', 'counter', 'batches this node published as leader', this.publisher.published),
          ...line('apb_cluster_refused_total', 'counter', 'publishes the stream refused (deposed)', this.publisher.refused),
          ...line('apb_cluster_takeovers_total', 'counter', 'times this node took the lead', c.takeovers),
          ...line('apb_cluster_step_downs_total', 'counter', 'times this node stepped down', c.stepDowns),
          ...line('apb_cluster_forwarded_total', 'counter', 'controller frames this node forwarded to the leader (as a follower)', c.forwarded),
          ...line('apb_cluster_forwarded_answered_total', 'counter', 'frames forwarded by followers that this node answered (as leader)', c.answeredForwarded),
          ...line('apb_cluster_snapshots_total', 'counter', 'snapshots this node took of its hot engine (as a follower)', c.snapshots),
          ...line('apb_cluster_snapshots_uploaded_total', 'counter', 'of those, uploaded to the site snapshot stream', c.uploaded),
        ];
        return L.join('\n') + '\n';
      },
      leader: () => this.leader,
    };
  }

  async close(): Promise<void> {
    const was = this.role;
    this.role = 'closed';
    clearInterval(this.leaseTimer);
    this.fwdSub?.unsubscribe();
    if (was === 'leader' || was === 'candidate') {
      await this.server?.close().catch(() => undefined); // in-flight replies still wait for their acknowledgements
      this.publisher.stop();
      if (this.held) await releaseLease(this.nats.kv, this.names.key, this.held); // the next node takes over at once
    }
    await this.follower.unfollow();
    await this.port_?.close();
    await this.follower.lastIngest.catch(() => undefined);
    clearTimeout(this.posTimer);
    await this.store?.whenCommitted().catch(() => undefined);
    if (this.store && this.store.lastSeq === this.appliedEnd) this.writePosition();
    await this.store?.close().catch(() => undefined);
  }
}
