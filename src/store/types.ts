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

export type EventKind = 'badge' | 'passage' | 'offline' | 'action' | 'rejected' | 'config';

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
  violations?: { code: string; mode: string; area: string | null }[];
  area?: string;              // area moved to / acted on
  applied?: boolean;          // passage / offline / action outcome
  action?: string;            // forgive | reset | exempt | setLocation | resetArea
  on?: boolean;               // exempt
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

export interface EventQuery { cred?: string; reader?: string; since?: number; limit?: number }

export interface Store {
  /** Persist records and idempotency entries; resolves once committed (group commit: all calls of one event-loop turn share one transaction). Rejects with ApbError('storage_unavailable') on failure. */
  append(events: EventRecord[], idem: IdemRecord[]): Promise<void>;
  /** An already-committed (or in-flight) reply for (controller, id). */
  getIdem(controller: string, id: number | string): Uint8Array | undefined;
  query(q: EventQuery): EventRecord[];
  /** Events with seq > after, oldest first (recovery, export). */
  since(afterSeq: number): Iterable<EventRecord>;
  saveSnapshot(seq: number, engineBytes: Uint8Array): Promise<void>;
  latestSnapshot(): { seq: number; bytes: Uint8Array } | undefined;
  saveConfig(text: string): Promise<void>;
  readonly healthy: boolean;
  close(): Promise<void>;
}
