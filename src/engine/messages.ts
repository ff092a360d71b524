/**
 * The one translation between messages (controller wire, replay lines, HTTP
 * bodies, journal records) and core ops/results. Validation follows
 * PROTOCOL.md and SPEC 11-12; every problem is an ApbError whose message
 * names the field. Unknown extra fields are ignored in both modes (forward
 * compatibility: a newer controller may send more, and journal records may
 * carry who/why beside the op).
 */
import { ApbError } from '../errors.js';
import type { CompiledSite } from '../config/types.js';
import { MAX_STR_BYTES, MAX_U64, TWO_53, credToWire, parseCred, wellFormed } from './cred.js';
import { MAX_ID_BYTES } from '../limits.js';
import type { Cred } from './cred.js';
import type { CoreOp, CoreResult } from './types.js';
import { MAX_TIME } from './types.js';

export interface Decoded {
  t: string;
  /** null for ping */
  op: CoreOp | null;
  /** the message's ts (for offline: the event time, also op.ts) */
  ts?: number;
  id?: number | bigint;
}

export type DecodeMode = 'wire' | 'replay';

const WIRE_TYPES = new Set(['badge', 'passage', 'offline', 'ping']);
const REPLAY_TYPES = new Set(['badge', 'passage', 'offline', 'forgive', 'reset', 'resetArea', 'setLocation', 'exempt', 'supervisor', 'lockdown']);

function bad(message: string): never {
  throw new ApbError('bad_message', message);
}

/** id: unsigned integer up to 2^64-1 (a number when it is a safe integer, else a bigint) */
export function parseId(v: unknown): number | bigint {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    if (v === TWO_53) return 1n << 53n; // a uint64 2^53 decodes to this number; beyond 2^53-1 ids are bigint
    return bad('id: must be a non-negative integer up to 2^64-1');
  }
  if (typeof v === 'bigint') {
    if (v < 0n || v > MAX_U64) bad('id: must be a non-negative integer up to 2^64-1');
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  return bad(v === undefined ? 'id: missing' : 'id: must be a non-negative integer up to 2^64-1');
}

/** ts: integer milliseconds since the Unix epoch, 0..MAX_TIME */
export function parseTs(v: unknown): number {
  if (v === undefined) bad('ts: missing');
  const n = typeof v === 'bigint' && v >= 0n && v <= BigInt(MAX_TIME) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_TIME) bad(`ts: must be an integer number of milliseconds 0..${MAX_TIME}`);
  return n;
}

function field(msg: Record<string, unknown>, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(msg, name) ? msg[name] : undefined;
}

function cred(msg: Record<string, unknown>): Cred {
  const v = field(msg, 'cred');
  if (v === undefined) bad('cred: missing');
  return parseCred(v, 'cred');
}

function readerIndex(msg: Record<string, unknown>, site: CompiledSite): number {
  const v = field(msg, 'reader');
  if (v === undefined) bad('reader: missing');
  if (typeof v !== 'string') bad('reader: must be a string (the reader id)');
  checkReader(v);
  return site.readerIndex.get(v) ?? -1;
}

/** UTF-8 length of s, or more than `max` (exact up to max + 1) without encoding a long string. */
function utf8Over(s: string, max: number): boolean {
  if (s.length * 3 <= max) return false; // at most 3 bytes per UTF-16 unit
  if (s.length > max) return true;       // at least 1 byte per unit
  return Buffer.byteLength(s, 'utf8') > max;
}

/**
 * A reader id from outside: it is looked up, recorded and indexed (an LMDB
 * key), so it is bounded like every configured id and must have a UTF-8 form.
 */
export function checkReader(v: string): void {
  if (utf8Over(v, MAX_ID_BYTES)) bad(`reader: must be at most ${MAX_ID_BYTES} UTF-8 bytes (got ${v.length > 1 << 20 ? 'more than 1 MiB' : Buffer.byteLength(v, 'utf8')})`);
  if (!wellFormed(v)) bad('reader: not valid Unicode (a lone UTF-16 surrogate)');
}

/**
 * The bounded strings of a message, checked before anything else reads
 * them (the hub runs this ahead of the adapter and the id check, so even a
 * message refused for another reason never carries an unbounded reader or
 * credential into a record): bad_message naming the field.
 */
export function checkMessageStrings(msg: Record<string, unknown>, site: CompiledSite): void {
  const r = msg.reader;
  if (typeof r === 'string' && !site.readerIndex.has(r)) checkReader(r); // a configured id is bounded already
  const c = msg.cred;
  if (typeof c === 'string' && (c.length * 3 > MAX_STR_BYTES || !wellFormed(c))) parseCred(c, 'cred');
}

/**
 * s cut to at most `max` UTF-8 bytes (on a character boundary), with "…" when cut, and lone surrogates
 * (JSON's "\ud800" escapes) as U+FFFD: for keeping and logging text from outside. A journaled record
 * must read back as it was written, and MessagePack (UTF-8) cannot carry a lone surrogate.
 */
export function clipText(s: string, max: number): string {
  if (!wellFormed(s)) s = Buffer.from(s, 'utf8').toString('utf8');
  if (!utf8Over(s, max)) return s;
  const b = Buffer.from(s.slice(0, max), 'utf8'); // max units hold at least max bytes
  let end = max - 3; // room for the 3-byte ellipsis
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return b.toString('utf8', 0, end) + '…';
}

function bool(msg: Record<string, unknown>, name: string): boolean {
  const v = field(msg, name);
  if (v === undefined) bad(`${name}: missing`);
  if (typeof v !== 'boolean') bad(`${name}: must be a boolean`);
  return v;
}

function areaIndex(msg: Record<string, unknown>, site: CompiledSite): number {
  const v = field(msg, 'area');
  if (v === undefined) bad('area: missing');
  if (typeof v !== 'string') bad('area: must be a string (the area id)');
  const a = site.areaIndex.get(v);
  if (a === undefined) throw new ApbError('unknown_area', `area: unknown area "${v}"`);
  return a;
}

/** SPEC 13.1: an area index a lockdown may name; `outside` (0) is bad_message, since nothing enters it */
export function lockableArea(a: number): number {
  if (a === 0) bad('area: "outside" cannot be locked down (nothing enters it)');
  return a;
}

/**
 * Validates one message map and translates it into a core op. Wire mode:
 * badge/passage/offline/ping with a required `id` (ts optional except for
 * offline). Replay mode: the SPEC 11 lines, `ts` required, `id` optional,
 * ping is unknown_type. Unknown readers become reader -1 (a badge there is
 * decided deny `unknown_reader`; a passage/offline there changes nothing).
 */
export function decodeMessage(msg: Record<string, unknown>, site: CompiledSite, opts: { mode: DecodeMode }): Decoded {
  if (opts.mode === 'wire') {
    const d = decodeWireBadge(msg, site);
    if (d !== null) return d;
  }
  return decodeGeneral(msg, site, opts.mode);
}

/** decodeMessage without the wire-badge fast path (exported for the test that holds the two equal) */
export function decodeGeneral(msg: Record<string, unknown>, site: CompiledSite, mode: DecodeMode): Decoded {
  const t = field(msg, 't');
  if (typeof t !== 'string') bad(t === undefined ? 't: missing' : 't: must be a string');
  const types = mode === 'wire' ? WIRE_TYPES : REPLAY_TYPES;
  if (!types.has(t)) throw new ApbError('unknown_type', `t: unknown message type "${clipText(t, MAX_ID_BYTES)}"`);
  const out: Decoded = { t, op: null };
  const rawId = field(msg, 'id');
  if (mode === 'wire' || rawId !== undefined) out.id = parseId(rawId);
  const rawTs = field(msg, 'ts');
  if (mode === 'replay' || t === 'offline' || rawTs !== undefined) out.ts = parseTs(rawTs);
  switch (t) {
    case 'ping': break;
    case 'badge': out.op = { op: 'badge', cred: cred(msg), reader: readerIndex(msg, site) }; break;
    case 'passage': out.op = { op: 'passage', cred: cred(msg), reader: readerIndex(msg, site) }; break;
    case 'offline': out.op = { op: 'offline', cred: cred(msg), reader: readerIndex(msg, site), ts: out.ts!, granted: bool(msg, 'granted') }; break;
    case 'forgive': out.op = { op: 'forgive', cred: cred(msg) }; break;
    case 'reset': out.op = { op: 'reset', cred: cred(msg) }; break;
    case 'exempt': { const c = cred(msg); out.op = { op: 'exempt', cred: c, on: bool(msg, 'on') }; break; }
    case 'setLocation': { const c = cred(msg); out.op = { op: 'setLocation', cred: c, area: areaIndex(msg, site) }; break; }
    case 'resetArea': out.op = { op: 'resetArea', area: areaIndex(msg, site) }; break;
    case 'supervisor': { const c = cred(msg); out.op = { op: 'supervisor', cred: c, on: bool(msg, 'on') }; break; }
    case 'lockdown': out.op = { op: 'lockdown', area: lockableArea(areaIndex(msg, site)), on: bool(msg, 'on') }; break;
  }
  return out;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The fast path for the commonest wire message: a badge whose id, ts (if
 * any), cred and reader are all well-formed, with an integer or string
 * credential. Returns exactly what the general path returns for it, or null
 * for anything else (the general path then decides, errors included, so
 * their order and wording stay those of the general path).
 */
function decodeWireBadge(msg: Record<string, unknown>, site: CompiledSite): Decoded | null {
  if (msg.t !== 'badge' || !hasOwn.call(msg, 't')) return null;
  const id = msg.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || !hasOwn.call(msg, 'id')) return null;
  const ts = msg.ts;
  if (ts !== undefined && (typeof ts !== 'number' || !Number.isInteger(ts) || ts < 0 || ts > MAX_TIME || !hasOwn.call(msg, 'ts'))) return null;
  const v = msg.cred;
  if (!hasOwn.call(msg, 'cred')) return null;
  let c: Cred;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) c = { kind: 'int', value: BigInt(v) };
  else if (typeof v === 'string') c = parseCred(v, 'cred'); // its errors come next in the general order too
  else return null;
  const r = msg.reader;
  if (typeof r !== 'string' || !hasOwn.call(msg, 'reader')) return null;
  let ri = site.readerIndex.get(r);
  if (ri === undefined) {
    if (utf8Over(r, MAX_ID_BYTES) || !wellFormed(r)) return null; // the general path names the problem
    ri = -1;
  }
  const op: CoreOp = { op: 'badge', cred: c, reader: ri };
  return ts === undefined ? { t: 'badge', op, id } : { t: 'badge', op, id, ts };
}

/** decisions without violations share this (frozen) array */
const NO_VIOLATIONS: readonly unknown[] = Object.freeze([]);

/** The reply map (without id) for a core result: a decision for a badge, an ack for everything else. */
export function encodeResult(result: CoreResult, site: CompiledSite): Record<string, unknown> {
  if (result.op !== 'badge') return { t: 'ack' };
  const vs = result.violations;
  let violations: readonly unknown[] = NO_VIOLATIONS;
  if (vs.length !== 0) {
    const out: unknown[] = new Array(vs.length);
    for (let i = 0; i < vs.length; i++) {
      const v = vs[i]!;
      out[i] = { code: v.code, mode: v.mode, area: v.area >= 0 ? site.areaIds[v.area] ?? null : null };
    }
    violations = out;
  }
  if (result.grant) return { t: 'decision', grant: true, reason: result.reason, violations, area: site.areaIds[result.area] };
  return { t: 'decision', grant: false, reason: result.reason, violations };
}

/**
 * A replay-input object (SPEC 11) for an op applied at clock `ts`; readers
 * and areas by id, the credential in its wire form (bigint above 2^53,
 * Uint8Array for binary: stringifyReplay writes those as digits / {"hex"}).
 * An offline op carries its own event time. An unknown reader (-1) is
 * written as "" (such ops change no state). This is also the journal form.
 */
export function toReplayObject(op: CoreOp, site: CompiledSite, ts: number): Record<string, unknown> {
  const reader = (r: number): string => (r >= 0 ? site.readerIds[r] ?? '' : '');
  switch (op.op) {
    case 'badge': case 'passage': return { t: op.op, cred: credToWire(op.cred), reader: reader(op.reader), ts };
    case 'offline': return { t: 'offline', cred: credToWire(op.cred), reader: reader(op.reader), ts: op.ts, granted: op.granted };
    case 'forgive': case 'reset': return { t: op.op, cred: credToWire(op.cred), ts };
    case 'exempt': return { t: 'exempt', cred: credToWire(op.cred), on: op.on, ts };
    case 'setLocation': return { t: 'setLocation', cred: credToWire(op.cred), area: site.areaIds[op.area], ts };
    case 'resetArea': return { t: 'resetArea', area: site.areaIds[op.area], ts };
    case 'supervisor': return { t: 'supervisor', cred: credToWire(op.cred), on: op.on, ts };
    case 'lockdown': return { t: 'lockdown', area: site.areaIds[op.area], on: op.on, ts };
  }
}

// ---------- bigint- and binary-safe JSON lines ----------

/** integer literals longer than this many digits may exceed 2^53 and take the exact path */
const LONG_INT = /\d{16,}/;

/**
 * Parses one replay line. Integer literals beyond 2^53 become bigint (exact);
 * a top-level field whose value is {"hex":"…"} becomes a Uint8Array (binary
 * credentials). Not JSON or not an object: bad_frame. Bad hex: bad_message.
 */
export function parseReplayLine(line: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = LONG_INT.test(line) ? new ExactJson(line).document() : JSON.parse(line);
  } catch (e) {
    throw new ApbError('bad_frame', `not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApbError('bad_frame', 'a replay line must be a JSON object');
  const obj = v as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    const x = obj[k];
    if (x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Uint8Array)) {
      const keys = Object.keys(x);
      if (keys.length === 1 && keys[0] === 'hex') {
        const hex = (x as { hex: unknown }).hex;
        if (typeof hex !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(hex)) bad(`${k}: "hex" must be an even number of hex digits`);
        obj[k] = Uint8Array.from(Buffer.from(hex, 'hex'));
      }
    }
  }
  return obj;
}

/** The inverse of parseReplayLine: bigint as digits, Uint8Array as {"hex":"…"}. */
export function stringifyReplay(obj: unknown): string {
  if (typeof obj === 'bigint') return obj.toString(10);
  if (obj instanceof Uint8Array) return `{"hex":"${Buffer.from(obj).toString('hex')}"}`;
  if (Array.isArray(obj)) return '[' + obj.map((x) => (x === undefined ? 'null' : stringifyReplay(x))).join(',') + ']';
  if (obj !== null && typeof obj === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(obj)) if (x !== undefined) parts.push(JSON.stringify(k) + ':' + stringifyReplay(x));
    return '{' + parts.join(',') + '}';
  }
  return JSON.stringify(obj) ?? 'null';
}

/** A small strict JSON parser (RFC 8259) that keeps integers beyond 2^53 exact as bigint. */
class ExactJson {
  private i = 0;
  constructor(private readonly s: string) {}

  document(): unknown {
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) this.fail('unexpected data after the value');
    return v;
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.i}`);
  }

  private ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  private value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, val] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.s.startsWith(word, this.i)) { this.i += word.length; return val; }
    }
    return this.fail('unexpected token');
  }

  private object(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') { this.i++; return out; }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const k = this.string();
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      Object.defineProperty(out, k, { value: this.value(), enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') this.fail('expected "," or "}"');
    }
  }

  private array(): unknown[] {
    const out: unknown[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') { this.i++; return out; }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }

  private string(): string {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(this.s.slice(this.i));
    if (!m) return this.fail('bad string');
    this.i += m[0].length;
    return JSON.parse(m[0]) as string;
  }

  private number(): number | bigint {
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i));
    if (!m) return this.fail('bad number');
    this.i += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
    return n;
  }
}
