/**
 * Cluster mode (`apb serve --cluster nats://H:P[,...] --node NAME`): one site decided by one node
 * at a time, its journal replicated through NATS JetStream, the other nodes kept up to date and
 * ready to take over. No consensus or replication of our own: JetStream's stream (replicated by its
 * RAFT group over `--stream-replicas` servers) is the source of truth, its expected-last-sequence
 * check is the fence, and a key-value bucket holds the lease.
 *
 * Objects per site (names.ts): stream APB_<key> on subject apb.<key>.journal, lease <key> in bucket
 * APB_LEASES. A journal message holds one or more consecutive write-ahead-log batches (store/wal.ts
 * payload: the msgpack journal batch of store/journal-batch.ts), framed as journal-message.ts draws,
 * headers:
 *
 *   Apb-Seq    "<s>-<e>"   the journal seqs the message holds (the stream's own seq counts messages)
 *   Apb-Epoch  "<n>"       the publisher's lease epoch
 *   Apb-Node   "<name>"    the publisher
 *   Apb-Fence  "<n>"       (no payload) a new leader's first message: it ends every older epoch
 *
 * Leader, per batch: the store (lmdb-store.ts, option `replicate`) writes the batch to its WAL and
 * hands it to publishBatch(). The batches of one event-loop turn go out as one message, published
 * with Nats-Expected-Last-Sequence = the stream seq of the previous message and
 * Nats-Expected-Last-Msg-Id = its id (Nats-Msg-Id: node, epoch, first journal seq; at most
 * MAX_IN_FLIGHT pipelined). The id chain is what fences a pipeline: after a refused message, a later
 * one could expect, by coincidence, exactly the seq a new leader's fence took; it cannot expect the
 * fence's id. The replies of the batch are released only when both the local WAL and JetStream's acknowledgement (the stream's quorum
 * has it) are in, and the lease is still valid on the leader's own clock. A refused publish (wrong
 * last sequence: someone else appended), a failed or timed-out one, a lost lease: the node steps
 * down at once: every reply still waiting is answered storage_unavailable (never a grant), the
 * server closes, and a local journal holding batches the stream does not have is moved aside
 * (D.stale-<ms>) and rebuilt from the stream.
 *
 * Lease (lease.ts): {node, epoch, since, renewedAt, expiresAt}, written by compare-and-swap on the
 * key's revision, renewed every leaseMs/4 (followers look at it every leaseMs/8). A follower judges
 * it expired when expiresAt + marginMs has passed on its own clock (NATS 2.9 has no per-key TTL;
 * clocks are assumed within marginMs).
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
 * Follower: an ordered consumer on the stream from the seq after its position; each batch goes
 * through LmdbStore.appendReplicated (same seqs, same reply bytes: a resend after failover gets the
 * identical reply). D/cluster-position.json {stream, streamSeq, end} records how far the local
 * journal follows the stream; at start a journal that does not end where that file says (a crash
 * with unacknowledged batches, a deposed leader) is moved aside and rebuilt from the stream.
 *
 * Forwarding (follower-port.ts): a follower takes controllers and forwards each frame to the leader
 * over NATS request/reply (subject apb.<key>.forward); the leader answers through its own frame path.
 *
 * Hot engine: a follower keeps an engine (store/replica.ts, the code recovery uses) applying each
 * ingested batch, and hands it to the server at takeover when it has applied the whole local journal
 * under the configuration in force; otherwise the server recovers from the local journal as usual.
 *
 * Not done yet (docs/cluster.md says so too): followers take no snapshots, the stream is never
 * trimmed and a node cannot start from a snapshot, followers serve no HTTP reads, one site per node.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { connect, headers, Empty, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { ApbError } from '../errors.js';
import { loadSiteText } from '../config/load.js';
import type { CompiledSite } from '../config/types.js';
import { openStore } from '../store/index.js';
import type { LmdbStore } from '../store/lmdb-store.js';
import type { Store } from '../store/types.js';
import { JournalReplica } from '../store/replica.js';
import type { Engine } from '../engine/types.js';
import { startServer, type RunningServer } from '../server/server.js';
import type { Logger } from '../server/log.js';
import { LEASE_BUCKET, siteNames, type SiteNames } from './names.js';
import { isWrongRevision, releaseLease, renewLease, tryTakeLease, type HeldLease, readLease } from './lease.js';
import { listenFollower, type FollowerPort } from './follower-port.js';
import { decodeEntries, encodeEntries, MESSAGE_TARGET_BYTES } from './journal-message.js';

/** JetStream API calls that are not on the reply path */
const API_TIMEOUT_MS = 5000;
/** a candidate that has not caught up with the stream and fenced it by then gives the lease up */
const CATCH_UP_MS = 15_000;
/** journal messages a leader has published and not seen acknowledged yet, at most */
const MAX_IN_FLIGHT = 8;

export const H_SEQ = 'Apb-Seq';
export const H_EPOCH = 'Apb-Epoch';
export const H_NODE = 'Apb-Node';
export const H_FENCE = 'Apb-Fence';
/** forwarded frames (request/reply, not stored): the controller, and the leader's refusal */
export const H_CONTROLLER = 'Apb-Controller';
export const H_ERROR = 'Apb-Error';

export interface ClusterOptions {
  servers: string[];
  node: string;
  configPath: string;
  data: string;
  host: string;
  port: number;
  /** replicas of the site's stream and of the lease bucket when this node creates them (1-5) */
  replicas: number;
  /** lease duration (ms); default 2000 */
  leaseMs?: number;
  /** clock-skew margin a follower adds before judging a lease expired (ms); default 250 */
  marginMs?: number;
  core: 'wasm' | 'reference';
  durability: 'commit' | 'flush';
  allowJsFallback?: boolean;
  logger: Logger;
}

type Role = 'starting' | 'follower' | 'candidate' | 'leader' | 'stepping-down' | 'closed';
interface Position { stream: string; streamSeq: number; end: number }

const ROLES: Role[] = ['starting', 'follower', 'candidate', 'leader', 'stepping-down', 'closed'];

export class ClusterNode {
  role: Role = 'starting';
  readonly names: SiteNames;
  private readonly text: string;
  private readonly leaseMs: number;
  private readonly marginMs: number;
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  /** JetStream API calls other than publishing (consumers, stream info): a longer timeout, as NATS may be electing */
  private jsa!: JetStreamClient;
  private jsm!: JetStreamManager;
  private kv!: KV;
  private store!: LmdbStore;
  /** follower: the engine kept up to date with the local journal (replica.ts), handed to the server at takeover */
  private replica: JournalReplica | undefined;
  /** how the last takeover got its engine: the follower's hot engine, or recovery from the local journal */
  private takeoverEngine: 'hot' | 'recovered' | undefined;
  private fenced!: Store;
  private server: RunningServer | undefined;
  private follower: FollowerPort | undefined;
  /** leader: the subscription answering frames forwarded by followers */
  private fwdSub: Subscription | undefined;
  private readonly site: CompiledSite;
  private msgs: ConsumerMessages | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private posTimer: NodeJS.Timeout | undefined;
  private held: HeldLease | undefined;
  /** the lease as last read by a follower (for /healthz: who leads) */
  private seenLeader: string | undefined;
  private seenEpoch = 0;
  /** leader: the lease is ours until then, on this clock */
  private validUntil = 0;
  private canPublish = false;
  /** leader: batches waiting to be published (MAX_IN_FLIGHT messages are), and the id of the last message published */
  private outbox: { s: number; e: number; payload: Uint8Array; resolve(): void; reject(e: Error): void }[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  private lastMsgId = '';
  /** stepping down must rebuild the local journal from the stream (a local write failed while leading) */
  private mustReset = false;
  private renewing = false;
  private renewStarted = 0;
  private taking = false;
  /** leader: stream seq of the last message published (the next publish expects it) */
  private lastStreamSeq = 0;
  /** stream seq and journal end of the last message known durable both in the stream and locally */
  private appliedSeq = 0;
  private appliedEnd = 0;
  /** follower: stream seq of the last message handed to the store, and the promise of its append */
  private receivedSeq = 0;
  private lastIngest: Promise<void> = Promise.resolve();
  /** follower: messages the consumer reported still pending after the last one (replication lag) */
  private pending = 0;
  /** watchdog: the stream's last seq as last read, and receivedSeq at the previous check */
  private streamLast = 0;
  private watchSeq = -1;
  private watchAt = 0;
  private watching = false;
  private port: number;
  readonly counters = { published: 0, refused: 0, ingested: 0, takeovers: 0, stepDowns: 0, forwarded: 0, answeredForwarded: 0 };

  constructor(private readonly opts: ClusterOptions) {
    this.text = readFileSync(opts.configPath, 'utf8');
    this.site = loadSiteText(this.text, opts.configPath).site;
    this.names = siteNames(this.site.config.site);
    this.leaseMs = opts.leaseMs ?? 2000;
    this.marginMs = opts.marginMs ?? 250;
    this.port = opts.port;
  }

  private get log(): Logger { return this.opts.logger; }

  async start(): Promise<void> {
    const { opts, names } = this;
    try {
      this.nc = await connect({ servers: opts.servers, name: `apb-${opts.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    } catch (e) {
      throw new ApbError('storage_unavailable', `cannot reach NATS at ${opts.servers.join(',')}: ${(e as Error).message}`);
    }
    this.js = jetstream(this.nc, { timeout: this.leaseMs });
    this.jsa = jetstream(this.nc, { timeout: API_TIMEOUT_MS });
    this.jsm = await jetstreamManager(this.nc, { timeout: API_TIMEOUT_MS });
    try { await this.jsm.streams.info(names.stream); } catch {
      await this.jsm.streams.add({ name: names.stream, subjects: [names.subject], num_replicas: opts.replicas, storage: 'file' as never, max_msgs_per_subject: -1 })
        .catch(async (e) => { if (!/already in use|exists/.test((e as Error).message)) throw e; });
    }
    this.kv = await new Kvm(this.js).create(LEASE_BUCKET, { history: 1, replicas: opts.replicas });
    await this.openLocal();
    const f = await this.listenAsFollower(opts.host);
    this.follower = f;
    this.port = f.port;
    this.log.info({ node: opts.node, site: names.key, stream: names.stream, port: this.port, position: this.appliedSeq }, 'cluster: following');
    this.role = 'follower';
    await this.follow();
    // followers look at the lease every eighth of it (a takeover starts at most that late); the
    // leader renews every quarter
    this.leaseTimer = setInterval(() => this.tick(), Math.max(50, Math.floor(this.leaseMs / 8)));
  }

  get url(): string { return `http://${this.opts.host}:${this.port}`; }

  /** the follower's port (follower-port.ts): controllers' frames are forwarded to the leader */
  private listenAsFollower(host: string): Promise<FollowerPort> {
    return listenFollower(host, this.port, this.view(), this.site, (c, f) => this.forwardFrame(c, f), this.opts.allowJsFallback);
  }

  /** a controller's frame, to whichever node leads (NATS request/reply); the leader's reply bytes */
  private async forwardFrame(controller: string, frame: Uint8Array): Promise<Uint8Array> {
    const h = headers();
    h.set(H_CONTROLLER, controller);
    const m = await this.nc.request(this.names.forward, frame, { timeout: API_TIMEOUT_MS, headers: h });
    if (m.headers?.get(H_ERROR)) throw new ApbError('not_ready', m.headers.get(H_ERROR));
    this.counters.forwarded++;
    return m.data;
  }

  /** leader: answers the frames followers forward, through the server's own frame path */
  private serveForwarded(): void {
    this.fwdSub?.unsubscribe();
    this.fwdSub = this.nc.subscribe(this.names.forward, {
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

  private async openLocal(): Promise<void> {
    const open = async (): Promise<LmdbStore> => await openStore(this.opts.data, {
      durability: this.opts.durability,
      replicate: (s, e, p) => this.publishBatch(s, e, p),
      onLibraryOutput: (level, text) => this.log[level](`lmdb: ${text}`),
    }) as LmdbStore;
    let store = await open();
    let pos: Position | undefined;
    try { pos = JSON.parse(readFileSync(this.posFile(), 'utf8')) as Position; } catch { pos = undefined; }
    const last = (await this.jsm.streams.info(this.names.stream)).state.last_seq;
    const fits = store.lastSeq === 0 || (pos !== undefined && pos.stream === this.names.stream && pos.end === store.lastSeq && pos.streamSeq <= last);
    if (!fits) {
      const aside = `${this.opts.data}.stale-${Date.now()}`;
      this.log.warn({ data: this.opts.data, movedTo: aside, localEnd: store.lastSeq, position: pos }, 'cluster: the local journal does not match the stream: moved aside, rebuilt from the stream');
      await store.close();
      renameSync(this.opts.data, aside);
      store = await open();
      pos = undefined;
    }
    this.store = store;
    this.appliedSeq = this.receivedSeq = store.lastSeq === 0 ? 0 : pos!.streamSeq;
    this.appliedEnd = store.lastSeq;
    this.fenced = fence(store, () => this.canPublish);
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
      r.catchUp();
      this.replica = r;
    } catch (e) {
      this.replica = undefined; // the takeover recovers from the store instead
      this.log.warn({ err: (e as Error).message }, 'cluster: no hot engine; a takeover will recover from the local journal');
    }
  }

  private advanceReplica(): void {
    if (!this.replica) return;
    try { this.replica.catchUp(); } catch (e) {
      this.replica = undefined;
      this.log.warn({ err: (e as Error).message }, 'cluster: the hot engine could not apply the journal; a takeover will recover from the local journal');
    }
  }

  private async resetLocal(): Promise<void> {
    await this.store.close();
    const aside = `${this.opts.data}.stale-${Date.now()}`;
    renameSync(this.opts.data, aside);
    this.log.warn({ movedTo: aside }, 'cluster: local journal held batches the stream refused: moved aside, rebuilt from the stream');
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

  /**
   * Starts the consumer from the message after receivedSeq, retrying (with backoff) while JetStream
   * does not answer (a NATS server lost, the stream electing a new leader); restarted the same way
   * when it ends by itself.
   */
  private async follow(): Promise<void> {
    for (let attempt = 0; this.role === 'follower' || this.role === 'candidate'; attempt++) {
      try {
        const c = await this.jsa.consumers.get(this.names.stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.receivedSeq + 1 });
        const msgs = await c.consume({ max_messages: 512 });
        this.msgs = msgs;
        void this.drain(msgs);
        return;
      } catch (e) {
        this.log.warn({ err: (e as Error).message, attempt }, 'cluster: cannot read the stream yet; retrying');
        await delay(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  private async drain(msgs: ConsumerMessages): Promise<void> {
    try {
      for await (const m of msgs) {
        if (this.msgs !== msgs) break;
        this.ingest(m);
      }
    } catch (e) {
      if (this.msgs === msgs) this.log.warn({ err: (e as Error).message }, 'cluster: the stream consumer stopped');
    }
    if (this.msgs === msgs) { // ended by itself: start again from where it stopped
      this.msgs = undefined;
      await delay(100);
      if (this.msgs === undefined) await this.follow();
    }
  }

  private async unfollow(): Promise<void> {
    const m = this.msgs;
    this.msgs = undefined;
    if (m) await m.close().catch(() => undefined);
  }

  private ingest(m: JsMsg): void {
    if (m.seq !== this.receivedSeq + 1) { void this.resync(`stream message ${m.seq} after ${this.receivedSeq}`); return; }
    this.receivedSeq = m.seq;
    this.pending = m.info.pending;
    const range = m.headers?.get(H_SEQ);
    const seq = m.seq;
    let p: Promise<void> = this.lastIngest;
    let end = this.appliedEnd;
    if (range) {
      try {
        const all: Promise<void>[] = [];
        for (const x of decodeEntries(m.data)) { all.push(this.store.appendReplicated(x.s, x.e, x.payload)); end = x.e; }
        p = Promise.all(all).then(() => undefined);
      } catch (e) { p = Promise.reject(e); }
      this.counters.ingested++;
    } else {
      // a fence: nothing to store, in order with the batches before it
      const epoch = Number(m.headers?.get(H_FENCE) ?? 0);
      if (epoch > this.seenEpoch) { this.seenEpoch = epoch; this.seenLeader = m.headers?.get(H_NODE) || this.seenLeader; }
    }
    this.lastIngest = p.then(() => { this.notePosition(seq, Math.max(end, this.appliedEnd)); this.advanceReplica(); }, (e) => { void this.resync((e as Error).message); });
  }

  /** the local journal cannot follow the stream (a gap, a refused batch): rebuilt from the stream */
  private async resync(why: string): Promise<void> {
    if (this.role !== 'follower') return;
    this.role = 'starting';
    this.log.error({ why }, 'cluster: follower out of step with the stream: rebuilding the local journal');
    await this.unfollow();
    await this.resetLocal().catch((e) => this.log.error({ err: e }, 'cluster: reset failed'));
    this.role = 'follower';
    await this.follow().catch((e) => this.log.error({ err: e }, 'cluster: cannot follow'));
  }

  // ---- lease --------------------------------------------------------------------------------

  private tick(): void {
    if (this.role === 'follower') { void this.tryTakeover(); void this.watch(); }
    else if (this.role === 'leader' || this.role === 'candidate') {
      if (Date.now() > this.validUntil) { this.stepDown('the lease lapsed before it could be renewed'); return; }
      if (Date.now() - this.renewStarted >= this.leaseMs / 4) void this.renew();
    }
  }

  /**
   * Follower watchdog, every second at most: a consumer that made no progress while the stream has
   * more (its server died and the client did not bring it back) is started again.
   */
  private async watch(): Promise<void> {
    const now = Date.now();
    if (this.watching || now - this.watchAt < 1000) return;
    this.watching = true;
    this.watchAt = now;
    try {
      const seen = this.receivedSeq;
      const last = (await this.jsm.streams.info(this.names.stream)).state.last_seq;
      this.streamLast = last;
      if (last > seen && seen === this.watchSeq && this.role === 'follower') {
        this.log.warn({ at: seen, last }, 'cluster: the stream consumer is stuck: starting it again');
        await this.unfollow();
        await this.follow();
      }
      this.watchSeq = this.receivedSeq;
    } catch { /* NATS busy: next time */ } finally { this.watching = false; }
  }

  private async renew(): Promise<void> {
    if (this.renewing || !this.held) return;
    this.renewing = true;
    const now = Date.now();
    this.renewStarted = now;
    try {
      const h = await renewLease(this.kv, this.names.key, this.held, this.leaseMs, now);
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
      const cur = await readLease(this.kv, this.names.key);
      if (cur.lease) { this.seenLeader = cur.lease.node; this.seenEpoch = Math.max(this.seenEpoch, cur.lease.epoch); }
      const held = await tryTakeLease(this.kv, this.names.key, this.opts.node, this.leaseMs, this.marginMs, now);
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
    this.role = 'candidate';
    this.log.info({ epoch }, 'cluster: lease taken; catching up with the stream');
    const deadline = Date.now() + CATCH_UP_MS;
    for (;;) {
      if (this.role !== 'candidate') return;
      const last = (await this.jsm.streams.info(this.names.stream)).state.last_seq;
      while (this.receivedSeq < last && this.role === 'candidate') {
        if (Date.now() > deadline) { this.stepDown(`could not catch up with the stream (at ${this.receivedSeq} of ${last})`); return; }
        await delay(2);
      }
      await this.lastIngest;
      await this.store.whenCommitted();
      if (this.role !== 'candidate') return;
      await this.unfollow();
      try {
        const h = headers();
        h.set(H_FENCE, String(epoch));
        h.set(H_NODE, this.opts.node);
        const fenceId = `${this.opts.node}.${epoch}.fence`;
        const ack = await this.js.publish(this.names.subject, Empty, { msgID: fenceId, expect: { lastSequence: last }, headers: h });
        this.receivedSeq = ack.seq;
        this.lastStreamSeq = ack.seq;
        this.lastMsgId = fenceId;
        this.inFlight = 0;
        this.notePosition(ack.seq, this.appliedEnd);
        break;
      } catch (e) {
        if (!isWrongRevision(e)) { this.stepDown(`the fence could not be published: ${(e as Error).message}`); return; }
        await this.follow(); // someone appended after L: read it too, then fence again
      }
    }
    this.seenLeader = this.opts.node;
    this.seenEpoch = epoch;
    this.canPublish = true;
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
      await this.follower?.close();
      this.follower = undefined;
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
      if (!this.follower && this.role === 'follower') this.follower = await this.listenAsFollower(this.opts.host).catch(() => undefined);
      return;
    }
    this.role = 'leader';
    this.serveForwarded();
    this.counters.takeovers++;
    this.log.info({ epoch, streamSeq: this.lastStreamSeq, url: this.server.url }, 'cluster: leading the site');
  }

  /**
   * Leaves the leader (or candidate) role: nothing more is published, every reply still waiting is
   * refused, the server closes, the lease is released (unless taken), and the node follows again
   * (from a rebuilt local journal when it holds batches the stream may not have).
   */
  stepDown(why: string): void {
    if (this.role !== 'leader' && this.role !== 'candidate') return;
    this.role = 'stepping-down';
    this.canPublish = false;
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
      if (held && !/took the lease/.test(why)) await releaseLease(this.kv, this.names.key, held);
      await this.unfollow();
      await this.lastIngest.catch(() => undefined);
      await this.store.whenCommitted().catch(() => undefined);
      // every batch the local journal holds was acknowledged by the stream: it is a prefix of it
      if (this.mustReset || this.store.lastSeq !== this.appliedEnd) await this.resetLocal();
      else this.makeReplica(); // the server's engine went with it: a new hot engine from the journal
      this.mustReset = false;
      this.receivedSeq = this.appliedSeq;
      this.lastIngest = Promise.resolve();
      try {
        this.follower = await this.listenAsFollower(this.opts.host);
      } catch (e) { this.log.error({ err: e }, 'cluster: cannot listen as a follower'); }
      this.role = 'follower';
      await this.follow();
    })().catch((e) => this.log.error({ err: e }, 'cluster: stepping down failed'));
  }

  // ---- leader: the replicated journal -------------------------------------------------------

  /**
   * The store's `replicate` hook: the batch joins the outbox, sent at the end of the event-loop turn
   * with every other batch of the turn in one message (journal-message.ts). Up to MAX_IN_FLIGHT
   * messages are pipelined, each expecting both the stream seq and the message id of its
   * predecessor (ids are unique: node, epoch, first journal seq). The id matters: after a refused
   * message, a later pipelined one could expect, by coincidence, exactly the seq a new leader's fence
   * took (the fence has another id, so it is refused too).
   */
  private publishBatch(s: number, e: number, payload: Uint8Array): Promise<void> {
    if (!this.canPublish) return Promise.reject(new ApbError('storage_unavailable', 'this node does not lead the site (cluster)'));
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ s, e, payload, resolve, reject });
      if (!this.flushScheduled) { this.flushScheduled = true; setImmediate(() => { this.flushScheduled = false; this.sendNext(); }); }
    });
  }

  private sendNext(): void {
    while (this.outbox.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      let bytes = 0, n = 0;
      while (n < this.outbox.length && (n === 0 || bytes + this.outbox[n]!.payload.length <= MESSAGE_TARGET_BYTES)) bytes += this.outbox[n++]!.payload.length;
      const group = this.outbox.splice(0, n);
      if (!this.canPublish || !this.held) { this.refuseAll(group, new ApbError('storage_unavailable', 'this node does not lead the site (cluster)')); return; }
      this.publishGroup(group);
    }
  }

  private publishGroup(group: { s: number; e: number; payload: Uint8Array; resolve(): void; reject(e: Error): void }[]): void {
    const expected = this.lastStreamSeq++;
    const prevId = this.lastMsgId;
    const epoch = this.held!.lease.epoch;
    const first = group[0]!.s, last = group.at(-1)!.e;
    const id = `${this.opts.node}.${epoch}.${first}`;
    this.lastMsgId = id;
    const h = headers();
    h.set(H_SEQ, `${first}-${last}`);
    h.set(H_EPOCH, String(epoch));
    h.set(H_NODE, this.opts.node);
    this.inFlight++;
    const refuse = (err: ApbError): void => this.refuseAll(group, err);
    this.js.publish(this.names.subject, encodeEntries(group), { msgID: id, expect: { lastSequence: expected, lastMsgID: prevId }, headers: h }).then(
      (ack) => {
        this.inFlight--;
        if (!this.canPublish || this.held?.lease.epoch !== epoch) { refuse(new ApbError('storage_unavailable', 'this node stepped down before the reply could go (cluster)')); return; }
        if (ack.seq !== expected + 1) { this.stepDown(`the stream stored batches ${first}-${last} at seq ${ack.seq}, not ${expected + 1}`); refuse(new ApbError('storage_unavailable', 'the replicated journal is out of step (cluster)')); return; }
        if (Date.now() > this.validUntil) { this.stepDown('the lease lapsed while a batch was being replicated'); refuse(new ApbError('storage_unavailable', 'the leader lease lapsed (cluster)')); return; }
        this.counters.published++;
        this.notePosition(ack.seq, last);
        for (const g of group) g.resolve();
        this.sendNext();
      },
      (err: unknown) => {
        this.inFlight--;
        if (isWrongRevision(err) || /wrong last msg ID/i.test((err as Error).message)) { this.counters.refused++; this.stepDown('the stream refused a batch: another node appended (deposed)'); }
        else this.stepDown(`publishing a batch failed: ${(err as Error).message}`);
        refuse(new ApbError('storage_unavailable', `the decision could not be replicated (cluster): ${(err as Error).message}`));
      },
    );
  }

  /** `group` refused, and with it every batch still waiting (nothing more goes out: the node steps down) */
  private refuseAll(group: { reject(e: Error): void }[], err: ApbError): void {
    for (const g of group) g.reject(err);
    this.failOutbox(err);
  }

  /** after a failed publish nothing more goes out: every batch waiting is refused */
  private failOutbox(err: ApbError): void {
    const rest = this.outbox.splice(0);
    for (const g of rest) g.reject(err);
  }

  /** SIGHUP: the leader re-reads its site file (followers take the journaled configuration as it comes) */
  async reload(): Promise<void> {
    if (this.role !== 'leader' || !this.server) { this.log.info('cluster: SIGHUP ignored: this node does not lead the site'); return; }
    await this.server.reload('sighup');
  }

  // ---- operations ---------------------------------------------------------------------------

  private lag(): number { return this.role === 'leader' ? 0 : Math.max(this.pending, this.streamLast - this.appliedSeq); }

  view(): { health(): Record<string, unknown>; metrics(): string; leader(): string | undefined } {
    return {
      health: () => ({
        node: this.opts.node, site: this.names.key, role: this.role, leader: this.role === 'leader' ? this.opts.node : this.seenLeader,
        epoch: this.held?.lease.epoch ?? this.seenEpoch, streamSeq: this.appliedSeq, journalSeq: this.appliedEnd, lag: this.lag(),
        forwarded: this.counters.forwarded, takeoverEngine: this.takeoverEngine,
      }),
      metrics: () => {
        const site = `site="${this.names.key}",node="${this.opts.node}"`;
        const L = [
          '# HELP apb_cluster_role 1 for the role this node has for the site', '# TYPE apb_cluster_role gauge',
          ...ROLES.map((r) => `apb_cluster_role{${site},role="${r}"} ${r === this.role ? 1 : 0}`),
          '# HELP apb_cluster_epoch lease epoch of the site as this node knows it', '# TYPE apb_cluster_epoch gauge',
          `apb_cluster_epoch{${site}} ${this.held?.lease.epoch ?? this.seenEpoch}`,
          '# HELP apb_cluster_lag_messages stream messages this node has not applied yet', '# TYPE apb_cluster_lag_messages gauge',
          `apb_cluster_lag_messages{${site}} ${this.lag()}`,
          '# HELP apb_cluster_stream_seq last stream message applied locally', '# TYPE apb_cluster_stream_seq gauge',
          `apb_cluster_stream_seq{${site}} ${this.appliedSeq}`,
          '# HELP apb_cluster_published_total batches this node published as leader', '# TYPE apb_cluster_published_total counter',
          `apb_cluster_published_total{${site}} ${this.counters.published}`,
          '# HELP apb_cluster_refused_total publishes the stream refused (deposed)', '# TYPE apb_cluster_refused_total counter',
          `apb_cluster_refused_total{${site}} ${this.counters.refused}`,
          '# HELP apb_cluster_takeovers_total times this node took the lead', '# TYPE apb_cluster_takeovers_total counter',
          `apb_cluster_takeovers_total{${site}} ${this.counters.takeovers}`,
          '# HELP apb_cluster_step_downs_total times this node stepped down', '# TYPE apb_cluster_step_downs_total counter',
          `apb_cluster_step_downs_total{${site}} ${this.counters.stepDowns}`,
          '# HELP apb_cluster_forwarded_total controller frames this node forwarded to the leader (as a follower)', '# TYPE apb_cluster_forwarded_total counter',
          `apb_cluster_forwarded_total{${site}} ${this.counters.forwarded}`,
          '# HELP apb_cluster_forwarded_answered_total frames forwarded by followers that this node answered (as leader)', '# TYPE apb_cluster_forwarded_answered_total counter',
          `apb_cluster_forwarded_answered_total{${site}} ${this.counters.answeredForwarded}`,
        ];
        return L.join('\n') + '\n';
      },
      leader: () => this.seenLeader,
    };
  }

  async close(): Promise<void> {
    const was = this.role;
    this.role = 'closed';
    clearInterval(this.leaseTimer);
    this.fwdSub?.unsubscribe();
    if (was === 'leader' || was === 'candidate') {
      await this.server?.close().catch(() => undefined); // in-flight replies still wait for their acknowledgements
      this.canPublish = false;
      if (this.held) await releaseLease(this.kv, this.names.key, this.held); // the next node takes over at once
    }
    await this.unfollow();
    await this.follower?.close();
    await this.lastIngest.catch(() => undefined);
    clearTimeout(this.posTimer);
    await this.store?.whenCommitted().catch(() => undefined);
    if (this.store && this.store.lastSeq === this.appliedEnd) this.writePosition();
    await this.store?.close().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
  }
}

/** The store as the server sees it: writes refused (storage_unavailable) unless this node may publish; close() leaves the store open. */
function fence(store: LmdbStore, open: () => boolean): Store {
  const refuse = (): Promise<never> => Promise.reject(new ApbError('storage_unavailable', 'this node does not lead the site (cluster)'));
  return new Proxy(store as unknown as Store, {
    get(target, p) {
      if (p === 'append' || p === 'appendCompact' || p === 'saveConfig') {
        const fn = (target as unknown as Record<string, (...a: unknown[]) => Promise<void>>)[p]!;
        return (...a: unknown[]) => (open() ? fn.apply(target, a) : refuse());
      }
      if (p === 'healthy') return target.healthy && open();
      if (p === 'close') return () => target.whenCommitted();
      const v = Reflect.get(target, p, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
