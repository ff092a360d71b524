/**
 * Fast-path frames waiting for their commit, with no promise of their own.
 *
 * The store answers every appendCompact of one store turn with the same promise (lmdb-store.ts:
 * one per event-loop turn, the write-ahead log's write). Chained on it one by one, each frame cost
 * three promises and four closures (the hub's outcome, its reply, the socket's ordering): a good
 * part of the main thread's garbage at one message per frame. Here the frames that got the same
 * promise form one group with one handler; when it settles, its frames settle in arrival order and
 * the socket layer is told of each (Hub.onFastSettled), which sends replies in frame order per socket.
 *
 * A FastFlight is also what a resend of one of its ids waits for (`commit`, `bytes`, `meta`), and,
 * for the socket layer, a reply waiting its turn (`done`, `reply`, `t0`: controller-socket.ts Waiting).
 */
import type { StreamPlace } from './stream-order.js';

export class FastFlight {
  /** once settled: the frame's reply (the decided replies, or the error frame if the commit failed); null: none */
  reply: Uint8Array | null = null;
  done = false;
  /** the socket layer's: the socket and connection it came from (null: not from a socket), when it arrived */
  ws: unknown = null;
  conn: unknown = null;
  t0 = 0;
  /** resolves once this frame's group has settled and `reply` is set (true: committed) */
  commit!: Promise<boolean>;
  /**
   * `meta`: the tally [0, TALLY), the n ids (strictly increasing) from TALLY, and from TALLY + n where
   * each message's reply starts in `bytes` (n + 1 entries, the last = end). `stream`: its place for
   * its stream events, sent once committed (null: nobody listens).
   */
  constructor(readonly ctrlId: string, readonly meta: Float64Array, readonly n: number, readonly bytes: Uint8Array, readonly batch: boolean, readonly stream: StreamPlace | null) {}
}

interface Group { appended: Promise<unknown>; flights: FastFlight[]; settled: boolean; commit: Promise<boolean> }

export class FlightGroups {
  private open: Group | null = null;

  /** `settle` runs once per frame, in arrival order, when its group's promise settles */
  constructor(private readonly settle: (f: FastFlight, ok: boolean, err: unknown) => void) {}

  /** `f` waits for `appended` (the store's promise for its records). */
  add(appended: Promise<unknown>, f: FastFlight): void {
    let g = this.open;
    if (g === null || g.settled || g.appended !== appended) {
      const grp: Group = { appended, flights: [], settled: false, commit: null as unknown as Promise<boolean> };
      grp.commit = appended.then(() => this.settleAll(grp, true, undefined), (e: unknown) => this.settleAll(grp, false, e));
      this.open = g = grp;
    }
    g.flights.push(f);
    f.commit = g.commit;
  }

  private settleAll(g: Group, ok: boolean, err: unknown): boolean {
    g.settled = true;
    if (this.open === g) this.open = null;
    for (const f of g.flights) this.settle(f, ok, err);
    return ok;
  }
}
