/**
 * A site's cluster snapshots, kept in a JetStream stream of their own (APB_SNAP_<key>, same
 * replicas as the journal): what a node that joins empty, or finds the journal stream trimmed past
 * its position, starts from. A snapshot is
 *   - its engine bytes, in chunks of CHUNK_BYTES on subject apb.<key>.snap.data, then
 *   - a manifest (JSON) on apb.<key>.snap.manifest naming the chunks' stream seqs, the SHA-256 of
 *     the whole, the journal seq it holds the engine at and the journal stream seq of that point,
 *     the configuration in force and the controllers' idempotency high-water marks.
 * A manifest is published only after every chunk is acknowledged, so a manifest always names a
 * complete snapshot; the newest manifest is read with a last-by-subject get. This is the layout of
 * NATS's object store (chunks plus a meta message), kept on the JetStream API the node already
 * uses; JetStream replicates it like any stream.
 *
 * Trimming: after an upload, the two newest manifests are kept (older chunks purged), and the
 * journal stream is purged up to the stream seq of the OLDER of the two: every message a snapshot
 * anyone can fetch covers is gone, while a follower a little behind the newest snapshot still finds
 * the journal after its position.
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { ApbError } from '../errors.js';
import type { SiteNames } from './names.js';

/** bytes per chunk message (NATS's default max_payload is 1 MiB) */
export const CHUNK_BYTES = 256 * 1024;
/** manifests (complete snapshots) kept */
const KEEP = 2;

export interface SnapshotManifest {
  /** journal stream seq of the last message the snapshot covers */
  streamSeq: number;
  /** the engine is the one at this journal seq */
  journalSeq: number;
  at: number;
  configText: string;
  idmax: [string, number, string | null][];
  node: string;
  bytes: number;
  sha256: string;
  /** stream seqs of the chunks, in order */
  chunks: number[];
  /** the snapshot before this one (still kept): the journal stream is trimmed up to its streamSeq */
  prev?: { streamSeq: number; firstChunk: number; manifestSeq: number };
}

export type NewSnapshot = Omit<SnapshotManifest, 'bytes' | 'sha256' | 'chunks' | 'prev'>;

const enc = new TextEncoder();
const dec = new TextDecoder();

export class SiteSnapshots {
  constructor(private readonly js: JetStreamClient, private readonly jsm: JetStreamManager, private readonly names: SiteNames, private readonly replicas: number) {}

  async ensure(): Promise<void> {
    const n = this.names;
    try { await this.jsm.streams.info(n.snapStream); } catch {
      await this.jsm.streams.add({ name: n.snapStream, subjects: [n.snapData, n.snapManifest], num_replicas: this.replicas, storage: 'file' as never, max_msgs_per_subject: -1 })
        .catch((e) => { if (!/already in use|exists/.test((e as Error).message)) throw e; });
    }
  }

  /** the newest complete snapshot's manifest (undefined: none yet), with its own seq in the snapshot stream */
  async latest(): Promise<(SnapshotManifest & { seq: number }) | undefined> {
    let m;
    try { m = await this.jsm.streams.getMessage(this.names.snapStream, { last_by_subj: this.names.snapManifest }); } catch (e) {
      if (/no message found|not found/i.test((e as Error).message)) return undefined;
      throw e;
    }
    return m ? { ...JSON.parse(dec.decode(m.data)) as SnapshotManifest, seq: m.seq } : undefined;
  }

  /**
   * The snapshot a node starting empty should start from: the OLDEST kept one whose journal the
   * stream still holds entirely after it (the node then has the replies of that whole tail for
   * resends, not only those after the newest snapshot), else the newest.
   */
  async forJoin(streamFirstSeq: number): Promise<SnapshotManifest | undefined> {
    const m = await this.latest();
    if (!m?.prev?.manifestSeq) return m;
    try {
      const o = await this.jsm.streams.getMessage(this.names.snapStream, { seq: m.prev.manifestSeq });
      if (o?.subject === this.names.snapManifest) {
        const older = JSON.parse(dec.decode(o.data)) as SnapshotManifest;
        if (older.streamSeq + 1 >= streamFirstSeq) return older;
      }
    } catch { /* gone: the newest */ }
    return m;
  }

  /** the snapshot's engine bytes, checked against its manifest */
  async fetch(m: SnapshotManifest): Promise<Uint8Array> {
    const out = Buffer.allocUnsafe(m.bytes);
    let off = 0;
    for (const seq of m.chunks) {
      const c = await this.jsm.streams.getMessage(this.names.snapStream, { seq });
      if (!c || c.subject !== this.names.snapData || off + c.data.length > m.bytes) {
        throw new ApbError('storage_unavailable', `snapshot chunk ${seq} of ${this.names.snapStream} is missing or does not fit (${c ? `${c.subject}, ${c.data.length} bytes at ${off} of ${m.bytes}` : 'absent'})`);
      }
      out.set(c.data, off);
      off += c.data.length;
    }
    const sha = createHash('sha256').update(out).digest('hex');
    if (off !== m.bytes || sha !== m.sha256) throw new ApbError('storage_unavailable', `snapshot at journal seq ${m.journalSeq} is damaged (${off} of ${m.bytes} bytes, sha256 ${sha.slice(0, 12)})`);
    return out;
  }

  /**
   * Purges the messages (on `filter`) below `seq`. Never with seq 1: nats-server 2.9.10 takes a
   * filtered purge with seq 1 for a purge of every message on the filter (found by the sites test:
   * the chunks of both kept snapshots went), and below 1 there is nothing anyway.
   */
  private async purgeBelow(stream: string, seq: number, filter?: string): Promise<void> {
    if (seq <= 1) return;
    await this.jsm.streams.purge(stream, filter === undefined ? { seq } : { filter, seq });
  }

  /**
   * Uploads a snapshot, keeps the newest KEEP, trims the journal stream behind the older kept one.
   * Returns the journal stream seq the stream now starts at (0: not trimmed).
   */
  async upload(s: NewSnapshot, bytes: Uint8Array): Promise<number> {
    const n = this.names;
    const before = await this.latest();
    if (before && before.streamSeq >= s.streamSeq) return 0; // another node's is as new: nothing to add
    const chunks: number[] = [];
    for (let off = 0; off < bytes.length || chunks.length === 0; off += CHUNK_BYTES) {
      const ack = await this.js.publish(n.snapData, bytes.subarray(off, Math.min(bytes.length, off + CHUNK_BYTES)));
      chunks.push(ack.seq);
    }
    const m: SnapshotManifest = { ...s, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), chunks };
    if (before) m.prev = { streamSeq: before.streamSeq, firstChunk: Math.min(...before.chunks), manifestSeq: before.seq };
    await this.js.publish(n.snapManifest, enc.encode(JSON.stringify(m)));
    if (!m.prev) return 0;
    // the two newest manifests stay; chunks older than the older one's go, and the journal it covers
    await this.jsm.streams.purge(n.snapStream, { filter: n.snapManifest, keep: KEEP });
    await this.purgeBelow(n.snapStream, m.prev.firstChunk, n.snapData);
    await this.purgeBelow(n.stream, m.prev.streamSeq + 1);
    return m.prev.streamSeq + 1;
  }
}
