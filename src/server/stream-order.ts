/**
 * Stream events of decided frames leave in the order the frames were decided, whichever path
 * decided them (fast or general) and however many promise steps its commit took. A frame takes a
 * place once it is decided and handed to the store (so its commit will settle it); its events wait
 * there until every earlier frame's events have left, or were dropped (a failed commit: nothing of
 * it was decided).
 */
import type { HubEvent } from './hub.js';

export interface StreamPlace { events: HubEvent[] | null; ready: boolean }

export class StreamOrder {
  private readonly queue: StreamPlace[] = [];

  /** `emit` gets each frame's events, outside the commit's handlers (in a later turn: setImmediate) */
  constructor(private readonly emit: (events: HubEvent[]) => void) {}

  take(events: HubEvent[]): StreamPlace {
    const p: StreamPlace = { events, ready: false };
    this.queue.push(p);
    return p;
  }

  /** The frame's commit settled: its events go (ok) or are dropped, after every earlier place's. */
  settle(p: StreamPlace, ok: boolean): void {
    p.ready = true;
    if (!ok) p.events = null;
    const q = this.queue;
    let out: HubEvent[][] | null = null;
    while (q.length > 0 && q[0]!.ready) {
      const events = q.shift()!.events;
      if (events !== null && events.length > 0) (out ??= []).push(events);
    }
    if (out !== null) { const go = out; setImmediate(() => { for (const events of go) this.emit(events); }); }
  }
}
