/**
 * Instants from outside (HTTP query parameters, `apb events --since/--until`):
 * milliseconds since the Unix epoch, or an ISO 8601 date-time with `Z` or a
 * UTC offset. Checked field by field: Date.parse alone would take
 * "2026-02-30" as March 2nd and "24:00" as the next day.
 */
import { ApbError } from '../errors.js';
import { MAX_INSTANT_CHARS } from '../limits.js';


const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const leap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/**
 * `v` as epoch milliseconds, or ApbError('bad_message', `<label> must be …`). `cli`: what `apb events`
 * always took besides: a bare date (YYYY-MM-DD, midnight UTC) and a date-time without a zone (local
 * time, as Date.parse reads it); its error is ApbError('usage').
 */
export function parseInstant(v: string, label: string, opts: { cli?: boolean } = {}): number {
  const what = opts.cli ? 'must be milliseconds since the epoch or an ISO 8601 date'
    : 'must be milliseconds since the epoch or an ISO 8601 date-time with Z or an offset (2026-01-01T08:00:00Z)';
  const fail = (): never => {
    throw new ApbError(opts.cli ? 'usage' : 'bad_message', `${label} ${what}, got "${v.length > MAX_INSTANT_CHARS ? v.slice(0, MAX_INSTANT_CHARS) + '…' : v}"`);
  };
  if (v.length === 0 || v.length > MAX_INSTANT_CHARS) fail();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (v.length > 16 || !Number.isSafeInteger(n)) fail();
    return n;
  }
  const m = ISO.exec(v);
  if (!m || (!opts.cli && (m[4] === undefined || m[8] === undefined))) return fail();
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const h = Number(m[4] ?? 0), mi = Number(m[5] ?? 0), s = Number(m[6] ?? 0);
  if (mo < 1 || mo > 12 || d < 1 || d > (mo === 2 && leap(y) ? 29 : DAYS[mo - 1]!) || h > 23 || mi > 59 || s > 59) fail();
  const ms = m[7] ? Math.floor(Number(('0.' + m[7])) * 1000) : 0;
  let off = 0;
  const z = m[8];
  if (z && z !== 'Z') {
    const oh = Number(z.slice(1, 3)), om = Number(z.slice(-2));
    if (oh > 23 || om > 59) fail();
    off = (z[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const t = new Date(0);
  if (m[4] !== undefined && m[8] === undefined) { t.setFullYear(y, mo - 1, d); t.setHours(h, mi, s, ms); return t.getTime(); } // local time (cli)
  t.setUTCFullYear(y, mo - 1, d); // (Date.UTC would read years 0-99 as 1900-1999)
  t.setUTCHours(h, mi, s, ms);
  return t.getTime() - off;
}
