/**
 * Uploads the journal's unacknowledged decisions to the engine as `offline`
 * events, oldest first, in chunks of CHUNK, one chunk at a time:
 *
 *   {t: "offline", id, cred, reader, ts, granted}     id = the id journaled with the decision
 *   {t: "passage", id, cred, reader, ts}              a journaled passage (after an engine grant)
 *
 * Both kinds share one id sequence and go out in id order, so the engine
 * hears a passage and the decisions around it in the order they happened.
 * An entry is marked uploaded only after the engine acknowledged it. A
 * crash between sending and marking resends the same id after the restart,
 * which the engine answers with its first reply without applying anything
 * again: each decision reaches the engine's state exactly once.
 * Refusals the engine may get over (rate_limited, storage_unavailable,
 * not_ready) are retried after a pause; others (a reader the engine does not
 * give to this controller…) are final: logged, counted, kept in the journal.
 *
 * With a viewer token the engine's conclusion is read back from its event
 * log (applied or not — older than what it already knew —, and the late
 * violations it raised), and the credentials' state from the engine
 * replaces the bridge's for local decisions.
 */
import type { Logger } from 'pino';
import type { EngineLink, Reply } from '../link/engine-link.js';
import type { BridgeMetrics } from '../ops/metrics.js';
import type { BridgeStore, JournalEntry, KnownState } from './store.js';

const CHUNK = 64;
const RETRYABLE = new Set(['rate_limited', 'storage_unavailable', 'not_ready', 'too_large']);
const RETRY_MS = 1000;
/** conclusions and state are read back for at most this many credentials per outage */
const MAX_REFRESH = 2000;

export interface Viewer { base: string; token: string }
interface EventRec { kind: string; id?: number | string; controller?: string; applied?: boolean; violations?: { code: string }[] }

export class Uploader {
  private running = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** credentials whose engine state to read back once the queue is empty */
  private toRefresh = new Set<string>();

  constructor(private readonly store: BridgeStore, private readonly link: EngineLink, private readonly log: Logger,
    private readonly metrics: BridgeMetrics, private readonly controller: string | null, private readonly viewer: Viewer | null,
    private readonly onState: (states: [string, KnownState][]) => void) {}

  /** something was journaled, or the link came up */
  kick(): void {
    if (this.running || this.stopped || !this.link.up) return;
    this.running = true;
    this.drain().catch((e) => this.log.error({ err: (e as Error).message }, 'upload failed')).finally(() => { this.running = false; });
  }

  stop(): void { this.stopped = true; if (this.retryTimer) clearTimeout(this.retryTimer); }

  private async drain(): Promise<void> {
    while (!this.stopped && this.link.up) {
      const chunk = this.store.pending().slice(0, CHUNK);
      if (!chunk.length) break;
      let retry = false;
      const replies = await Promise.all(chunk.map((e) => this.link.send(e.kind === 'passage'
        ? { t: 'passage', id: e.id, cred: e.cred, reader: e.reader, ts: e.ts }
        : { t: 'offline', id: e.id, cred: e.cred, reader: e.reader, ts: e.ts, granted: e.granted }, true)
        .catch((err: Error) => ({ t: 'error', code: 'not_ready', message: err.message }) as Reply)));
      if (this.stopped) return; // the store may be closing: nothing is marked, everything is resent next time
      for (let i = 0; i < chunk.length; i++) {
        const e = chunk[i]!, r = replies[i]!;
        if (r.t === 'ack' && e.kind === 'passage') {
          await this.store.markUploaded(e.id, 'acknowledged');
          this.metrics.passageUploads.inc({ outcome: 'acknowledged' });
          this.log.info({ id: e.id, cred: e.cred, reader: e.reader }, 'passage delivered');
          continue;
        }
        if (r.t === 'ack') {
          await this.store.markUploaded(e.id, 'acknowledged');
          this.toRefresh.add(e.cred);
          if (!this.viewer) { this.metrics.uploads.inc({ outcome: 'acknowledged' }); this.log.info({ id: e.id, cred: e.cred, reader: e.reader, granted: e.granted, outcome: 'acknowledged' }, 'offline decision uploaded'); }
          continue;
        }
        const code = String(r.code ?? 'bad_frame');
        if (RETRYABLE.has(code)) { retry = true; continue; }
        await this.store.markUploaded(e.id, `refused:${code}`);
        (e.kind === 'passage' ? this.metrics.passageUploads : this.metrics.uploads).inc({ outcome: `refused:${code}` });
        this.log.error({ id: e.id, cred: e.cred, reader: e.reader, code, message: r.message }, `the engine refused ${e.kind === 'passage' ? 'a passage' : 'an offline decision'}; it stays in the journal`);
      }
      if (this.viewer) await this.conclude(chunk);
      if (retry) {
        if (this.stopped) return;
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.kick(); }, RETRY_MS);
        return;
      }
    }
    if (this.viewer && this.toRefresh.size && this.link.up && !this.stopped) await this.refresh();
  }

  private async get(path: string): Promise<unknown> {
    const r = await fetch(this.viewer!.base + path, { headers: { authorization: `Bearer ${this.viewer!.token}`, accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${path.split('?')[0]}: HTTP ${r.status}`);
    return r.json();
  }

  /** what the engine made of each acknowledged entry, from its event log */
  private async conclude(chunk: JournalEntry[]): Promise<void> {
    for (const e of chunk) {
      if (e.kind === 'passage') continue;
      const now = this.store.get(e.id);
      if (!now || now.outcome !== 'acknowledged') continue;
      let outcome = 'acknowledged';
      let violations: string[] = [];
      try {
        const q = `cred=${credPath(e.cred)}&reader=${encodeURIComponent(e.reader)}&limit=100`;
        const page = (await this.get(`/v1/events?${q}`)) as EventRec[] | { events: EventRec[] };
        const events = Array.isArray(page) ? page : page.events; // a page {events, next}, or a plain list from older engines
        const rec = events.find((x) => x.kind === 'offline' && String(x.id) === String(e.id) && (!this.controller || x.controller === this.controller));
        if (rec) {
          violations = (rec.violations ?? []).map((v) => v.code);
          outcome = rec.applied ? (violations.length ? 'applied_late_violation' : 'applied') : 'not_applied';
        }
      } catch (err) { this.log.warn({ err: (err as Error).message }, 'cannot read the engine\'s conclusion (viewer token?)'); }
      await this.store.setOutcome(e.id, outcome);
      this.metrics.uploads.inc({ outcome });
      this.log.info({ id: e.id, cred: e.cred, reader: e.reader, granted: e.granted, outcome, violations }, 'offline decision uploaded');
    }
  }

  /** the engine's state of the credentials the outage touched replaces the bridge's */
  private async refresh(): Promise<void> {
    const creds = [...this.toRefresh].slice(0, MAX_REFRESH);
    this.toRefresh.clear();
    const states: [string, KnownState][] = [];
    for (const c of creds) {
      try {
        const s = (await this.get(`/v1/credentials/${credPath(c)}`)) as { known: boolean; location: string | null; lastMoveAt: number; lastReader: string | null; lastReaderAt: number; exempt: boolean; freePass: boolean };
        states.push([c, { location: s.location, lastMoveAt: s.lastMoveAt, lastReader: s.lastReader, lastReaderAt: s.lastReaderAt, exempt: s.exempt, freePass: s.freePass }]);
      } catch (err) { this.log.warn({ cred: c, err: (err as Error).message }, 'cannot read a credential\'s state from the engine'); }
    }
    if (states.length) { this.onState(states); this.log.info({ credentials: states.length }, 'local state refreshed from the engine'); }
  }
}

/** the HTTP API's path form of a string credential */
export const credPath = (cred: string): string => 's:' + encodeURIComponent(cred);
