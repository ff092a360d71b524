/**
 * What the server needs from storage (SPEC 9, issue 4). Implemented by
 * src/store/lmdb-store.ts (durable) and src/store/memory-store.ts (tests,
 * `--data :memory:` benchmarks). One contract suite runs over both.
 *
 * Durability model: the event log IS the journal. Every state-changing input
 * is recorded with the engine clock it was applied at (`at`) and the CoreOp
 * in a form that can be replayed; recovery = newest engine snapshot + replay
 * of the log records with seq > snapshot.seq through the same engine.
 */

import type { DataLock } from './lock.js';
import type { CompactGroup } from './compact-journal.js';
import type { IndexerKnobs } from './indexer.js';
import type { SeenRecord, ViolationRecord } from '../engine/explain.js';

export type EventKind = 'badge' | 'passage' | 'offline' | 'action' | 'rejected' | 'config';

/** A compact group of the journal whose first record has seq `seq` (Store.sinceGroups). */
export interface CompactRun { seq: number; group: CompactGroup }

export interface EventRecord {
  seq?: number;               // assigned by the store (monotonic)
  at: number;                 // engine clock (ms) the event was applied at
  kind: EventKind;
  controller?: string;        // controller id, or "http:<user>" for operator actions
  reader?: string;
  cred?: string;              // credential text form (src/engine/cred.ts)
  ts?: number;                // controller's own timestamp
  id?: number | string;       // controller message id (string when > 2^53)
  grant?: boolean;
  reason?: string;
  /** with the facts that raised each (SPEC 13.3; records written before it have code, mode and area only) */
  violations?: ViolationRecord[];
  /** the credential's state as the decision saw it (SPEC 13.3; badge and offline records) */
  seen?: SeenRecord;
  area?: string;              // area moved to / acted on
  applied?: boolean;          // passage / offline / action outcome
  action?: string;            // forgive | reset | exempt | setLocation | resetArea | supervisor | lockdown
  on?: boolean;               // exempt, supervisor, lockdown
  who?: string;               // operator name
  why?: string;               // operator's reason
  error?: { code: string; message: string }; // rejected frames/messages
  /** the replayable op: present when the event changed (or may have changed) engine state */
  op?: unknown;
}

export interface IdemRecord {
  controller: string;
  id: number | string;        // string form when > 2^53
  reply: Uint8Array;          // the exact encoded reply body, resent verbatim
}

export interface EventQuery {
  cred?: string;              // credential text form
  reader?: string;
  controller?: string;
  since?: number;             // at >= since (ms epoch)
  until?: number;             // at <= until
  beforeSeq?: number;         // paging: only seq < beforeSeq
  limit?: number;             // default 100, at most 10 000
}

/** One page of the event log (store.page, event-cursor.ts): filters as EventQuery, plus order and cursor. */
export interface EventPageQuery {
  cred?: string;
  reader?: string;
  controller?: string;
  since?: number;             // at >= since (ms epoch)
  until?: number;             // at <= until
  /** 'desc' (default): newest first; 'asc': oldest first */
  order?: 'asc' | 'desc';
  /** 1-10 000, default 100 (bad_message otherwise) */
  limit?: number;
  /** the `next` of a previous page with the same filters and order (bad_message otherwise) */
  cursor?: string;
}

export interface EventPage {
  events: EventRecord[];
  /** desc: null when nothing older matches; asc: always set (poll it for records appended later) */
  next: string | null;
}

/** A stored engine snapshot: the engine bytes at `seq` and the configuration text in force then. */
export interface SnapshotInfo { seq: number; at: number; bytes: Uint8Array; configText?: string }
/** The same snapshot as a file (`size` bytes of engine snapshot at `path`), for restoring without reading it into a buffer first. */
export interface SnapshotFileInfo { seq: number; at: number; path: string; size: number; configText?: string }

/** A snapshot file `file` (a name in D/snapshots) of `size` bytes, holding the engine at `seq`. */
export interface SnapshotEntry { seq: number; at: number; file: string; size: number; configText?: string }

export interface RetentionOptions {
  /** delete events older than this (by `at`); default 30 days */
  maxAgeMs?: number;
  /** delete oldest events while the log is larger than this; default 8 GiB */
  maxBytes?: number;
  /** how often a retention pass runs; default 60 s (0 = never automatically) */
  intervalMs?: number;
  /** deletes per event-loop turn, so decisions never stall; default 2000 */
  chunk?: number;
}

export interface StoreOptions {
  /** initial LMDB map size in bytes (lmdb-js grows it when it fills); default 1 GiB */
  mapSize?: number;
  /** 'commit' (default): append resolves when the transaction is committed (survives a process kill);
   *  'flush': also waits for the fsync (survives power loss; higher latency) */
  durability?: 'commit' | 'flush';
  retention?: RetentionOptions;
  /** while unhealthy, how often a write probe re-tests storage; default 1000 ms */
  probeIntervalMs?: number;
  /** open an existing data directory read-only (apb events, inspection) */
  readOnly?: boolean;
  /** wall clock for retention (tests); default Date.now */
  now?: () => number;
  /** after a storage failure, the free space (bytes) the disk must have again before the store turns
   *  healthy; default HEADROOM_BYTES (4 MiB, headroom.ts); 0 = do not check */
  headroomBytes?: number;
  /** the data-directory lock (lock.ts) the store releases when it closes; openStore takes it */
  lock?: DataLock;
  /** the background indexer of D/index (indexer.ts): a worker thread by default; test and benchmark knobs */
  indexer?: IndexerKnobs;
  /** size of a write-ahead log segment file (wal.ts); default 4 MiB */
  walSegmentBytes?: number;
  /** what lmdb-js would print on the console (a failed commit's error), so the server logs it as JSON */
  onLibraryOutput?: (level: 'error' | 'warn', text: string, err?: Error) => void;
  /** cluster mode (src/cluster): each journal batch (seqs s..e, `payload` = its WAL bytes) is also handed
   *  here, in seq order, and its appends resolve only once both the WAL and this promise have */
  replicate?: (s: number, e: number, payload: Uint8Array) => Promise<void>;
}

export interface StoreStats {
  events: number;             // events currently in the log (approximate for lmdb after retention)
  firstSeq: number;           // oldest seq still in the log (0 if empty)
  lastSeq: number;
  bytes: number;              // approximate bytes used by the log and its indexes
  indexedSeq: number;         // events with seq <= this are in the derived indexes (D/index; may lag)
  snapshots: number[];        // seqs of the stored snapshots, oldest first
}

export interface Store {
  readonly kind: 'lmdb' | 'memory';
  /**
   * Persist records and idempotency entries; resolves once committed (group commit: all calls of one
   * event-loop turn share one transaction). Assigns `seq` to each record synchronously, before returning.
   * Rejects with ApbError('storage_unavailable') on failure (and at once while `healthy` is false).
   */
  append(events: EventRecord[], idem: IdemRecord[]): Promise<void>;
  /**
   * Persist one compact group (compact-journal.ts): seqs assigned synchronously, one per record, in
   * order, after everything appended before; same group commit, failure and health semantics as
   * append(), and the order of append()/appendCompact() calls of one turn is kept in the journal.
   * since()/range()/query() give its records as toEventRecord does; getIdem re-encodes their replies.
   */
  appendCompact(g: CompactGroup): Promise<void>;
  /**
   * The largest id `controller` has in the journal (appended-but-uncommitted ones included), -1 if
   * none, Infinity if it ever used an id above 2^53-1.
   */
  maxId(controller: string): number;
  /** An already-committed (or in-flight) reply for (controller, id). */
  getIdem(controller: string, id: number | string | bigint): Uint8Array | undefined;
  /** newest first */
  query(q: EventQuery): EventRecord[];
  /**
   * One page of matching records in `order`, and the cursor of the next page: a position in the journal,
   * so no record is skipped or repeated while appends go on between pages (event-cursor.ts).
   * bad_message for a limit out of range or a malformed, forged or other-filter cursor.
   */
  page(q: EventPageQuery): EventPage;
  /** Events with seq > after, oldest first (recovery, export). */
  since(afterSeq: number): Iterable<EventRecord>;
  /**
   * Optional: since(), except that a compact group (compact-journal.ts) lying wholly after `afterSeq`
   * comes as one item, its records taking seqs seq, seq+1, ... in order: a replayer (replica.ts)
   * then applies it without an object per record.
   */
  sinceGroups?(afterSeq: number): Iterable<EventRecord | CompactRun>;
  /** Events with sinceAt <= at <= untilAt, oldest first (export). */
  range(sinceAt?: number, untilAt?: number): Iterable<EventRecord>;
  /**
   * `configText`: the configuration in force at `seq` (recovery loads it before restoring the bytes).
   * `engineBytes` passes to the store, which may keep the array itself (the memory store does): the
   * caller must not change it afterwards.
   */
  saveSnapshot(seq: number, engineBytes: Uint8Array, configText?: string, at?: number): Promise<void>;
  latestSnapshot(): SnapshotInfo | undefined;
  /**
   * Optional (stores that keep snapshots in memory): the buffer of a snapshot the store dropped, for the next
   * engine.snapshot() to write over (taken once; empty when there is none yet).
   */
  takeSnapshotBuffer?(): Uint8Array | undefined;
  /** Optional (stores that keep snapshots in files): the snapshot latestSnapshot() would return, as its file. */
  latestSnapshotFile?(): SnapshotFileInfo | undefined;
  /**
   * Optional (stores that keep snapshots in files, in `dir`/snapshots): records a snapshot file
   * another thread wrote and fsynced there (the snapshot worker), keeping the newest two.
   */
  recordSnapshot?(entry: SnapshotEntry): Promise<void>;
  /** the data directory (file-backed stores) */
  readonly dir?: string;
  saveConfig(text: string): Promise<void>;
  /** The configuration text in force after the last appended record (a 'config' record's op.text, or saveConfig). */
  configText(): string | undefined;
  /** seq of the last record appended (0 when none) */
  readonly lastSeq: number;
  readonly healthy: boolean;
  /** counts storage failures since open; an engine built before a failure may hold unpersisted effects */
  readonly failures: number;
  /** journal transactions committed since open (each one fsync; durable stores only) */
  readonly syncs?: number;
  /** index entries the store could not write (e.g. a name over its key limit) and skipped, since open */
  readonly indexSkipped?: number;
  /** records appended but not yet in the derived indexes (D/index; durable stores only): the indexer's lag */
  readonly indexLag?: number;
  /** called on every change of `healthy`; returns an unsubscribe function */
  onHealthChange(cb: (healthy: boolean, error?: Error) => void): () => void;
  /** resolves once every append issued so far has committed or failed */
  whenCommitted(): Promise<void>;
  /** one full retention pass (also runs on its own every retention.intervalMs); resolves with the number of events deleted */
  compact(): Promise<number>;
  stats(): StoreStats;
  close(): Promise<void>;
}
