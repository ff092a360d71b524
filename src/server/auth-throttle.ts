/**
 * Throttling of failed bearer tokens per client address (HTTP API,
 * /v1/stream and /v1/controller alike). After `threshold` wrong tokens from
 * one address within `windowMs` of the first of them, every token-checked
 * request from that address is answered 429 `rate_limited` until that
 * window ends, right tokens included: otherwise a guesser would still learn
 * at full speed which guess is right. Missing tokens and right tokens with
 * too low a role are not guesses and are not counted.
 *
 * Memory is bounded: at most `maxAddresses` entries, kept in the order
 * their windows started (a Map keeps insertion order), so expired entries
 * are dropped from the front in O(1) each; when the table is full of live
 * entries the oldest is dropped. IPv6 clients are keyed by their /64 (one
 * host usually owns a whole /64, so per-address keys would cost it nothing).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { ApbError } from '../errors.js';

export const AUTH_FAIL_THRESHOLD = 20;
export const AUTH_FAIL_WINDOW_MS = 60_000;
export const AUTH_FAIL_MAX_ADDRESSES = 10_000;

export interface AuthThrottleOptions { threshold?: number; windowMs?: number; maxAddresses?: number }

interface Entry { failures: number; start: number }

export class AuthThrottle {
  private readonly table = new Map<string, Entry>();
  readonly threshold: number;
  readonly windowMs: number;
  readonly maxAddresses: number;

  constructor(o: AuthThrottleOptions = {}, private readonly now: () => number = Date.now) {
    this.threshold = o.threshold ?? AUTH_FAIL_THRESHOLD;
    this.windowMs = o.windowMs ?? AUTH_FAIL_WINDOW_MS;
    this.maxAddresses = o.maxAddresses ?? AUTH_FAIL_MAX_ADDRESSES;
  }

  /** addresses currently tracked (for tests and metrics) */
  get size(): number { return this.table.size; }

  /** The throttling key of a uWS response's peer (call before any await: res is stack-bound). */
  static addressOf(res: HttpResponse): string {
    try { return keyOf(Buffer.from(res.getRemoteAddressAsText()).toString('latin1')); } catch { return '?'; }
  }

  /**
   * Runs `check` (a token check that throws `unauthorized` for a wrong token)
   * for a request from `addrOf()`: rate_limited while the address is
   * throttled, and a wrong non-empty token counts against it. The address
   * is only looked up when the table is not empty or the check fails (it
   * costs a native call: not on every request of the hot path).
   */
  guard<T>(addrOf: () => string, token: string, check: () => T): T {
    const t = this.now();
    const addr = this.table.size ? addrOf() : undefined;
    const e = addr === undefined ? undefined : this.live(addr, t);
    if (e && e.failures >= this.threshold) {
      const s = Math.max(1, Math.ceil((e.start + this.windowMs - t) / 1000));
      throw new ApbError('rate_limited', `too many wrong bearer tokens from this address: try again in ${s} s`, { retryAfterS: s });
    }
    try {
      return check();
    } catch (err) {
      if (token && err instanceof ApbError && err.code === 'unauthorized') this.fail(addr ?? addrOf(), t, e);
      throw err;
    }
  }

  /** The entry of `addr` if its window is still open (an expired one is removed). */
  private live(addr: string, t: number): Entry | undefined {
    const e = this.table.get(addr);
    if (e && t - e.start >= this.windowMs) { this.table.delete(addr); return undefined; }
    return e;
  }

  private fail(addr: string, t: number, e: Entry | undefined): void {
    if (e) { e.failures++; return; }
    // a new window: drop expired entries from the front, then the oldest if still full
    for (const [k, v] of this.table) {
      if (this.table.size < this.maxAddresses && t - v.start < this.windowMs) break;
      this.table.delete(k);
    }
    this.table.set(addr, { failures: 1, start: t });
  }
}

/** IPv4 as is; IPv4-mapped IPv6 as its IPv4; other IPv6 by the first four groups (the /64). */
export function keyOf(text: string): string {
  if (!text.includes(':')) return text;
  const mapped = /^(?:0{1,4}:){5}ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped) return mapped[1]!;
  const groups = expand(text);
  if (!groups) return text;
  // IPv4-mapped written in hex (uWS on a dual-stack socket): one key per IPv4 address, not one for all of them
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    const [hi, lo] = [parseInt(groups[6]!, 16), parseInt(groups[7]!, 16)];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return groups.slice(0, 4).join(':') + '::/64';
}

function expand(text: string): string[] | null {
  const [head, tail, ...rest] = text.split('::');
  if (rest.length) return null;
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - tl.length).fill('0');
  const all = [...h, ...fill, ...tl];
  if (all.length !== 8) return null;
  return all.map((g) => (parseInt(g, 16) || 0).toString(16));
}
