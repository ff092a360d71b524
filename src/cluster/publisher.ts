/**
 * The leader's side of a site's replicated journal: every batch the local store writes goes out to
 * the site's stream, and its appends resolve only once JetStream has acknowledged it.
 *
 * The batches of one event-loop turn go out as one message (journal-message.ts). Up to
 * MAX_IN_FLIGHT messages are pipelined, each expecting both the stream seq and the message id of
 * its predecessor (ids are unique: node, epoch, first journal seq). The id matters: after a refused
 * message, a later pipelined one could expect, by coincidence, exactly the seq a new leader's fence
 * took; the fence has another id, so it is refused too.
 *
 * Any refusal, failure or lapse of the lease asks the node to step down (host.stepDown) and refuses
 * every batch still waiting: nothing more goes out, no reply waiting on it becomes a grant.
 */
import { headers } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { ApbError } from '../errors.js';
import { isWrongRevision } from './lease.js';
import { encodeEntries, MESSAGE_TARGET_BYTES } from './journal-message.js';
import { H_EPOCH, H_NODE, H_SEQ } from './headers.js';

/** journal messages a leader has published and not seen acknowledged yet, at most */
const MAX_IN_FLIGHT = 8;

export interface PublisherHost {
  readonly node: string;
  readonly subject: string;
  /** the epoch of the lease this node holds (undefined: none) */
  epoch(): number | undefined;
  /** the lease is this node's until then, on this clock */
  validUntil(): number;
  stepDown(why: string): void;
  /** a message is in the stream (seq `streamSeq`) and holds the journal up to `end` */
  acknowledged(streamSeq: number, end: number): void;
}

interface Waiting { s: number; e: number; payload: Uint8Array; resolve(): void; reject(e: Error): void }

const notLeading = (): ApbError => new ApbError('storage_unavailable', 'this node does not lead the site (cluster)');

export class JournalPublisher {
  /** batches may go out (from the fence to the step-down) */
  open = false;
  published = 0;
  refused = 0;
  private outbox: Waiting[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  /** stream seq and message id of the last message published: the next one expects both */
  private lastStreamSeq = 0;
  private lastMsgId = '';

  constructor(private readonly js: JetStreamClient, private readonly host: PublisherHost) {}

  /** after the fence (stream seq `seq`, id `id`): batches go out from here */
  start(seq: number, id: string): void {
    this.lastStreamSeq = seq;
    this.lastMsgId = id;
    this.inFlight = 0;
    this.open = true;
  }

  /** nothing more goes out; batches still waiting are refused */
  stop(err: ApbError = notLeading()): void {
    this.open = false;
    this.failOutbox(err);
  }

  /** The store's `replicate` hook: the batch joins the outbox, sent at the end of the event-loop turn. */
  publish(s: number, e: number, payload: Uint8Array): Promise<void> {
    if (!this.open) return Promise.reject(notLeading());
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
      if (!this.open || this.host.epoch() === undefined) { this.refuseAll(group, notLeading()); return; }
      this.publishGroup(group);
    }
  }

  private publishGroup(group: Waiting[]): void {
    const { host } = this;
    const expected = this.lastStreamSeq++;
    const prevId = this.lastMsgId;
    const epoch = host.epoch()!;
    const first = group[0]!.s, last = group.at(-1)!.e;
    const id = `${host.node}.${epoch}.${first}`;
    this.lastMsgId = id;
    const h = headers();
    h.set(H_SEQ, `${first}-${last}`);
    h.set(H_EPOCH, String(epoch));
    h.set(H_NODE, host.node);
    this.inFlight++;
    const refuse = (err: ApbError): void => this.refuseAll(group, err);
    this.js.publish(host.subject, encodeEntries(group), { msgID: id, expect: { lastSequence: expected, lastMsgID: prevId }, headers: h }).then(
      (ack) => {
        this.inFlight--;
        if (!this.open || host.epoch() !== epoch) { refuse(new ApbError('storage_unavailable', 'this node stepped down before the reply could go (cluster)')); return; }
        if (ack.seq !== expected + 1) { host.stepDown(`the stream stored batches ${first}-${last} at seq ${ack.seq}, not ${expected + 1}`); refuse(new ApbError('storage_unavailable', 'the replicated journal is out of step (cluster)')); return; }
        if (Date.now() > host.validUntil()) { host.stepDown('the lease lapsed while a batch was being replicated'); refuse(new ApbError('storage_unavailable', 'the leader lease lapsed (cluster)')); return; }
        this.published++;
        host.acknowledged(ack.seq, last);
        for (const g of group) g.resolve();
        this.sendNext();
      },
      (err: unknown) => {
        this.inFlight--;
        if (isWrongRevision(err) || /wrong last msg ID/i.test((err as Error).message)) { this.refused++; host.stepDown('the stream refused a batch: another node appended (deposed)'); }
        else host.stepDown(`publishing a batch failed: ${(err as Error).message}`);
        refuse(new ApbError('storage_unavailable', `the decision could not be replicated (cluster): ${(err as Error).message}`));
      },
    );
  }

  /** `group` refused, and with it every batch still waiting (nothing more goes out: the node steps down) */
  private refuseAll(group: { reject(e: Error): void }[], err: ApbError): void {
    for (const g of group) g.reject(err);
    this.failOutbox(err);
  }

  private failOutbox(err: ApbError): void {
    const rest = this.outbox.splice(0);
    for (const g of rest) g.reject(err);
  }
}
