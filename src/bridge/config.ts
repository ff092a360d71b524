/**
 * The bridge file (`apb bridge --config bridge.yaml`): one schema with the
 * site file's toolkit (src/config/schema-kit.ts), so errors read the same
 * way (`ports[0].readers[1].address: must be between 0 and 126, got 127`),
 * every default is filled in, and unknown keys are errors. Cross-field rules
 * (unique ports, addresses and reader ids; `local` needs the site file; the
 * readers must be the token's controller's) are checked after the schema.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ApbError } from '../errors.js';
import { arr, bool, def, enumOf, int, obj, opt, str, type Infer, type Issue, INVALID } from '../config/schema-kit.js';
import { loadSiteText, formatIssue } from '../config/load.js';
import type { LoadedSite } from '../config/load.js';
import { MAX_ID_BYTES, MAX_TOKEN_BYTES, MIN_TOKEN_CHARS } from '../limits.js';
import { SCBK_D } from './osdp/secure.js';

const ms = (desc: string, min: number, max: number) => int({ desc: `${desc} (milliseconds)`, min, max });
const token = (desc: string) => str({ desc, secret: true, minChars: MIN_TOKEN_CHARS, maxBytes: MAX_TOKEN_BYTES, pattern: /^\S+$/, patternText: 'a token without whitespace' });
const KEY = /^[0-9a-fA-F]{32}$/;

export const BAUDS = [9600, 19200, 38400, 57600, 115200, 230400] as const;
export const POLICIES = ['deny', 'grant', 'local'] as const;
export type Policy = typeof POLICIES[number];

const readerSchema = obj({
  id: str({ desc: 'the reader id of the site file', maxBytes: MAX_ID_BYTES, pattern: /^[^\s,/?#%"'\\]+$/, patternText: 'an id without spaces, commas, slashes, quotes, ?, # or %' }),
  address: int({ desc: 'OSDP address of the reader (PD), as set on the reader', min: 0, max: 126 }),
  reader: def(int({ desc: 'reader number on that PD (a PD with one reader head uses 0)', min: 0, max: 255 }), 0),
  check: def(enumOf(['crc', 'checksum'] as const, 'message check: CRC-16 (every current reader) or the 8-bit checksum of old ones'), 'crc'),
  policy: def(enumOf(POLICIES, 'what the door does when the engine does not answer in time: deny, grant, or local (decide here from the last known state)'), 'deny'),
  secure: opt(obj({
    scbk: str({ desc: 'the reader\'s Secure Channel Base Key: 32 hex digits (16 bytes), one per reader', secret: true, pattern: KEY, patternText: '32 hexadecimal digits (16 bytes)' }),
    install: def(bool('install mode: if the reader refuses the SCBK, start a session with the default key SCBK-D and load the SCBK into the reader (osdp_KEYSET)'), false),
  }, 'OSDP Secure Channel (AES-128); absent = clear text')),
  output: opt(obj({
    number: int({ desc: 'output (relay) number on the PD', min: 0, max: 255 }),
    pulse: def(ms('how long the output stays on after a grant', 100, 60_000), 3000),
  }, 'output pulsed on a grant (door strike, turnstile release)')),
  passageInput: opt(int({ desc: 'input number whose activation means the person went through (turnstile rotation, door contact): sent to the engine as `passage`', min: 0, max: 255 })),
}, 'one OSDP reader (PD) on this port');

const portSchema = obj({
  path: str({ desc: 'serial device of the RS-485 adapter, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…' }),
  baud: def(int({ desc: 'baud rate set on the readers: 9600 (the OSDP default), 19200, 38400, 57600, 115200 or 230400', min: 9600, max: 230400 }), 9600),
  pollInterval: def(ms('each reader is polled at least this often', 20, 5000), 100),
  replyTimeout: def(ms('a reader that has not answered after this long is asked again', 20, 2000), 200),
  retries: def(int({ desc: 'resends of an unanswered command before the reader is reconnected', min: 0, max: 10 }), 2),
  offlineAfter: def(ms('a reader silent this long is offline', 500, 600_000), 8000),
  readers: arr(readerSchema, { minItems: 1, desc: 'the readers on this bus' }),
}, 'one RS-485 bus (serial port)');

export const bridgeSchema = obj({
  engine: obj({
    url: str({ desc: 'the engine, ws://host:port or wss://host:port (its /v1/controller endpoint is used)', pattern: /^wss?:\/\/[^\s/]+(\/[^\s]*)?$/, patternText: 'a ws:// or wss:// URL, e.g. ws://10.0.0.5:8080' }),
    token: token('the bearer token of the controller this bridge is in the site file (protocol native)'),
    viewerToken: opt(token('optional viewer token: after an outage the bridge reads the engine\'s conclusion about each uploaded event and the credentials\' state')),
    deadline: def(ms('the door waits this long for the engine before following the reader\'s offline policy', 20, 2000), 150),
    reconnectMin: def(ms('first reconnect delay (doubles up to reconnectMax, with jitter)', 50, 60_000), 250),
    reconnectMax: def(ms('longest reconnect delay', 100, 600_000), 10_000),
    pingEvery: def(ms('a ping this often; no answer within the same time closes the link', 500, 120_000), 5000),
  }, 'the apb engine this bridge reports to'),
  data: str({ desc: 'directory of the bridge\'s own LMDB store (offline journal, id counter, known credentials); created if missing' }),
  site: opt(str({ desc: 'the site file the engine runs: needed for policy local; also checks reader ids and supplies custom Wiegand formats' })),
  http: def(obj({
    host: def(str({ desc: 'address for /healthz and /metrics (keep it on loopback)' }), '127.0.0.1'),
    port: def(int({ desc: 'port for /healthz and /metrics; 0 = any free port', min: 0, max: 65535 }), 9180),
  }, 'the health and metrics endpoint'), { host: '127.0.0.1', port: 9180 }),
  offline: def(obj({
    facilities: opt(arr(int({ desc: 'facility code', min: 0, max: 2 ** 32 - 1 }), { minItems: 1, unique: (n) => String(n) }, )),
    journalKeep: def(int({ desc: 'uploaded journal entries kept for inspection', min: 0, max: 10_000_000 }), 100_000),
  }, 'offline decisions'), { journalKeep: 100_000 }),
  feedback: def(obj({
    ledSeconds: def(int({ desc: 'how long the green or red LED stays on after a decision (seconds)', min: 1, max: 30 }), 3),
    offlineBeep: def(bool('a short beep with every decision taken offline, so staff notice the engine is unreachable'), true),
  }, 'what the reader shows'), { ledSeconds: 3, offlineBeep: true }),
  ports: arr(portSchema, { minItems: 1, desc: 'the RS-485 buses' }),
}, 'apb bridge configuration');

export type BridgeFile = Infer<typeof bridgeSchema>;
export type ReaderConfig = BridgeFile['ports'][number]['readers'][number];
export type PortConfig = BridgeFile['ports'][number];

export interface BridgeConfig {
  file: BridgeFile;
  /** the site file, when `site` is set */
  site: LoadedSite | null;
  /** the controller the token belongs to (known when the site is given) */
  controller: string | null;
  /** each reader's SCBK as bytes */
  keys: Map<string, Uint8Array>;
}

function cross(f: BridgeFile, issues: Issue[]): void {
  const ids = new Map<string, string>();
  const paths = new Map<string, number>();
  f.ports.forEach((p, i) => {
    const prev = paths.get(p.path);
    if (prev !== undefined) issues.push({ path: `ports[${i}].path`, message: `"${p.path}" is also ports[${prev}].path` });
    paths.set(p.path, i);
    if (!(BAUDS as readonly number[]).includes(p.baud)) issues.push({ path: `ports[${i}].baud`, message: `must be one of ${BAUDS.join(', ')}, got ${p.baud}` });
    if (p.replyTimeout >= p.offlineAfter) issues.push({ path: `ports[${i}].offlineAfter`, message: `must be longer than replyTimeout (${p.replyTimeout} ms)` });
    // several entries may share an address: the reader heads of one PD, told apart by `reader`;
    // they share the PD's link settings (check, secure), so those must agree
    const heads = new Map<string, number>();
    const pdAt = new Map<number, number>();
    p.readers.forEach((r, k) => {
      const at = `ports[${i}].readers[${k}]`;
      const h = heads.get(`${r.address}/${r.reader}`);
      if (h !== undefined) issues.push({ path: `${at}.reader`, message: `address ${r.address} reader ${r.reader} is also ports[${i}].readers[${h}] (one entry per reader head; a PD with several heads lists each with its own \`reader\` number)` });
      heads.set(`${r.address}/${r.reader}`, k);
      const first = pdAt.get(r.address);
      if (first === undefined) pdAt.set(r.address, k);
      else {
        const f0 = p.readers[first]!;
        if (f0.check !== r.check) issues.push({ path: `${at}.check`, message: `must be the same as ports[${i}].readers[${first}].check ("${f0.check}"): both are heads of the PD at address ${r.address}` });
        if (JSON.stringify(f0.secure ?? null) !== JSON.stringify(r.secure ?? null)) issues.push({ path: `${at}.secure`, message: `must be the same as ports[${i}].readers[${first}].secure: both are heads of the PD at address ${r.address}, which has one secure channel` });
      }
      const other = ids.get(r.id);
      if (other) issues.push({ path: `${at}.id`, message: `reader "${r.id}" is also ${other}.id` });
      ids.set(r.id, at);
      if (r.secure && Buffer.from(r.secure.scbk, 'hex').equals(Buffer.from(SCBK_D))) {
        issues.push({ path: `${at}.secure.scbk`, message: 'must not be the default key SCBK-D (30..3F), which every reader in install mode accepts: generate a random key per reader' });
      }
      if (r.policy === 'local' && !f.site) issues.push({ path: `${at}.policy`, message: 'local needs `site:` (the site file the engine runs) to decide' });
    });
  });
  if (f.engine.reconnectMax < f.engine.reconnectMin) issues.push({ path: 'engine.reconnectMax', message: `must be at least reconnectMin (${f.engine.reconnectMin} ms)` });
}

/** The readers against the site: they exist and belong to the token's controller (protocol native). */
function againstSite(f: BridgeFile, site: LoadedSite, issues: Issue[]): string | null {
  const ctrl = site.config.controllers.find((c) => c.token === f.engine.token);
  if (!ctrl) { issues.push({ path: 'engine.token', message: `is not the token of any controller in the site file ${f.site}` }); return null; }
  if (ctrl.protocol !== 'native') issues.push({ path: 'engine.token', message: `belongs to controller "${ctrl.id}", whose protocol is ${ctrl.protocol}: the bridge speaks the native protocol (set protocol: native)` });
  const readers = new Map(site.config.readers.map((r) => [r.id, r]));
  f.ports.forEach((p, i) => p.readers.forEach((r, k) => {
    const sr = readers.get(r.id);
    if (!sr) issues.push({ path: `ports[${i}].readers[${k}].id`, message: `the site file has no reader "${r.id}"` });
    else if (sr.controller !== ctrl.id) issues.push({ path: `ports[${i}].readers[${k}].id`, message: `reader "${r.id}" belongs to controller "${sr.controller}", not to "${ctrl.id}" (the token's)` });
  }));
  return ctrl.id;
}

function fail(errors: Issue[]): never {
  throw new ApbError('invalid_config', formatIssue(errors[0]!), { errors });
}

/** Checks a bridge file's text; relative `data` and `site` paths are taken from `baseDir`. */
export function loadBridgeText(text: string, name = 'bridge file', baseDir = process.cwd()): BridgeConfig {
  if (text.trim() === '') fail([{ path: '', message: `${name} is empty` }]);
  const doc = parseDocument(text, { intAsBigInt: true, uniqueKeys: true, prettyErrors: true, strict: true });
  if (doc.errors.length) fail(doc.errors.map((e) => ({ path: '', message: `${name} is not valid YAML or JSON: ${e.message.split('\n')[0]!.replace(/:$/, '')}` })));
  let value: unknown;
  try { value = doc.toJS({ maxAliasCount: 100 }); } catch (e) { fail([{ path: '', message: `${name}: ${(e as Error).message}` }]); }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail([{ path: '', message: `${name} must be a map of settings (engine, data, ports, ...)` }]);
  const issues: Issue[] = [];
  const f = bridgeSchema.check(value, '', issues);
  if (f === INVALID || issues.length) fail(issues.length ? issues : [{ path: '', message: `invalid ${name}` }]);
  cross(f, issues);
  f.data = resolve(baseDir, f.data);
  let site: LoadedSite | null = null;
  let controller: string | null = null;
  if (f.site) {
    f.site = resolve(baseDir, f.site);
    let siteText: string;
    try { siteText = readFileSync(f.site, 'utf8'); } catch (e) {
      issues.push({ path: 'site', message: `cannot read ${f.site}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}` });
      fail(issues);
    }
    try { site = loadSiteText(siteText, f.site); } catch (e) {
      const errs = ((e as ApbError).detail as { errors?: Issue[] } | undefined)?.errors ?? [{ path: '', message: (e as Error).message }];
      for (const x of errs) issues.push({ path: 'site', message: `${f.site}: ${formatIssue(x)}` });
    }
    if (site) controller = againstSite(f, site, issues);
  }
  if (issues.length) fail(issues);
  const keys = new Map<string, Uint8Array>();
  for (const p of f.ports) for (const r of p.readers) if (r.secure) keys.set(r.id, Uint8Array.from(Buffer.from(r.secure.scbk, 'hex')));
  return { file: f, site, controller, keys };
}

export function loadBridgeFile(path: string): BridgeConfig {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail([{ path: '', message: `cannot read bridge file "${path}": ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}` }]);
  }
  return loadBridgeText(text, path, dirname(resolve(path)));
}
