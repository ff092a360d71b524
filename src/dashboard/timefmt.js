// Times as the console shows them: in the SITE's time zone (the `timezone` of
// the site file, from GET /v1/site), not the browser's, with the date added
// whenever the instant is not today (today = the site's calendar day).
// Until the zone is known the browser's own zone is used and labelled so.

let zone = '';           // IANA name; '' = the browser's zone
let label = 'browser time';
let parts = makeParts('');

function makeParts(tz) {
  const opt = { hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' };
  if (tz) opt.timeZone = tz;
  return new Intl.DateTimeFormat('en-GB', opt);
}

/** Sets the site's zone (IANA); an unknown zone keeps the browser's. Returns true when applied. */
export function setZone(tz) {
  if (typeof tz !== 'string' || !tz) return false;
  try { parts = makeParts(tz); } catch { return false; }
  zone = tz;
  label = tz;
  return true;
}

/** The zone times are shown in: its IANA name, or "browser time". */
export function zoneName() { return label; }

/** Short zone label for column headers: "BST", "GMT+5:30", "UTC". */
export function zoneShort(at = Date.now()) {
  try {
    const opt = { timeZoneName: 'short' };
    if (zone) opt.timeZone = zone;
    const p = new Intl.DateTimeFormat('en-GB', opt).formatToParts(new Date(at)).find((x) => x.type === 'timeZoneName');
    return p ? p.value : label;
  } catch { return label; }
}

/** {y, mo, d, h, mi, s} of `at` in the site zone. */
function fields(at) {
  const o = {};
  for (const p of parts.formatToParts(new Date(at))) o[p.type] = p.value;
  return { y: o.year, mo: o.month, d: o.day, h: o.hour, mi: o.minute, s: o.second };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Is `at` on the site's current calendar day? (`now` for tests) */
export function isToday(at, now = Date.now()) {
  const a = fields(at), b = fields(now);
  return a.y === b.y && a.mo === b.mo && a.d === b.d;
}

/** HH:MM:SS in the site zone. */
export function clock(at) {
  if (!Number.isFinite(at)) return '–';
  const f = fields(at);
  return `${f.h}:${f.mi}:${f.s}`;
}

/**
 * A table time: "14:03:04.123" today (ms only with `ms`), "6 Dec 14:03:04" on
 * another day of this year, "2024-12-06 14:03:04" in another year.
 */
export function stamp(at, { ms = false, now = Date.now() } = {}) {
  if (!Number.isFinite(at)) return '–';
  const f = fields(at);
  const t = `${f.h}:${f.mi}:${f.s}`;
  if (isToday(at, now)) return ms ? `${t}.${String(Math.floor(((at % 1000) + 1000) % 1000)).padStart(3, '0')}` : t;
  if (f.y === fields(now).y) return `${Number(f.d)} ${MONTHS[Number(f.mo) - 1]} ${t}`;
  return `${f.y}-${f.mo}-${f.d} ${t}`;
}

/** A compact file-name stamp in the site zone: 20251206-140304. */
export function fileStamp(at = Date.now()) {
  const f = fields(at);
  return `${f.y}${f.mo}${f.d}-${f.h}${f.mi}${f.s}`;
}
