/** Small pieces both stores share: id normalisation, query filters, option defaults. */
import { ApbError } from '../errors.js';
import type { EventQuery, EventRecord, RetentionOptions } from './types.js';

export const DAY_MS = 86_400_000;
export const RETENTION_DEFAULTS: Required<RetentionOptions> = {
  maxAgeMs: 30 * DAY_MS,
  maxBytes: 8 * 2 ** 30,
  intervalMs: 60_000,
  chunk: 2000,
};
export const QUERY_DEFAULT_LIMIT = 100;
export const QUERY_MAX_LIMIT = 10_000;

/**
 * Controller ids are u64. One canonical form per value, so (controller, id) is an exact key:
 * a number when <= 2^53-1, else a decimal string.
 */
export function normalizeId(id: number | string | bigint): number | string {
  if (typeof id === 'number') return id;
  if (typeof id === 'bigint') return id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : id.toString(10);
  if (/^[0-9]{1,16}$/.test(id)) { const n = Number(id); if (Number.isSafeInteger(n)) return n; }
  return id.replace(/^0+(?=[0-9])/, '');
}

/** Fixed-width decimal form of an id, so ids sort numerically as strings (u64 has at most 20 digits). */
export function padId(id: number | string): string {
  return String(id).padStart(20, '0');
}

export function idemKey(controller: string, id: number | string): string {
  return controller + '\u0000' + String(id);
}

export function clampLimit(q: EventQuery): number {
  const l = q.limit ?? QUERY_DEFAULT_LIMIT;
  if (!Number.isInteger(l) || l < 1) return QUERY_DEFAULT_LIMIT;
  return Math.min(l, QUERY_MAX_LIMIT);
}

export function matches(ev: EventRecord, q: EventQuery): boolean {
  if (q.cred !== undefined && ev.cred !== q.cred) return false;
  if (q.reader !== undefined && ev.reader !== q.reader) return false;
  if (q.controller !== undefined && ev.controller !== q.controller) return false;
  if (q.since !== undefined && ev.at < q.since) return false;
  if (q.until !== undefined && ev.at > q.until) return false;
  if (q.beforeSeq !== undefined && (ev.seq ?? 0) >= q.beforeSeq) return false;
  return true;
}

/** The config text a record puts in force, if it is a 'config' journal record. */
export function configOf(ev: EventRecord): string | undefined {
  if (ev.kind !== 'config') return undefined;
  const op = ev.op as { t?: unknown; text?: unknown } | undefined;
  return op && op.t === 'config' && typeof op.text === 'string' ? op.text : undefined;
}

export function storageError(err: unknown): ApbError {
  if (err instanceof ApbError && err.code === 'storage_unavailable') return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new ApbError('storage_unavailable', `storage write failed: ${msg}`);
}

export function validateAppend(events: EventRecord[], idem: { controller: string; id: unknown; reply: unknown }[]): void {
  if (!Array.isArray(events) || !Array.isArray(idem)) throw new ApbError('internal', 'store.append: events and idem must be arrays');
  for (const e of events) {
    if (!e || typeof e !== 'object' || typeof e.at !== 'number' || !Number.isFinite(e.at) || typeof e.kind !== 'string') {
      throw new ApbError('internal', 'store.append: every event needs a numeric `at` and a `kind`');
    }
  }
  for (const r of idem) {
    if (typeof r.controller !== 'string' || !(r.reply instanceof Uint8Array)) {
      throw new ApbError('internal', 'store.append: idem records need a controller and reply bytes');
    }
  }
}

/** Listener set for health changes. */
export class HealthListeners {
  private readonly cbs = new Set<(healthy: boolean, error?: Error) => void>();
  add(cb: (healthy: boolean, error?: Error) => void): () => void { this.cbs.add(cb); return () => { this.cbs.delete(cb); }; }
  emit(healthy: boolean, error?: Error): void { for (const cb of this.cbs) { try { cb(healthy, error); } catch { /* a listener's bug must not break storage */ } } }
}

/**
 * What query() (and so GET /v1/events, open to viewers) shows of a record: a configuration record's
 * text holds every token of the site, so it is replaced by its size. since()/range() keep it (recovery).
 */
export function redact(ev: EventRecord): EventRecord {
  const text = configOf(ev);
  if (text === undefined) return ev;
  return { ...ev, op: { t: 'config', redacted: true, bytes: Buffer.byteLength(text) } };
}
