/**
 * Fuzzing the real server (issue 10 "Done when"): `apb serve` runs as a
 * child process on an LMDB data directory in a temp folder, with two native
 * controllers, a `protocol: wiegand` and a `protocol: osdp` bridge. Seeded
 * streams send valid messages, structurally mutated ones (wrong types, huge
 * and invalid strings, ids at 2^53 / 2^64 / negative, replay-only types,
 * junk, deep nesting), byte-mutated frames and junk frames, single and
 * batched, over the controller WebSocket (MessagePack) and POST /v1/decide
 * (JSON and MessagePack), all at once. Checked:
 *  - every frame gets exactly one reply frame of the right shape (an array
 *    of the same length for a batch): a decision/ack/pong of the message's
 *    id or a precise error (a known code, never `internal`, never a 500),
 *    and what the issue fixes for specific inputs (e.g. a lone surrogate or
 *    invalid UTF-8 credential or a several-KB reader is `bad_message`);
 *  - replies are plain MessagePack (no floats, no extensions, UTF-8);
 *  - the server never exits by itself and logs no error;
 *  - graceful restart (SIGTERM), snapshots deleted so the whole journal is
 *    replayed: every credential the run used and the occupancy of every
 *    area come back exactly as memory held them;
 *  - SIGKILL while a controller streams: after the restart (snapshots
 *    deleted) the rest of the state is unchanged, every acknowledged grant
 *    is in effect, and resent acknowledged ids get the same reply bytes.
 *
 * APB_FUZZ_SEED=n replays a run (the seed is printed and in every failure;
 * the default is fixed, APB_FUZZ_SEED=random draws one);
 * APB_FUZZ_ROUNDS=k multiplies the number of frames; APB_FUZZ_SKIP=a,b
 * leaves out mutation kinds (e.g. `reader.huge,cred` while one is open).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { encode, decodeStrict, frameShape } from './fuzz/mp.js';
import { Rng, validMsg, mutatedMsg, mutateBytes, junkFrame, jsonBytes, show, hex, type Ctl, type Msg, type Enc, type GenOptions } from './fuzz/gen.js';
import { Findings, replyProblem, httpErrorProblem, parseJsonExact, isMap, containsExt, type Problem } from './fuzz/check.js';
import { ServerProc, killAll } from './fuzz/proc.js';

// a fixed default keeps `npm test` reproducible; APB_FUZZ_SEED=random explores a new stream each run
const SEED = process.env.APB_FUZZ_SEED === 'random' ? (Date.now() ^ (process.pid * 7919)) >>> 0
  : process.env.APB_FUZZ_SEED ? Number(process.env.APB_FUZZ_SEED) >>> 0 : 20261207;
const ROUNDS = Math.max(0.05, Number(process.env.APB_FUZZ_ROUNDS ?? 1));
const GEN: GenOptions = { skip: new Set((process.env.APB_FUZZ_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean)) };
const WS_FRAMES = Math.round(420 * ROUNDS);   // per controller and phase A (phase B: half)
const HTTP_REQS = Math.round(140 * ROUNDS);
const REPLY_TIMEOUT_MS = 15_000;

// tokens of at least 16 characters (issue 10 item 17)
const TOK = {
  n1: 'fuzz-native-one-0123456789', n2: 'fuzz-native-two-0123456789', wb: 'fuzz-wiegand-bridge-0123456789',
  ob: 'fuzz-osdp-bridge-0123456789', kill: 'fuzz-kill-round-0123456789', viewer: 'fuzz-viewer-token-0123456789',
};
const SITE = `site: fuzz
timezone: UTC
areas:
  - { id: hall, entry: hard, exit: soft }
  - { id: lab, parent: hall, entry: hard, exit: hard, strict: true, maxOccupancy: 4 }
  - { id: gallery, parent: hall, entry: hard, commitOn: passage, passageTimeout: 3600 }
readers:
  - { id: n1-in, from: outside, to: hall, controller: n1 }
  - { id: n1-out, from: hall, to: outside, controller: n1 }
  - { id: n1-lab-in, from: hall, to: lab, controller: n1, reuseLockout: 5 }
  - { id: n1-lab-out, from: lab, to: hall, controller: n1 }
  - { id: n2-in, from: outside, to: hall, controller: n2 }
  - { id: n2-gal-in, from: hall, to: gallery, controller: n2 }
  - { id: n2-gal-out, from: gallery, to: hall, controller: n2 }
  - { id: w-in, from: outside, to: hall, controller: wb }
  - { id: w-out, from: hall, to: outside, controller: wb }
  - { id: o-in, from: outside, to: hall, controller: ob, osdp: { address: 5, reader: 0 } }
  - { id: o-out, from: hall, to: outside, controller: ob, osdp: { address: 5, reader: 1 } }
  - { id: k-in, from: outside, to: hall, controller: kill }
controllers:
  - { id: n1, token: ${TOK.n1}, rateLimit: 1000000 }
  - { id: n2, token: ${TOK.n2}, rateLimit: 1000000 }
  - { id: wb, token: ${TOK.wb}, protocol: wiegand, rateLimit: 1000000 }
  - { id: ob, token: ${TOK.ob}, protocol: osdp, rateLimit: 1000000 }
  - { id: kill, token: ${TOK.kill}, rateLimit: 1000000 }
users:
  - { name: fuzz-viewer, token: ${TOK.viewer}, role: viewer }
`;
const CTLS: Ctl[] = [
  { id: 'n1', token: TOK.n1, protocol: 'native', readers: ['n1-in', 'n1-out', 'n1-lab-in', 'n1-lab-out'], foreign: ['n2-in', 'w-in', 'o-in', 'k-in'] },
  { id: 'n2', token: TOK.n2, protocol: 'native', readers: ['n2-in', 'n2-gal-in', 'n2-gal-out'], foreign: ['n1-in', 'w-out', 'o-out'] },
  { id: 'wb', token: TOK.wb, protocol: 'wiegand', readers: ['w-in', 'w-out'], foreign: ['n1-in', 'o-in'] },
  { id: 'ob', token: TOK.ob, protocol: 'osdp', readers: ['o-in', 'o-out'], foreign: ['n2-in', 'w-in'] },
];

const dirs: string[] = [];
after(() => { killAll(); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** One WebSocket, one frame in flight: a reply belongs to the frame just sent; a reply nobody waits for is a finding. */
class WsClient {
  private waiter: ((r: WsResult) => void) | null = null;
  readonly extra: Buffer[] = [];
  closeCode: number | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => { const w = this.waiter; this.waiter = null; if (w) w({ data: d }); else this.extra.push(d); });
    ws.on('close', (code: number) => { this.closeCode = code; const w = this.waiter; this.waiter = null; w?.({ closed: code }); });
    ws.on('error', () => undefined);
  }
  static connect(url: string, token: string): Promise<WsClient> {
    const ws = new WebSocket(url + '/v1/controller', { headers: { authorization: `Bearer ${token}` }, maxPayload: 64 << 20 });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsClient(ws)));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }
  request(bytes: Uint8Array, ms = REPLY_TIMEOUT_MS): Promise<WsResult> {
    if (this.closeCode !== null) return Promise.resolve({ closed: this.closeCode });
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waiter = null; resolve({ timeout: true }); }, ms);
      this.waiter = (r) => { clearTimeout(t); resolve(r); };
      this.ws.send(bytes, { binary: true });
    });
  }
  close(): void { try { this.ws.terminate(); } catch { /* closed */ } }
}
type WsResult = { data?: Buffer; closed?: number; timeout?: true };

interface Frame {
  bytes: Uint8Array;
  /** the messages, when the frame is exactly their encoding (single or batch) */
  msgs?: Msg[];
  batch: boolean;
  tag: string;
  /** the bytes of an earlier reply this resend must repeat */
  sameAs?: Buffer;
  enc: Enc;
  contentType?: string;
}

/** Run-wide context: findings, the current server, the credentials to compare, recent frames (for a crash report). */
interface Run {
  findings: Findings;
  server: ServerProc;
  phase: string;
  creds: Set<string>;
  recent: string[];
  dead: boolean;
  /** per controller: acknowledged single-message WebSocket frames and their reply bytes */
  acked: Map<string, { bytes: Uint8Array; reply: Buffer }[]>;
}

function noteSent(run: Run, line: string): void {
  run.recent.push(line);
  if (run.recent.length > 12) run.recent.shift();
}

function checkAlive(run: Run): boolean {
  if (run.dead) return false;
  const ex = run.server.unexpectedExit();
  if (ex) {
    run.dead = true;
    run.findings.add(`server process exited during ${run.phase}`, `${ex}\nlast frames sent (newest last):\n${run.recent.join('\n')}`);
    return false;
  }
  return true;
}

function example(run: Run, transport: string, ctl: Ctl, f: Frame, reply: string, p?: Problem): string {
  const what = f.msgs ? (f.batch ? `batch of ${f.msgs.length}: ${show(f.msgs.map((m) => m.value), 600)}` : show(f.msgs[0]!.value, 600)) : '(see bytes)';
  return [
    `seed ${SEED}, ${run.phase}, ${transport}, controller ${ctl.id} (${ctl.protocol}), frame ${f.tag}`,
    `  frame: ${what}`,
    `  bytes: ${f.enc === 'json' ? JSON.stringify(Buffer.from(f.bytes.subarray(0, 400)).toString('latin1')) + (f.bytes.length > 400 ? `…(${f.bytes.length} bytes)` : '') : hex(f.bytes)}`,
    `  reply: ${reply}`,
    p?.detail ? `  detail: ${p.detail}` : '',
  ].filter(Boolean).join('\n');
}

/** ids: valid streams use [base, base + 1e6); byte-mutated frames use ids above 2^60 so a flipped bit cannot land on a future valid id */
function idSource(base: number): () => number { let n = base; return () => n++; }
const wildId = (r: Rng): bigint => (1n << 60n) + BigInt(r.int(0, 2 ** 30)) * 65536n + BigInt(r.int(0, 65535));

function msgFor(r: Rng, ctl: Ctl, id: number, enc: Enc): Msg {
  return r.chance(0.5) ? validMsg(r, ctl, id) : mutatedMsg(r, ctl, id, enc, GEN);
}

function makeFrame(r: Rng, ctl: Ctl, nextId: () => number, enc: Enc, acked: { bytes: Uint8Array; reply: Buffer }[] | null): Frame {
  const x = r.next();
  const pack = (v: unknown): Uint8Array => (enc === 'json' ? jsonBytes(v) : encode(v));
  if (x < 0.45) { const m = msgFor(r, ctl, nextId(), enc); return { bytes: pack(m.value), msgs: [m], batch: false, tag: m.tag, enc }; }
  if (x < 0.68) {
    const msgs = Array.from({ length: r.int(0, 24) }, () => msgFor(r, ctl, nextId(), enc));
    return { bytes: pack(msgs.map((m) => m.value)), msgs, batch: true, tag: `batch(${msgs.map((m) => m.tag).join(',')})`.slice(0, 300), enc };
  }
  if (x < 0.86) {
    const base = Array.from({ length: r.chance(0.6) ? 1 : r.int(2, 6) }, () => {
      const m = validMsg(r, ctl, 0);
      (m.value as Record<string, unknown>).id = wildId(r);
      return m.value;
    });
    const v = base.length === 1 && r.chance(0.7) ? base[0] : base;
    const { bytes, how } = mutateBytes(r, pack(v));
    return { bytes, batch: false, tag: `bytes(${Array.isArray(v) ? 'batch' : 'single'}: ${how.join('; ')})`, enc };
  }
  if (x < 0.92) {
    if (enc === 'json') {
      const j = r.pick(['', '{', '[]', 'null', '"badge"', '1e999', '{"t":"badge","id":1,}', '[['.repeat(60_000), '{"t":"ping","id":9007199254740993}', '\ufeff{"t":"ping","id":1}']);
      return { bytes: Buffer.from(j), batch: false, tag: `junk.json(${j.slice(0, 24)})`, enc };
    }
    const j = junkFrame(r);
    return { bytes: j.bytes, batch: false, tag: j.tag, enc };
  }
  if (x < 0.95 && acked && acked.length) {
    const a = r.pick(acked);
    return { bytes: a.bytes, batch: false, tag: 'resend of an acknowledged frame', sameAs: a.reply, enc };
  }
  const m = validMsg(r, ctl, nextId());
  return { bytes: pack(m.value), msgs: [m], batch: false, tag: m.tag, enc };
}

/** Checks one WebSocket reply frame against its frame; returns the problems found. */
function judgeWs(f: Frame, data: Buffer): { problem: Problem; shown: string } | null {
  let value: unknown;
  try {
    const d = decodeStrict(data);
    if (d.problems.length) return { problem: { kind: `reply is not plain MessagePack (${d.problems[0]!.replace(/ at byte \d+/, '')})` }, shown: hex(data) };
    value = d.value;
  } catch (e) { return { problem: { kind: 'reply is not MessagePack', detail: (e as Error).message }, shown: hex(data) }; }
  const shown = show(value, 500);
  if (f.sameAs) return Buffer.compare(f.sameAs, data) === 0 ? null : { problem: { kind: 'a resent acknowledged id got different reply bytes', detail: `first ${hex(f.sameAs)}` }, shown: hex(data) };
  const frameError = (rep: unknown): Problem | undefined => {
    const p = replyProblem(rep, undefined, false);
    if (p) return p;
    return isMap(rep) && rep.t === 'error' ? undefined : { kind: 'a frame-level reply that is not an error' };
  };
  if (f.msgs) {
    if (!f.batch) { const p = replyProblem(value, f.msgs[0], true); return p ? { problem: p, shown } : null; }
    if (!Array.isArray(value)) {
      const p = frameError(value);
      if (p) return { problem: p, shown };
      const code = (value as { code: string }).code;
      if (code === 'bad_frame' && f.msgs.some((m) => containsExt(m.value))) return null; // an extension type: not plain MessagePack
      return { problem: { kind: `a batch was answered by one error map (${code})`, detail: shown }, shown };
    }
    if (value.length !== f.msgs.length) return { problem: { kind: 'batch reply of another length (dropped or extra replies)', detail: `sent ${f.msgs.length}, got ${value.length}` }, shown };
    for (let i = 0; i < value.length; i++) {
      const p = replyProblem(value[i], f.msgs[i], true);
      if (p) return { problem: { kind: p.kind, detail: `in a batch, element ${i} (${f.msgs[i]!.tag}): ${show(f.msgs[i]!.value, 300)} -> ${show(value[i], 300)}${p.detail ? '; ' + p.detail : ''}` }, shown };
    }
    return null;
  }
  // bytes or junk: the shape must follow from what a conforming decoder reads
  const shape = frameShape(f.bytes);
  if (Array.isArray(value)) {
    if (shape.kind !== 'array' || shape.length !== value.length) return { problem: { kind: 'array reply to a frame that is not an array of that length', detail: JSON.stringify(shape) }, shown };
    for (const el of value) { const p = replyProblem(el, undefined, true); if (p) return { problem: p, shown }; }
    return null;
  }
  const p = replyProblem(value, undefined, true);
  if (p) return { problem: p, shown };
  if (isMap(value) && value.t !== 'error' && shape.kind !== 'map') return { problem: { kind: `a ${String(value.t)} reply to a frame that is not one map`, detail: JSON.stringify(shape) }, shown };
  return null;
}

async function wsStream(run: Run, ctl: Ctl, r: Rng, frames: number, nextId: () => number): Promise<void> {
  let client: WsClient | null = null;
  const acked = run.acked.get(ctl.id)!;
  for (let i = 0; i < frames && checkAlive(run); i++) {
    if (!client) {
      try { client = await WsClient.connect(run.server.ws, ctl.token); } catch (e) {
        if (checkAlive(run)) run.findings.add(`WebSocket connect failed during ${run.phase}`, `${ctl.id}: ${(e as Error).message}`);
        return;
      }
    }
    const f = makeFrame(r, ctl, nextId, 'msgpack', acked);
    noteSent(run, `ws ${ctl.id} ${f.tag}: ${hex(f.bytes, 80)}`);
    const res = await client.request(f.bytes);
    for (const m of f.msgs ?? []) if (m.credPath) run.creds.add(m.credPath);
    if (res.data) {
      const bad = judgeWs(f, res.data);
      if (bad) run.findings.add(`ws ${ctl.protocol}${f.msgs ? '' : ' ' + f.tag.replace(/[:(].*/, '')}: ${bad.problem.kind}`, example(run, 'WebSocket', ctl, f, bad.shown, bad.problem));
      else if (f.msgs && !f.batch && !f.sameAs && f.msgs[0]!.tag.startsWith('valid.') && acked.length < 200) {
        const rep = decodeStrict(res.data).value as Record<string, unknown>;
        if (rep.t !== 'error' && rep.t !== 'pong') acked.push({ bytes: f.bytes, reply: res.data });
      }
      if (client.extra.length) {
        run.findings.add(`ws ${ctl.protocol}: more than one reply frame for one frame`, example(run, 'WebSocket', ctl, f, hex(client.extra[0]!)));
        client.extra.length = 0;
      }
    } else {
      if (!checkAlive(run)) return;
      const why = res.timeout ? `no reply within ${REPLY_TIMEOUT_MS} ms (dropped frame)` : `socket closed (code ${res.closed}) instead of a reply`;
      run.findings.add(`ws ${ctl.protocol} ${f.tag.replace(/[:(].*/, '')}: ${why}`, example(run, 'WebSocket', ctl, f, why));
      client.close();
      client = null;
    }
  }
  client?.close();
}

async function httpStream(run: Run, ctl: Ctl, r: Rng, n: number, nextId: () => number): Promise<void> {
  for (let i = 0; i < n && checkAlive(run); i++) {
    const enc: Enc = r.chance(0.6) ? 'json' : 'msgpack';
    let f: Frame = makeFrame(r, ctl, nextId, enc, null);
    let ctype = enc === 'json' ? 'application/json' : 'application/msgpack';
    if (r.chance(0.05)) {
      ctype = r.pick(['', 'text/plain', enc === 'json' ? 'application/msgpack' : 'application/json', 'application/json; charset=latin1']);
      f = { ...f, tag: `${f.tag} [content-type "${ctype}"]` };
      // the server reads MessagePack only when the content-type says so; read in another encoding: no expectation
      if (ctype.includes('application/msgpack') !== (enc === 'msgpack')) f.msgs = undefined;
    }
    f.contentType = ctype;
    noteSent(run, `http ${ctl.id} ${f.tag}: ${hex(f.bytes, 80)}`);
    const headers: Record<string, string> = { authorization: `Bearer ${ctl.token}` };
    if (ctype) headers['content-type'] = ctype;
    let status = 0; let type = ''; let buf: Buffer;
    try {
      const res = await fetch(run.server.url + '/v1/decide', { method: 'POST', headers, body: f.bytes as unknown as string, signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
      status = res.status; type = res.headers.get('content-type') ?? '';
      buf = Buffer.from(await res.arrayBuffer());
    } catch (e) {
      if (!checkAlive(run)) return;
      run.findings.add(`http ${ctl.protocol} ${f.tag.replace(/[:(].*/, '')}: no HTTP response`, example(run, 'POST /v1/decide', ctl, f, (e as Error).message));
      continue;
    }
    for (const m of f.msgs ?? []) if (m.credPath) run.creds.add(m.credPath);
    let body: unknown;
    let p: Problem | undefined;
    try {
      if (type.includes('msgpack')) {
        const d = decodeStrict(buf);
        if (d.problems.length) p = { kind: `HTTP reply is not plain MessagePack (${d.problems[0]!.replace(/ at byte \d+/, '')})` };
        body = d.value;
      } else if (type.includes('json')) body = parseJsonExact(buf.toString('utf8'));
      else p = { kind: `HTTP ${status} with content-type "${type}"` };
    } catch (e) { p = { kind: `HTTP ${status} body does not decode as ${type}`, detail: (e as Error).message }; }
    const shown = `HTTP ${status} ${show(body ?? buf.toString('utf8', 0, 200), 500)}`;
    if (!p) {
      if (status === 200) {
        if (f.batch && f.msgs) p = { kind: 'an array body was decided (POST /v1/decide takes one map)' };
        else p = replyProblem(body, f.msgs?.[0], false);
        if (!p && isMap(body) && body.t === 'error') p = { kind: 'HTTP 200 with an error body' };
      } else {
        p = httpErrorProblem(status, body);
        if (!p && f.msgs && !f.batch) p = replyProblem({ t: 'error', ...(body as object) }, f.msgs[0], false);
      }
    }
    if (p) run.findings.add(`http ${ctl.protocol} ${enc}${f.msgs ? '' : ' ' + f.tag.replace(/[:( ].*/, '')}: ${p.kind}`, example(run, `POST /v1/decide (${enc})`, ctl, f, shown, p));
  }
}

/** A GET answered in MessagePack must be plain MessagePack too: no float for an integer such as `at` (issue item 7). */
async function msgpackRead(run: Run, r: Rng): Promise<void> {
  const creds = [...run.creds];
  const path = r.pick([
    '/v1/areas', '/v1/events?limit=20', '/v1/controllers', '/v1/whoami',
    creds.length ? `/v1/credentials/${r.pick(creds)}` : '/v1/credentials/1000',
  ]);
  let status = 0; let buf = Buffer.alloc(0); let type = '';
  try {
    const res = await fetch(run.server.url + path, { headers: { authorization: `Bearer ${TOK.viewer}`, accept: 'application/msgpack' }, signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
    status = res.status; type = res.headers.get('content-type') ?? ''; buf = Buffer.from(await res.arrayBuffer());
  } catch (e) { if (checkAlive(run)) run.findings.add('GET (msgpack): no HTTP response', `GET ${path}: ${(e as Error).message}`); return; }
  if (!type.includes('msgpack')) { run.findings.add(`GET ${path.replace(/\?.*|\/[^/]*$/, '')} with accept: application/msgpack answered ${type}`, `HTTP ${status}`); return; }
  try {
    const d = decodeStrict(buf);
    if (d.problems.length) run.findings.add(`GET ${path.replace(/\?.*/, '').replace(/credentials\/.*/, 'credentials/:cred')} (msgpack): not plain MessagePack (${d.problems[0]!.replace(/ at byte \d+/, '')}) [issue item 7]`, `GET ${path}: HTTP ${status} ${hex(buf, 200)}\n  decoded: ${show(d.value, 400)}`);
  } catch (e) { run.findings.add(`GET ${path.replace(/\?.*/, '')} (msgpack): reply does not decode`, `${(e as Error).message}: ${hex(buf, 200)}`); }
}

/** Read-only API with hostile paths and query parameters (viewer token): never a 500, always a precise error. */
async function readStream(run: Run, r: Rng, n: number): Promise<void> {
  const junkText = (): string => r.chance(0.3) ? r.pick(['r', 's:r', 'x:ab']) + 'ab'.repeat(r.int(40, 2500)) : r.pick([
    '', '%', '%E0%A4%A', '%ff', '%ED%A0%80', '%00', 'a'.repeat(r.int(65, 4000)), '\u00e9'.repeat(40), '-1', '1.5', '1e9', '99999999999999999999999',
    '18446744073709551616', 'null', '__proto__', 'constructor', '..%2F..%2Fetc', 's:%ff', 's:' + 'a'.repeat(r.int(60, 3000)), 'x:zz', 'x:' + 'ab'.repeat(r.int(1, 600)),
    's:%ED%A0%80x1', 'x:', 's:', '2026-13-45T99:99:99Z', String(2 ** 60), encodeURIComponent('\u{1F600}'.repeat(20)),
  ]);
  for (let i = 0; i < n && checkAlive(run); i++) {
    if (r.chance(0.15)) { await msgpackRead(run, r); continue; }
    let path: string;
    const k = r.int(0, 3);
    if (k === 0) path = `/v1/credentials/${junkText()}`;
    else if (k === 1) {
      const params = Array.from({ length: r.int(1, 4) }, () => `${r.pick(['cred', 'reader', 'since', 'until', 'cursor', 'limit', 'controller', 'q', 'x'])}=${junkText()}`);
      path = `/v1/events?${params.join('&')}`;
    } else if (k === 2) path = `/v1/areas/${junkText()}/credentials?q=${junkText()}&limit=${junkText()}&cursor=${junkText()}`;
    else path = `/v1/credentials/${r.pick(['s:', 'x:', ''])}${junkText()}/${r.pick(['forgive', 'reset', 'x'])}`;
    noteSent(run, `GET ${path.slice(0, 200)}`);
    let status = 0; let text = '';
    try {
      const res = await fetch(run.server.url + path, { headers: { authorization: `Bearer ${TOK.viewer}` }, signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
      status = res.status; text = await res.text();
    } catch (e) {
      if (!checkAlive(run)) return;
      run.findings.add(`GET with hostile parameters: no HTTP response`, `GET ${path.slice(0, 300)}: ${(e as Error).message}`);
      continue;
    }
    if (status === 200) continue;
    let body: unknown;
    try { body = JSON.parse(text); } catch { body = text.slice(0, 200); }
    const p = httpErrorProblem(status, body);
    if (p) run.findings.add(`GET ${path.replace(/\?.*/, '').split('/').slice(0, 3).join('/')} with hostile parameters: ${p.kind}`, `seed ${SEED}: GET ${path.slice(0, 300)}${path.length > 300 ? `…(${path.length} chars)` : ''}\n  -> HTTP ${status} ${text.slice(0, 300)}`);
  }
}

/** The state a restart must reproduce: occupancy of every area and every credential the run touched. */
interface State { areas: unknown; creds: Map<string, string> }

async function getJson(url: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { headers: { authorization: `Bearer ${TOK.viewer}` } });
  return { status: r.status, text: await r.text() };
}

async function capture(server: ServerProc, creds: Iterable<string>): Promise<State> {
  const a = await getJson(`${server.url}/v1/areas`);
  assert.equal(a.status, 200, `GET /v1/areas: ${a.text}`);
  const out = new Map<string, string>();
  const list = [...creds];
  for (let i = 0; i < list.length; i += 16) {
    await Promise.all(list.slice(i, i + 16).map(async (c) => {
      const g = await getJson(`${server.url}/v1/credentials/${c}`);
      out.set(c, g.status === 200 ? g.text : `HTTP ${g.status} ${g.text}`);
    }));
  }
  return { areas: JSON.parse(a.text), creds: out };
}

function diffState(a: State, b: State, skip: Set<string> = new Set()): string[] {
  const out: string[] = [];
  const areas = (s: State): Map<string, unknown> => new Map((s.areas as { id: string; occupancy: number }[]).map((x) => [x.id, x.occupancy]));
  const aa = areas(a), ba = areas(b);
  for (const [id, occ] of aa) if (!skip.has(`area:${id}`) && ba.get(id) !== occ) out.push(`area ${id}: occupancy ${String(occ)} before, ${String(ba.get(id))} after`);
  for (const [c, s] of a.creds) if (!skip.has(c) && b.creds.get(c) !== s) out.push(`credential ${c}:\n    before ${s}\n    after  ${b.creds.get(c)}`);
  return out;
}

function dropSnapshots(data: string): number {
  const dir = join(data, 'snapshots');
  if (!existsSync(dir)) return 0;
  const files = readdirSync(dir);
  for (const f of files) rmSync(join(dir, f), { force: true, recursive: true });
  return files.length;
}

async function phase(run: Run, name: string, scale: number, idBase: number): Promise<void> {
  run.phase = name;
  const streams: Promise<void>[] = [];
  CTLS.forEach((ctl, k) => {
    streams.push(wsStream(run, ctl, new Rng(SEED ^ (idBase + k * 101)), Math.round(WS_FRAMES * scale), idSource(idBase + k * 1_000_000)));
    streams.push(httpStream(run, ctl, new Rng(SEED ^ (idBase + k * 101 + 53)), Math.round(HTTP_REQS * scale), idSource(idBase + k * 1_000_000 + 500_000)));
  });
  streams.push(readStream(run, new Rng(SEED ^ (idBase + 999)), Math.round(HTTP_REQS * scale)));
  await Promise.all(streams);
}

/** Frames at the limits (README "Controller protocol notes"): each must get its precise answer. */
async function limits(run: Run): Promise<void> {
  run.phase = 'limits';
  const ctl = CTLS[0]!;
  const c = await WsClient.connect(run.server.ws, ctl.token);
  const expectError = async (what: string, bytes: Uint8Array, code: string): Promise<void> => {
    const res = await c.request(bytes);
    const rep = res.data ? decodeStrict(res.data).value : undefined;
    if (!isMap(rep) || rep.t !== 'error' || rep.code !== code) run.findings.add(`limits: ${what} not answered ${code}`, `seed ${SEED}; got ${res.data ? show(rep) : JSON.stringify(res)}`);
  };
  await expectError('a batch of 4097 messages', encode(Array.from({ length: 4097 }, (_, i) => ({ t: 'ping', id: 90_000_000 + i }))), 'too_large');
  await expectError('a 1.1 MiB frame', encode({ t: 'ping', id: 1, pad: 'p'.repeat(1_150_000) }), 'too_large');
  const full = await c.request(encode(Array.from({ length: 4096 }, (_, i) => ({ t: 'ping', id: 90_000_000 + i }))));
  const pongs = full.data ? decodeStrict(full.data).value : undefined;
  const notPong = Array.isArray(pongs) ? pongs.findIndex((p) => !isMap(p) || p.t !== 'pong') : -2;
  if (!Array.isArray(pongs) || pongs.length !== 4096 || notPong >= 0) run.findings.add('limits: a batch of 4096 pings not answered by 4096 pongs', `seed ${SEED}; got ${Array.isArray(pongs) ? `${pongs.length} replies, #${notPong}: ${show(pongs[notPong])}` : show(pongs, 300)}`);
  c.close();
  // over the hard limit: uWS drops the connection without reading the frame and without a close
  // frame, so the client sees 1006 (README "Limits and hardening" says so); nothing is answered
  const big = await WsClient.connect(run.server.ws, ctl.token);
  const res = await big.request(new Uint8Array(4.5 * (1 << 20)).fill(0x41));
  if (res.closed !== 1006) run.findings.add('limits: a 4.5 MiB frame does not drop the connection (1006) as README states', `got ${JSON.stringify(res)}`);
  big.close();
  const post = (headers: Record<string, string>, body: Uint8Array | string): Promise<Response> => fetch(run.server.url + '/v1/decide', { method: 'POST', headers, body: body as unknown as string });
  const r413 = await post({ authorization: `Bearer ${ctl.token}`, 'content-type': 'application/json' }, JSON.stringify({ t: 'ping', id: 1, pad: 'p'.repeat(1_100_000) }));
  const b413 = await r413.text();
  if (r413.status !== 413 || !b413.includes('too_large')) run.findings.add('limits: a 1.1 MiB POST /v1/decide body not answered 413 too_large', `got ${r413.status} ${b413.slice(0, 200)}`);
  for (const [what, headers, want] of [
    ['no token', {}, [401]], ['a wrong token', { authorization: 'Bearer fuzz-not-a-token-000000' }, [401]], ['a viewer token', { authorization: `Bearer ${TOK.viewer}` }, [401, 403]],
  ] as const) {
    const rr = await post({ ...headers, 'content-type': 'application/json' }, JSON.stringify({ t: 'badge', id: 1, cred: 1, reader: 'n1-in' }));
    const text = await rr.text();
    if (!(want as readonly number[]).includes(rr.status)) run.findings.add(`limits: POST /v1/decide with ${what} answered ${rr.status}`, text.slice(0, 200));
  }
}

/** Resends acknowledged frames on fresh sockets: the reply bytes must be those of the first answer. */
async function resendAcked(run: Run, perCtl: number): Promise<number> {
  let n = 0;
  for (const ctl of CTLS) {
    const list = run.acked.get(ctl.id)!;
    if (!list.length) continue;
    const c = await WsClient.connect(run.server.ws, ctl.token);
    for (const a of list.slice(0, perCtl)) {
      const res = await c.request(a.bytes);
      n++;
      if (!res.data || Buffer.compare(res.data, a.reply) !== 0) {
        run.findings.add(`${run.phase}: a resent acknowledged id got a different reply`, `seed ${SEED}, ${ctl.id}: frame ${hex(a.bytes)}\n  first ${hex(a.reply)}\n  now   ${res.data ? hex(res.data) : JSON.stringify(res)}`);
      }
    }
    c.close();
  }
  return n;
}

function serverLogs(run: Run, server: ServerProc, name: string): void {
  const raw: string[] = [];
  for (const l of server.badLines) {
    if (l.startsWith('(not JSON) ')) { raw.push(l.slice(11)); continue; }
    let kind = l.slice(0, 120);
    try { const j = JSON.parse(l) as { msg?: string; err?: { message?: string } }; kind = `${j.msg ?? ''}${j.err?.message ? ': ' + j.err.message.slice(0, 80) : ''}`; } catch { /* cut */ }
    run.findings.add(`server logged an error (${name}): ${kind.replace(/\d{3,}/g, 'N')}`, l.slice(0, 1500));
  }
  // a stack trace or a library's raw output: one finding, the lines together
  if (raw.length) run.findings.add(`server wrote non-JSON lines to stderr (${name})`, raw.slice(0, 20).join('\n'));
}

/** A controller streaming fresh badges (one new credential each) in batches, a few frames always in flight; SIGKILLs the server after `killAfter` acknowledged badges. */
function killStream(run: Run, killAfter: number, r: Rng): Promise<Map<number, Fresh>> {
  const fresh = new Map<number, Fresh>();
  const ws = new WebSocket(run.server.ws + '/v1/controller', { headers: { authorization: `Bearer ${TOK.kill}` } });
  const inflight: number[][] = [];
  let cred = 7_000_000;
  let id = 1;
  let acked = 0;
  let killed = false;
  const sendOne = (): void => {
    const ids: number[] = [];
    const msgs = Array.from({ length: r.int(1, 8) }, () => { const c = cred++; ids.push(c); return { t: 'badge', id: id++, cred: c, reader: 'k-in' }; });
    msgs.forEach((m, k) => fresh.set(ids[k]!, { bytes: encode(m) }));
    inflight.push(ids);
    ws.send(encode(msgs), { binary: true });
  };
  return new Promise((resolve) => {
    ws.on('open', () => { for (let k = 0; k < 4; k++) sendOne(); });
    ws.on('message', (d: Buffer) => {
      const ids = inflight.shift()!;
      const reps = decodeStrict(d).value as Record<string, unknown>[];
      reps.forEach((rep, k) => { const f = fresh.get(ids[k]!)!; f.reply = Buffer.from(encode(rep)); f.grant = rep.grant === true; f.area = rep.area; });
      acked += reps.length;
      if (killed) return;
      if (acked >= killAfter) { killed = true; sendOne(); sendOne(); void run.server.stop('SIGKILL'); } else sendOne();
    });
    ws.on('error', () => undefined);
    ws.on('close', () => resolve(fresh));
  });
}
interface Fresh { bytes: Uint8Array; reply?: Buffer; grant?: boolean; area?: unknown }

describe('fuzz: apb serve on LMDB, WebSocket and HTTP, native and adapters', () => {
  it('never exits, answers every frame precisely, and memory equals the journal', { timeout: 120_000 + 90_000 * ROUNDS }, async (t) => {
    t.diagnostic(`APB_FUZZ_SEED=${SEED} APB_FUZZ_ROUNDS=${ROUNDS}${GEN.skip.size ? ' APB_FUZZ_SKIP=' + [...GEN.skip].join(',') : ''}`);
    const dir = mkdtempSync(join(tmpdir(), 'apb-fuzz-'));
    dirs.push(dir);
    const config = join(dir, 'site.yaml');
    const data = join(dir, 'data');
    writeFileSync(config, SITE);
    const findings = new Findings(SEED);
    const run: Run = { findings, server: await ServerProc.start(config, data), phase: 'phase A', creds: new Set(), recent: [], dead: false, acked: new Map(CTLS.map((c) => [c.id, []])) };
    const stages: string[] = [];
    const restart = async (what: string): Promise<boolean> => {
      dropSnapshots(data);
      try { run.server = await ServerProc.start(config, data); } catch (e) {
        findings.add(`the server does not start again on the data directory ${what} (crash loop?)`, (e as Error).message);
        return false;
      }
      run.dead = false;
      return true;
    };

    const scenario = async (): Promise<void> => {
      // ── phase A: fuzz, then the limits ──
      await phase(run, 'phase A', 1, 1_000_000);
      if (checkAlive(run)) await limits(run);
      stages.push(`phase A: ${WS_FRAMES * 4} WebSocket frames, ${HTTP_REQS * 4} HTTP requests, ${run.creds.size} credentials`);
      // give the background indexer a moment: a record it cannot index must not take the process down
      await new Promise((r) => setTimeout(r, 300));
      await getJson(`${run.server.url}/healthz`).catch(() => undefined);
      if (!checkAlive(run)) return;

      // ── graceful restart: memory before == replay of the whole journal after ──
      const s1 = await capture(run.server, run.creds);
      const e1 = await run.server.stop('SIGTERM');
      serverLogs(run, run.server, 'phase A');
      if (e1.code !== 0) findings.add('SIGTERM: exit code is not 0', `code ${e1.code}, signal ${e1.signal}\n${run.server.stderrTail()}`);
      if (!await restart('after phase A and SIGTERM')) return;
      const s2 = await capture(run.server, run.creds);
      const d12 = diffState(s1, s2);
      if (d12.length) findings.add('graceful restart, snapshots deleted: the state replayed from the journal differs from memory before the stop', `seed ${SEED}; ${d12.length} difference(s), first ones:\n  ${d12.slice(0, 12).join('\n  ')}`);
      run.phase = 'after graceful restart';
      const resent = await resendAcked(run, 15);
      stages.push(`graceful restart: ${s1.creds.size} credentials and ${(s1.areas as unknown[]).length} areas compared, ${resent} acknowledged frames resent`);

      // ── phase B, then SIGKILL while a controller streams ──
      await phase(run, 'phase B', 0.5, 20_000_000);
      if (!checkAlive(run)) return;
      const s3 = await capture(run.server, run.creds);
      run.phase = 'kill round';
      const kr = new Rng(SEED ^ 0x5eed);
      const killAfter = kr.int(40, 400);
      const fresh = await killStream(run, killAfter, kr);
      await run.server.stop('SIGKILL');
      serverLogs(run, run.server, 'phase B');
      if (!await restart('after SIGKILL')) return;
      const freshPaths = [...fresh.keys()].map(String);
      const s4 = await capture(run.server, [...run.creds, ...freshPaths]);
      // the fuzzed credentials were quiet during the kill round: unchanged; hall gained exactly the fresh credentials now inside
      const loc = (c: string): unknown => (JSON.parse(s4.creds.get(c)!) as { location: unknown }).location;
      const inHall = freshPaths.filter((c) => loc(c) === 'hall').length;
      const d34 = diffState(s3, s4, new Set(['area:hall', 'area:outside']));
      const occ = (s: State, id: string): number => (s.areas as { id: string; occupancy: number }[]).find((a) => a.id === id)!.occupancy;
      if (occ(s4, 'hall') !== occ(s3, 'hall') + inHall) d34.push(`area hall: occupancy ${occ(s3, 'hall')} before the kill round + ${inHall} fresh credentials inside != ${occ(s4, 'hall')} after`);
      let ackedGrants = 0;
      for (const [c, f] of fresh) {
        const at = loc(String(c));
        if (f.reply && f.grant) {
          ackedGrants++;
          if (at !== f.area) d34.push(`credential ${c}: granted and acknowledged into ${String(f.area)}, after the restart at ${String(at)}`);
        } else if (f.reply && at === 'hall') d34.push(`credential ${c}: denied (acknowledged), after the restart in hall`);
        else if (!f.reply && at !== 'hall' && at !== null && at !== undefined) d34.push(`credential ${c}: unacknowledged, after the restart at ${String(at)}`);
      }
      if (d34.length) findings.add('SIGKILL round, snapshots deleted: the recovered state is not the acknowledged state', `seed ${SEED}; killed after ${killAfter} acknowledged fresh badges; ${d34.length} difference(s), first ones:\n  ${d34.slice(0, 12).join('\n  ')}`);
      // resend acknowledged fresh badges: the stored reply, nothing decided again
      const rc = await WsClient.connect(run.server.ws, TOK.kill);
      let resentFresh = 0;
      for (const [c, f] of [...fresh].filter(([, x]) => x.reply).slice(-20)) {
        const res = await rc.request(f.bytes);
        resentFresh++;
        const rep = res.data ? decodeStrict(res.data).value : undefined;
        if (!res.data || Buffer.compare(Buffer.from(encode(rep)), f.reply!) !== 0) findings.add('SIGKILL round: a resent acknowledged badge got a different reply', `cred ${c}: first ${hex(f.reply!)}, now ${res.data ? hex(res.data) : JSON.stringify(res)}`);
      }
      rc.close();
      run.phase = 'after SIGKILL restart';
      await resendAcked(run, 5);
      stages.push(`kill round: SIGKILL after ${killAfter} acknowledged badges (${ackedGrants} acknowledged grants of ${fresh.size} sent), ${s3.creds.size} fuzzed credentials compared, ${resentFresh} resent`);
      const e3 = await run.server.stop('SIGTERM');
      serverLogs(run, run.server, 'after the kill round');
      if (e3.code !== 0) findings.add('SIGTERM after recovery: exit code is not 0', `code ${e3.code}\n${run.server.stderrTail()}`);
    };

    try {
      await scenario();
    } catch (e) {
      findings.add(`the test could not go on (${run.phase})`, `${(e as Error).stack}\nserver stderr tail:\n${run.server.stderrTail()}`);
    } finally {
      if (run.dead) serverLogs(run, run.server, run.phase);
      await run.server.stop('SIGKILL');
      for (const s of stages) t.diagnostic(s);
    }
    if (findings.size) assert.fail(findings.report());
  });
});
