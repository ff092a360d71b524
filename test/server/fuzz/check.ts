/**
 * Judging the server's answers in the fuzz test: a reply must be a
 * decision, ack or pong of the message's id, or a precise error (a code of
 * ERROR_CODES other than `internal`, a message, the id when the message had
 * a valid one); an expectation of the generator must hold. Findings are
 * gathered by kind, with the first example of each, so one run reports
 * every distinct defect instead of stopping at the first.
 */
import { ERROR_CODES, HTTP_STATUS } from '../../../src/errors.js';
import { U64MAX, show, type Msg } from './gen.js';
import { Ext } from './mp.js';

export const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

export const toBig = (x: unknown): bigint | undefined =>
  typeof x === 'bigint' ? x : typeof x === 'number' && Number.isSafeInteger(x) ? BigInt(x) : undefined;

/** The id as the server must read it (PROTOCOL: an unsigned integer up to 2^64-1), else undefined. */
export function validIdOf(v: unknown): bigint | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
  if (typeof v === 'bigint') return v >= 0n && v <= U64MAX ? v : undefined;
  return undefined;
}

/** true when an extension type occurs anywhere in v: PROTOCOL allows none, so the whole frame may be refused bad_frame */
export function containsExt(v: unknown, depth = 0): boolean {
  if (v instanceof Ext) return true;
  if (depth > 50 || v === null || typeof v !== 'object' || v instanceof Uint8Array) return false;
  return Object.values(v as object).some((x) => containsExt(x, depth + 1));
}

export interface Problem { kind: string; detail?: string }

/**
 * What is wrong with one reply map (undefined: nothing). `idRequired`: the
 * error must carry the message's id (WebSocket; HTTP error bodies have none).
 */
export function replyProblem(rep: unknown, msg: Msg | undefined, idRequired: boolean): Problem | undefined {
  if (!isMap(rep)) return { kind: 'reply is not a map', detail: show(rep) };
  const t = rep.t;
  if (t === 'error') {
    if (typeof rep.code !== 'string' || !Object.hasOwn(ERROR_CODES, rep.code)) return { kind: `unknown error code ${show(rep.code)}`, detail: show(rep) };
    if (rep.code === 'internal') return { kind: 'internal error', detail: show(rep) };
    if (typeof rep.message !== 'string' || rep.message === '') return { kind: `error ${rep.code} without a message`, detail: show(rep) };
  } else if (t === 'decision') {
    if (typeof rep.grant !== 'boolean' || typeof rep.reason !== 'string' || !Array.isArray(rep.violations)) return { kind: 'malformed decision', detail: show(rep) };
    if (rep.grant && typeof rep.area !== 'string') return { kind: 'granted decision without an area', detail: show(rep) };
  } else if (t === 'pong') {
    if (toBig(rep.now) === undefined) return { kind: 'pong without an integer `now`', detail: show(rep) };
  } else if (t !== 'ack') return { kind: `unknown reply type ${show(t)}`, detail: show(rep) };
  if (t !== 'error' && validIdOf(rep.id) === undefined) return { kind: `${t} without a valid id`, detail: show(rep) };
  if (!msg) return undefined;
  const sent = isMap(msg.value) ? validIdOf(msg.value.id) : undefined;
  const code = t === 'error' ? (rep.code as string) : '';
  const frameLevel = code === 'bad_frame' || code === 'too_large';
  if (sent !== undefined && (t !== 'error' || (idRequired && !frameLevel))) {
    const got = toBig(rep.id);
    if (got !== sent) return { kind: t === 'error' ? `error ${code} does not carry the message's id` : `${t} carries another id`, detail: `sent id ${sent}, reply ${show(rep)}` };
  }
  const e = msg.expect;
  if (!e || (code === 'bad_frame' && containsExt(msg.value))) return undefined;
  const got = t === 'error' ? `error ${code}: ${String(rep.message).slice(0, 200)}` : t === 'decision' ? `decision ${rep.grant ? 'grant' : 'deny'} ${rep.reason}` : String(t);
  const item = msg.item ? ` [issue item ${msg.item}]` : '';
  const tag = msg.tag.replace(/\(.*$/, '') + ': ';
  if (e.kind === 'ok') {
    if (t !== e.t || (e.reason !== undefined && rep.reason !== e.reason)) return { kind: `${tag}expected ${e.t}${e.reason ? ' ' + e.reason : ''}, got ${t === 'error' ? 'error ' + code : t}${item}`, detail: got };
  } else if (e.kind === 'accepted') {
    if (t === 'error') return { kind: `${tag}expected to be accepted, got error ${code}${item}`, detail: got };
  } else if (t !== 'error' || (e.codes && e.codes.length && !e.codes.includes(code))) {
    return { kind: `${tag}expected error ${e.codes?.length ? e.codes.join('|') : '(any code)'}, got ${t === 'error' ? 'error ' + code : t}${item}`, detail: got };
  }
  return undefined;
}

/** An HTTP error body {code, message} must match its status (errors.ts HTTP_STATUS). */
export function httpErrorProblem(status: number, body: unknown): Problem | undefined {
  if (!isMap(body) || typeof body.code !== 'string') return { kind: `HTTP ${status} without an error body {code, message}`, detail: show(body) };
  if (!Object.hasOwn(ERROR_CODES, body.code)) return { kind: `HTTP ${status}: unknown error code ${body.code}`, detail: show(body) };
  if (body.code === 'internal' || status >= 500 && status !== 503) return { kind: `HTTP ${status} ${body.code}`, detail: show(body) };
  const want = HTTP_STATUS[body.code as keyof typeof HTTP_STATUS];
  if (want !== undefined && want !== status) return { kind: `HTTP ${status} for ${body.code} (expected ${want})`, detail: show(body) };
  if (typeof body.message !== 'string' || body.message === '') return { kind: `HTTP error ${body.code} without a message`, detail: show(body) };
  return undefined;
}

/** JSON that keeps integers beyond 2^53 exact (the server writes u64 ids as bare digits): long digit runs outside strings are quoted first. */
export function parseJsonExact(text: string): unknown {
  let out = '';
  let from = 0;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inStr) { if (c === '\\') i++; else if (c === '"') inStr = false; continue; }
    if (c === '"') { inStr = true; continue; }
    if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && text[j]! >= '0' && text[j]! <= '9') j++;
      if (j - i >= 16 && !/[.eE]/.test(text[j] ?? '')) { out += text.slice(from, i) + `"~~big~~${text.slice(i, j)}"`; from = j; }
      i = j - 1;
    }
  }
  out += text.slice(from);
  return JSON.parse(out, (_k, v: unknown) => {
    if (typeof v === 'string' && v.startsWith('~~big~~')) {
      const b = BigInt(v.slice(7));
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
    }
    return v;
  });
}

export class Findings {
  private readonly byKind = new Map<string, { n: number; example: string }>();
  constructor(private readonly seed: number) {}
  add(kind: string, example: string): void {
    const f = this.byKind.get(kind);
    if (f) f.n++; else this.byKind.set(kind, { n: 1, example });
  }
  get size(): number { return this.byKind.size; }
  kinds(): string[] { return [...this.byKind.keys()]; }
  report(): string {
    const lines = [`${this.byKind.size} distinct finding(s); replay with APB_FUZZ_SEED=${this.seed}`];
    let k = 0;
    for (const [kind, f] of this.byKind) lines.push(`\n#${++k} ${kind}  (×${f.n})\n${f.example}`);
    return lines.join('\n');
  }
}
