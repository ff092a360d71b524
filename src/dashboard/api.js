// HTTP API client: JSON bodies, bearer token (README "HTTP API").
// Every failure becomes an ApiError carrying the server's stable `code`, so
// panels can show "forbidden: …" inline instead of a generic message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  /** How panels print it: "code: message". */
  toString() { return `${this.code}: ${this.message}`; }
}

const TOKEN_KEY = 'apb.token';

/** The token lives in sessionStorage: one browser tab, gone when it closes. */
export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  set token(v) { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); },
};

/**
 * One request. `body` (if any) is sent as JSON. Resolves with the decoded
 * JSON reply (or null for an empty one); rejects with ApiError.
 */
export async function request(method, path, body, token = session.token) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network', `the engine cannot be reached (${e && e.message ? e.message : e})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const code = data && typeof data.code === 'string' ? data.code : `http_${res.status}`;
    const message = data && typeof data.message === 'string' ? data.message : (text || res.statusText || 'request failed');
    throw new ApiError(res.status, code, message);
  }
  return data;
}

/**
 * A credential typed by an operator → the `{cred}` path form.
 * Already-formed "123", "s:…" and "x:…" pass through (the path form is
 * URL-safe by construction, so it is not encoded again); anything else is
 * taken as a string credential (a ticket barcode, a phone key).
 */
export function credPath(input) {
  const s = String(input).trim();
  if (/^[0-9]+$/.test(s)) return s;
  if (/^x:(?:[0-9a-fA-F]{2})+$/.test(s)) return s.toLowerCase();
  if (s.startsWith('s:')) {
    // canonicalise: "s:ticket 42" and "s:ticket%2042" are the same credential
    let text = s.slice(2);
    try { text = decodeURIComponent(text); } catch { /* keep as typed */ }
    return 's:' + encodeURIComponent(text);
  }
  return 's:' + encodeURIComponent(s);
}

/** Accepts either a bare array or `{<key>: array}` (tolerant of either server shape). */
function listOf(data, key) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  return [];
}

/** `{events, next}` whatever the server's shape (a bare array is one last page). */
function pageOf(data, key) {
  if (Array.isArray(data)) return { [key]: data, next: null };
  return { ...(data || {}), [key]: listOf(data, key), next: data && typeof data.next === 'string' && data.next ? data.next : null };
}

function query(q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q || {})) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  return p;
}

export const api = {
  whoami: (token) => request('GET', '/v1/whoami', undefined, token),
  /** {site, timezone}; null when this engine does not say (older servers) */
  site: async () => { try { return await request('GET', '/v1/site'); } catch (e) { if (e.status === 404) return null; throw e; } },
  controllers: async () => listOf(await request('GET', '/v1/controllers'), 'controllers'),
  areas: async () => listOf(await request('GET', '/v1/areas'), 'areas'),
  credential: (cred) => request('GET', `/v1/credentials/${credPath(cred)}`),
  /** one page of the event log: {events, next} (next: cursor of the following page, or null) */
  eventsPage: async (q) => pageOf(await request('GET', `/v1/events?${query(q)}`), 'events'),
  /** the events of one page only (lookup's recent events) */
  events: async (q) => (await api.eventsPage(q)).events,
  /** who is inside an area now: {area, count, credentials: [{cred, area, since, reader}], next} */
  areaCredentials: async (area, q) =>
    pageOf(await request('GET', `/v1/areas/${encodeURIComponent(area)}/credentials?${query(q)}`), 'credentials'),
  /** the same list as CSV text (every row; `q` narrows it as in the list) */
  areaCredentialsCsv: (area, q) =>
    requestText(`/v1/areas/${encodeURIComponent(area)}/credentials?${query({ ...q, format: 'csv' })}`),
  /** action: forgive | reset | exempt | location | supervisor; body {reason, on?, area?} */
  credentialAction: (cred, action, body) =>
    request('POST', `/v1/credentials/${credPath(cred)}/${action}`, body),
  resetArea: (area, reason) => request('POST', `/v1/areas/${encodeURIComponent(area)}/reset`, { reason }),
  /** SPEC 13.1: lock (on) or unlock an area */
  lockdown: (area, on, reason) => request('POST', `/v1/areas/${encodeURIComponent(area)}/lockdown`, { reason, on }),
};

/** GET of a non-JSON body (CSV); errors as in request(). */
export async function requestText(path, token = session.token) {
  let res;
  try {
    res = await fetch(path, { headers: { accept: 'text/csv, application/json', authorization: `Bearer ${token}` } });
  } catch (e) {
    throw new ApiError(0, 'network', `the engine cannot be reached (${e && e.message ? e.message : e})`);
  }
  const text = await res.text();
  if (!res.ok) {
    let data = null;
    try { data = JSON.parse(text); } catch { data = null; }
    throw new ApiError(res.status, data && typeof data.code === 'string' ? data.code : `http_${res.status}`,
      data && typeof data.message === 'string' ? data.message : (text || res.statusText || 'request failed'));
  }
  const cd = res.headers.get('content-disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  return { text, type: res.headers.get('content-type') || 'text/csv', filename: m ? m[1] : '' };
}
