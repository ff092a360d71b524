/**
 * A follower's side of a site's replicated journal: an ordered consumer on the site's stream, from
 * the message after the node's position. Each journal message's batches go through
 * LmdbStore.appendReplicated (same seqs, same reply bytes: a resend after failover gets the
 * identical reply), in stream order; a fence only tells who leads now.
 *
 * A message that does not follow the last one (a gap: the stream was trimmed past this node's
 * position) or a batch the store refuses asks the node to rebuild its local journal (host.resync).
 * The consumer is restarted (with backoff) while JetStream does not answer, when it ends by itself,
 * and by a watchdog when it makes no progress while the stream has more.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { LmdbStore } from '../store/lmdb-store.js';
import type { Logger } from '../server/log.js';
import { decodeEntries } from './journal-message.js';
import { H_FENCE, H_NODE, H_SEQ } from './headers.js';

export interface FollowerHost {
  readonly stream: string;
  readonly log: Logger;
  /** still following (or catching up as a candidate): the consumer is restarted while this holds */
  active(): boolean;
  store(): LmdbStore;
  /** journal seq the node's local journal is known to hold, durably, in step with the stream */
  appliedEnd(): number;
  /** a stream message is stored locally (seq `streamSeq`, journal up to `end`, stored by JetStream at `storedAt` ms) */
  applied(streamSeq: number, end: number, storedAt: number): void;
  fence(epoch: number, node: string): void;
  /** the local journal cannot follow the stream any more */
  resync(why: string): void;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class StreamFollower {
  /** stream seq of the last message handed to the store */
  receivedSeq = 0;
  /** messages the consumer reported still pending after the last one (replication lag) */
  pending = 0;
  /** the stream's last seq as the watchdog last read it */
  streamLast = 0;
  ingested = 0;
  /** the append of the last message received (ingests are chained in stream order) */
  lastIngest: Promise<void> = Promise.resolve();
  private msgs: ConsumerMessages | undefined;
  private watchSeq = -1;
  private watchAt = 0;
  private watching = false;

  constructor(private readonly jsa: JetStreamClient, private readonly jsm: JetStreamManager, private readonly host: FollowerHost) {}

  /**
   * Starts the consumer from the message after receivedSeq, retrying (with backoff) while JetStream
   * does not answer (a NATS server lost, the stream electing a new leader).
   */
  async follow(): Promise<void> {
    for (let attempt = 0; this.host.active(); attempt++) {
      try {
        const c = await this.jsa.consumers.get(this.host.stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.receivedSeq + 1 });
        const msgs = await c.consume({ max_messages: 512 });
        this.msgs = msgs;
        void this.drain(msgs);
        return;
      } catch (e) {
        this.host.log.warn({ err: (e as Error).message, attempt }, 'cluster: cannot read the stream yet; retrying');
        await delay(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  async unfollow(): Promise<void> {
    const m = this.msgs;
    this.msgs = undefined;
    if (m) await m.close().catch(() => undefined);
  }

  private async drain(msgs: ConsumerMessages): Promise<void> {
    try {
      for await (const m of msgs) {
        if (this.msgs !== msgs) break;
        this.ingest(m);
      }
    } catch (e) {
      if (this.msgs === msgs) this.host.log.warn({ err: (e as Error).message }, 'cluster: the stream consumer stopped');
    }
    if (this.msgs === msgs) { // ended by itself: start again from where it stopped
      this.msgs = undefined;
      await delay(100);
      if (this.msgs === undefined) await this.follow();
    }
  }

  private ingest(m: JsMsg): void {
    const { host } = this;
    if (m.seq !== this.receivedSeq + 1) { host.resync(`stream message ${m.seq} after ${this.receivedSeq}`); return; }
    this.receivedSeq = m.seq;
    this.pending = m.info.pending;
    const range = m.headers?.get(H_SEQ);
    const seq = m.seq;
    const storedAt = Math.floor(m.info.timestampNanos / 1e6);
    let p: Promise<void> = this.lastIngest;
    let end = host.appliedEnd();
    if (range) {
      try {
        const store = host.store();
        const all: Promise<void>[] = [];
        for (const x of decodeEntries(m.data)) { all.push(store.appendReplicated(x.s, x.e, x.payload)); end = x.e; }
        p = Promise.all(all).then(() => undefined);
      } catch (e) { p = Promise.reject(e); }
      this.ingested++;
    } else {
      // a fence: nothing to store, in order with the batches before it
      host.fence(Number(m.headers?.get(H_FENCE) ?? 0), m.headers?.get(H_NODE) ?? '');
    }
    this.lastIngest = p.then(() => { host.applied(seq, Math.max(end, host.appliedEnd()), storedAt); }, (e) => { host.resync((e as Error).message); });
  }

  /**
   * Watchdog, every second at most: a consumer that made no progress while the stream has more (its
   * server died and the client did not bring it back) is started again.
   */
  async watch(): Promise<void> {
    const now = Date.now();
    if (this.watching || now - this.watchAt < 1000) return;
    this.watching = true;
    this.watchAt = now;
    try {
      const seen = this.receivedSeq;
      const last = (await this.jsm.streams.info(this.host.stream)).state.last_seq;
      this.streamLast = last;
      if (last > seen && seen === this.watchSeq && this.host.active()) {
        this.host.log.warn({ at: seen, last }, 'cluster: the stream consumer is stuck: starting it again');
        await this.unfollow();
        await this.follow();
      }
      this.watchSeq = this.receivedSeq;
    } catch { /* NATS busy: next time */ } finally { this.watching = false; }
  }
}
