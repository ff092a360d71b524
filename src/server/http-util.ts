/**
 * uWS HTTP plumbing: copy the request before any await (HttpRequest is
 * stack-allocated), register onAborted, read bodies with a size bound,
 * answer inside cork(), JSON or MessagePack by content-type / accept.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ApbError, isApbError } from '../errors.js';
import { encode, decodeFrame, toJson } from './codec.js';
import type { Logger } from './log.js';
import { Auth } from './auth.js';
import { AuthThrottle } from './auth-throttle.js';

export const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found',
  405: '405 Method Not Allowed', 413: '413 Payload Too Large', 429: '429 Too Many Requests', 500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};
export const statusLine = (s: number): string => STATUS_TEXT[s] ?? String(s);

export const JSON_TYPE = 'application/json';
export const MSGPACK_TYPE = 'application/msgpack';

/** What a handler sees: everything copied out of the HttpRequest. */
export interface Req {
  method: string;
  url: string;
  query: URLSearchParams;
  params: string[];
  token: string;
  contentType: string;
  msgpack: boolean;   // reply in MessagePack
  body?: Buffer;
  aborted: boolean;
  /** the client's throttling key (auth-throttle.ts); only valid before the first await */
  addr: () => string;
}

export interface Out { status?: number; body: unknown; raw?: { data: string | Uint8Array; type: string }; headers?: Record<string, string> }

export type Handler = (req: Req) => Out | Promise<Out>;

/** The raw query string. (The JS fallback's getQuery() throws on relative URLs: take it from the URL then.) */
export function queryOf(req: HttpRequest): string {
  try { return req.getQuery() ?? ''; } catch {
    const u = req.getUrl();
    const i = u.indexOf('?');
    return i < 0 ? '' : u.slice(i + 1);
  }
}

export function copyRequest(res: HttpResponse, req: HttpRequest, nParams: number): Req {
  const params: string[] = [];
  for (let i = 0; i < nParams; i++) params.push(req.getParameter(i));
  const contentType = req.getHeader('content-type');
  const accept = req.getHeader('accept');
  const r: Req = {
    method: req.getMethod(),
    url: req.getUrl(),
    query: new URLSearchParams(queryOf(req)),
    params,
    token: Auth.bearer(req.getHeader('authorization')),
    contentType,
    msgpack: contentType.includes(MSGPACK_TYPE) || (!contentType && accept.includes(MSGPACK_TYPE)),
    aborted: false,
    addr: () => AuthThrottle.addressOf(res), // computed only when a token fails or an address is throttled
  };
  res.onAborted(() => { r.aborted = true; });
  return r;
}

/**
 * Answers on the next turn of the event loop, never inside the request
 * handler. uWS keeps parsing pipelined requests of a connection while their
 * answers are written synchronously, queueing every answer whatever the
 * client reads: one anonymous connection pipelining GET /metrics without
 * reading grew the server by ~140 MiB/s. While an answer is pending uWS
 * parses nothing more of that connection (and closes it if the client
 * floods it), so the memory per connection is one answer. The cost is one
 * event-loop turn per request outside the hot path (POST bodies are
 * asynchronous anyway); HTTP pipelining is therefore not supported.
 */
export function answerLater(aborted: () => boolean, f: () => void): void {
  setImmediate(() => { if (!aborted()) f(); });
}

/** A handler of its own (no Req) answered on the next turn; onAborted is registered here. */
export function deferred(h: (res: HttpResponse, url: string, method: string) => void): (res: HttpResponse, rq: HttpRequest) => void {
  return (res, rq) => {
    const url = rq.getUrl();
    const method = rq.getMethod();
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    answerLater(() => aborted, () => h(res, url, method));
  };
}

/** Reads the body up to `limit` bytes; too_large beyond (checked on content-length first). */
export function readBody(res: HttpResponse, req: HttpRequest, limit: number): Promise<Buffer> {
  const declared = Number(req.getHeader('content-length') || '0');
  return new Promise((resolve, reject) => {
    if (declared > limit) { reject(new ApbError('too_large', `body of ${declared} bytes exceeds the limit of ${limit}`)); return; }
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      total += chunk.byteLength;
      if (total > limit) { failed = true; reject(new ApbError('too_large', `body exceeds the limit of ${limit} bytes`)); return; }
      chunks.push(Buffer.from(chunk.slice(0))); // the ArrayBuffer is neutered after this callback
      if (isLast) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  });
}

/** Decodes a JSON or MessagePack body into a value (bad_frame when it does not parse). */
export function parseBody(req: Req, parseJson: (s: string) => unknown = JSON.parse): unknown {
  const b = req.body ?? Buffer.alloc(0);
  if (req.contentType.includes(MSGPACK_TYPE)) return decodeFrame(b);
  if (b.length === 0) return {};
  try { return parseJson(b.toString('utf8')); } catch (e) {
    throw new ApbError('bad_frame', `body is not JSON: ${(e as Error).message}`);
  }
}

/**
 * {code, message}, and for invalid_config the error's own `detail` ({errors: [{path, message}]}): the
 * same shape ApbError has everywhere else (the SIGHUP log line, `apb validate`), never a second copy.
 */
export function errorBody(e: ApbError): Record<string, unknown> {
  const body: Record<string, unknown> = { code: e.code, message: e.message };
  const errors = e.code === 'invalid_config' ? (e.detail as { errors?: unknown } | undefined)?.errors : undefined;
  if (Array.isArray(errors)) body.detail = { errors };
  return body;
}

export function send(res: HttpResponse, req: Req, out: Out, closeConnection = false): void {
  if (req.aborted) return;
  const status = out.status ?? 200;
  let data: string | Uint8Array;
  let type: string;
  if (out.raw) { data = out.raw.data; type = out.raw.type; }
  else if (req.msgpack) { data = encode(out.body); type = MSGPACK_TYPE; }
  else { data = toJson(out.body); type = JSON_TYPE; }
  endPaced(res, statusLine(status), { 'content-type': type, ...out.headers }, data, closeConnection);
}

/**
 * Writes a whole answer as fast as the client reads it (tryEnd +
 * onWritable) instead of res.end(), which queues all of it in uWS whatever
 * the client does. While the answer is unfinished uWS parses nothing more of
 * the connection (see answerLater), so a client that stops reading holds at
 * most one answer in the server, and it is one we already built.
 * `headers` gets x-content-type-options: nosniff; `close`: close the
 * connection after the answer (the whole answer is then queued: used for
 * refusals, whose answers are small).
 */
export function endPaced(res: HttpResponse, status: string, headers: Record<string, string | undefined>, body: string | Uint8Array, close = false): void {
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  let done = false;
  res.onAborted(() => { done = true; });
  res.cork(() => {
    res.writeStatus(status).writeHeader('x-content-type-options', 'nosniff');
    for (const k in headers) if (headers[k] !== undefined) res.writeHeader(k, headers[k]!);
    if (close) { res.end(data, true); done = true; return; }
    try { done = res.tryEnd(data, data.length)[1]; } catch { res.end(data); done = true; } // the JS fallback has no tryEnd (node:http paces itself)
  });
  if (done) return;
  res.onWritable((offset) => {
    if (done) return true;
    const [ok, finished] = res.tryEnd(data.subarray(offset), data.length);
    done = finished;
    return ok;
  });
}

export function sendError(res: HttpResponse, req: Req, err: unknown, log?: Logger): void {
  const e = isApbError(err) ? err : new ApbError('internal', (err as Error)?.message ?? String(err));
  if (!isApbError(err)) log?.error({ err }, 'unexpected error in an HTTP handler');
  // errors in JSON when the request could not be decoded (PROTOCOL.md)
  if (e.code === 'bad_frame') req.msgpack = false;
  const out: Out = { status: e.status, body: errorBody(e) };
  const retry = (e.detail as { retryAfterS?: number } | undefined)?.retryAfterS;
  if (e.code === 'rate_limited' && retry) out.headers = { 'retry-after': String(retry) };
  send(res, req, out, e.code === 'too_large');
}

/**
 * Registers a route. `auth` checks the token from the headers first: when it
 * throws, the error is the answer and the body is never read (uWS discards
 * what arrives of it without buffering). `withBody` then reads the body
 * (bounded) before the handler; the handler's result or ApbError becomes
 * the response.
 */
export function route(app: TemplatedApp, method: 'get' | 'post' | 'put' | 'any', pattern: string, opts: { params?: number; withBody?: boolean; bodyLimit?: number; log?: Logger; auth?: (req: Req) => unknown; headers?: () => Record<string, string> }, h: Handler): void {
  app[method](pattern, (res, rq) => {
    const req = copyRequest(res, rq, opts.params ?? 0);
    if (opts.auth) {
      try { opts.auth(req); } catch (e) { answerLater(() => req.aborted, () => sendError(res, req, e, opts.log)); return; }
    }
    const run = (): void => {
      try {
        const out = h(req);
        // `headers`: added to every successful answer (a cluster follower's replication lag)
        const withHeaders = (o: Out): Out => (opts.headers ? { ...o, headers: { ...o.headers, ...opts.headers() } } : o);
        if (out instanceof Promise) out.then((o) => send(res, req, withHeaders(o)), (e) => sendError(res, req, e, opts.log));
        else send(res, req, withHeaders(out));
      } catch (e) { sendError(res, req, e, opts.log); }
    };
    if (!opts.withBody) { answerLater(() => req.aborted, run); return; }
    readBody(res, rq, opts.bodyLimit ?? 1 << 20).then((b) => { req.body = b; run(); }, (e) => sendError(res, req, e, opts.log));
  });
}
