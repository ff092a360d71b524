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

export const api = {
  whoami: (token) => request('GET', '/v1/whoami', undefined, token),
  controllers: async () => listOf(await request('GET', '/v1/controllers'), 'controllers'),
  areas: async () => listOf(await request('GET', '/v1/areas'), 'areas'),
  credential: (cred) => request('GET', `/v1/credentials/${credPath(cred)}`),
  events: async (q) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
    return listOf(await request('GET', `/v1/events?${p}`), 'events');
  },
  /** action: forgive | reset | exempt | location; body {reason, on?, area?} */
  credentialAction: (cred, action, body) =>
    request('POST', `/v1/credentials/${credPath(cred)}/${action}`, body),
  resetArea: (area, reason) => request('POST', `/v1/areas/${encodeURIComponent(area)}/reset`, { reason }),
};
