/**
 * Test helpers for the server: a small site, a server on 127.0.0.1 port 0,
 * a `ws` controller client speaking MessagePack through @msgpack/msgpack
 * (a different implementation from the server's msgpackr), and a fetch
 * wrapper for the HTTP API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { decode, encode } from '@msgpack/msgpack';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/server.js';

export const TOKENS = {
  c1: 'tok-c1-long-test-token', c2: 'tok-c2-long-test-token', limited: 'tok-limited-long-test-token', slow: 'tok-slow-long-test-token', wiegand: 'tok-wg-long-test-token',
  viewer: 'tok-viewer-long-test-token', operator: 'tok-operator-long-test-token', admin: 'tok-admin-long-test-token',
} as const;

/** outside > stadium > vip (vip strict, max 2); c1 owns the gates, c2 the VIP doors. */
export function siteYaml(extra = ''): string {
  return `site: server-test
timezone: UTC
areas:
  - id: stadium
    entry: hard
  - id: vip
    parent: stadium
    entry: hard
    strict: true
    maxOccupancy: 2
  - id: concourse
    parent: stadium
    commitOn: passage
    passageTimeout: 10
readers:
  - { id: g-in, from: outside, to: stadium, controller: c1 }
  - { id: g-out, from: stadium, to: outside, controller: c1 }
  - { id: t-in, from: stadium, to: concourse, controller: c1 }
  - { id: vip-in, from: stadium, to: vip, controller: c2 }
  - { id: vip-out, from: vip, to: stadium, controller: c2 }
  - { id: s-in, from: outside, to: stadium, controller: slow }
  - { id: l-in, from: outside, to: stadium, controller: limited }
  - { id: w-in, from: outside, to: stadium, controller: wg }
controllers:
  - { id: c1, token: ${TOKENS.c1}, rateLimit: 1000000 }
  - { id: c2, token: ${TOKENS.c2}, rateLimit: 1000000 }
  - { id: slow, token: ${TOKENS.slow}, rateLimit: 100000000 }
  - { id: limited, token: ${TOKENS.limited}, rateLimit: 5 }
  - { id: wg, token: ${TOKENS.wiegand}, protocol: wiegand }
users:
  - { name: vera, token: ${TOKENS.viewer}, role: viewer }
  - { name: otto, token: ${TOKENS.operator}, role: operator }
  - { name: ada, token: ${TOKENS.admin}, role: admin }
${extra}`;
}

export function tempDir(prefix = 'apb-server-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const TEST_CORE = (process.env.APB_TEST_CORE as 'wasm' | 'reference' | undefined) ?? 'wasm';

export async function start(opts: Partial<ServerOptions> = {}): Promise<RunningServer & { ws: string }> {
  const s = await startServer({ configText: siteYaml(), data: ':memory:', host: '127.0.0.1', port: 0, logLevel: 'silent', core: TEST_CORE, ...opts });
  return Object.assign(s, { ws: s.url.replace('http', 'ws') });
}

export const pack = (v: unknown): Uint8Array => encode(v, { useBigInt64: true });
export const unpack = (b: Uint8Array | ArrayBuffer | Buffer): unknown => decode(b instanceof ArrayBuffer ? new Uint8Array(b) : b, { useBigInt64: true });

/** Normalises decoded bigints that fit a number (for deepEqual against literals). */
export function norm(v: unknown): unknown {
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof Uint8Array) return v;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

/** A controller: one WebSocket, frames in MessagePack, replies queued in arrival order. */
export class Controller {
  private queue: Buffer[] = [];
  private waiters: ((b: Buffer) => void)[] = [];
  closed: Promise<{ code: number }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const w = this.waiters.shift();
      if (w) w(data); else this.queue.push(data);
    });
    this.closed = new Promise((r) => ws.once('close', (code) => r({ code })));
  }

  static connect(url: string, token?: string): Promise<Controller> {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const ws = new WebSocket(url + '/v1/controller', { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Controller(ws)));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  sendRaw(bytes: Uint8Array): void { this.ws.send(bytes, { binary: true }); }
  send(frame: unknown): void { this.sendRaw(pack(frame)); }

  nextRaw(timeoutMs = 5000): Promise<Buffer> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply within ' + timeoutMs + ' ms')), timeoutMs);
      this.waiters.push((b) => { clearTimeout(t); resolve(b); });
    });
  }
  async next(): Promise<unknown> { return norm(unpack(await this.nextRaw())); }

  async rpc(frame: unknown): Promise<any> { this.send(frame); return this.next(); }

  close(): Promise<{ code: number }> { this.ws.close(); return this.closed; }
}

export interface HttpResult { status: number; type: string; body: any; text: string; raw: Buffer }

/** One HTTP request: JSON by default, MessagePack with `msgpack: true`. */
export async function http(base: string, method: string, path: string, o: { token?: string; body?: unknown; rawBody?: string | Uint8Array; msgpack?: boolean; contentType?: string } = {}): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | Uint8Array | undefined;
  if (o.rawBody !== undefined) body = o.rawBody;
  else if (o.body !== undefined) body = o.msgpack ? pack(o.body) : JSON.stringify(o.body);
  if (body !== undefined) headers['content-type'] = o.contentType ?? (o.msgpack ? 'application/msgpack' : 'application/json');
  if (o.msgpack) headers.accept = 'application/msgpack';
  const r = await fetch(base + path, { method, headers, body: body as unknown as string | undefined });
  const type = r.headers.get('content-type') ?? '';
  const buf = Buffer.from(await r.arrayBuffer());
  let parsed: unknown = undefined;
  if (type.includes('msgpack')) parsed = norm(unpack(buf));
  else if (type.includes('json')) parsed = JSON.parse(buf.toString('utf8'));
  return { status: r.status, type, body: parsed, text: buf.toString('utf8'), raw: buf };
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Polls `f` until it returns truthy (or throws after `ms`). */
export async function until<T>(f: () => T | Promise<T>, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
