/**
 * The ONE description of the site file (SPEC 10 plus the protocol
 * extensions): field types, ranges, defaults and descriptions. load.ts
 * checks files with it, `apb schema` prints its JSON Schema, and the
 * compile-time assertions at the bottom keep it equal to SiteConfig.
 * Rules that relate fields to each other (ids, references, the area tree)
 * live in validate.ts.
 */
import { arr, bool, custom, def, enumOf, int, nullable, obj, opt, pair, str, union, literal, type Infer } from './schema-kit.js';
import type { SiteConfig } from './types.js';
import { isIpAddress } from './net.js';
import { MAX_U64 } from '../engine/cred.js';
import { MAX_CRED_BYTES, MAX_ID_BYTES, MAX_TOKEN_BYTES, MIN_TOKEN_CHARS } from '../limits.js';

/** Longest duration in seconds (about 68 years); keeps every ms value far below 2^44. */
const MAX_SECONDS = 2 ** 31 - 1;
const HHMM = /^(?:[01][0-9]|2[0-3]):[0-5][0-9]$/;
/** Ids travel in URLs, query lists (`areas=a,b`) and log lines. */
const ID = /^[^\s,/?#%"'\\]+$/;

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export const STREAM_KINDS = ['decision', 'violation', 'occupancy', 'action', 'stats'] as const;

const id = (desc: string) => str({ desc, maxBytes: MAX_ID_BYTES, pattern: ID, patternText: 'an id without spaces, commas, slashes, quotes, ?, # or %' });
/** Bearer tokens: long enough not to be guessed, never quoted in a message (they reach logs). */
const token = (desc: string) => str({ desc, secret: true, minChars: MIN_TOKEN_CHARS, maxBytes: MAX_TOKEN_BYTES, pattern: /^\S+$/, patternText: 'a token without whitespace' });
const hhmm = (desc: string) => str({ desc, pattern: HHMM, patternText: 'a local time "HH:MM" (00:00-23:59)' });
const seconds = (desc: string, min = 0) => int({ desc: desc + ' (seconds)', min, max: MAX_SECONDS });
const ipRule = (a: string): string | null => (isIpAddress(a) ? null : `must be an IPv4 or IPv6 address (e.g. 192.0.2.10), got "${a.length > 64 ? a.slice(0, 64) + '…' : a}"`);
const mode = (desc: string) => def(enumOf(['off', 'soft', 'hard'] as const, desc), 'off');

function natsUrlRule(s: string): string | null {
  let u: URL;
  try { u = new URL(s); } catch { return `must be nats://HOST:PORT, got "${s.length > 64 ? s.slice(0, 64) + '…' : s}"`; }
  return (u.protocol === 'nats:' || u.protocol === 'tls:') && u.hostname && u.port ? null : `must be nats://HOST:PORT, got "${s.length > 64 ? s.slice(0, 64) + '…' : s}"`;
}

function validZone(z: string): string | null {
  try { new Intl.DateTimeFormat('en-US', { timeZone: z }); return null; } catch { return `unknown IANA time zone "${z}"`; }
}

const window = obj({
  days: arr(enumOf(WEEKDAYS, 'weekday'), { minItems: 1, unique: (d) => d, desc: 'days the window starts on' }),
  from: hhmm('start, local time, inclusive'),
  to: hhmm('end, local time, exclusive; earlier than `from` = runs past midnight into the next day'),
}, 'a weekly window: active while from <= local time < to on the listed days');

const area = obj({
  id: id('area id; no spaces, commas, slashes, quotes, ?, # or %'),
  parent: def(id('id of the enclosing area'), 'outside'),
  entry: mode('response to a violation on entering the area: off | soft (grant + alert) | hard (deny + alert)'),
  exit: mode('response to a violation on leaving the area'),
  strict: def(bool('entering also requires the known location to be the reader\'s `from` area'), false),
  presenceTimeout: def(seconds('after this long with no move the location stops counting for this area; 0 = never'), 0),
  schedule: def(union(literal('always'), arr(window, { minItems: 1 }), '"always" or a list of windows',
    'when violations are raised (site time zone); moves are tracked at all times'), 'always' as 'always' | Infer<typeof window>[]),
  resetAt: def(arr(hhmm('local time of a daily reset'), { unique: (s) => s, desc: 'local times at which everyone in the area becomes unknown, daily' }), [] as string[]),
  maxOccupancy: def(nullable(int({ desc: 'entering when the area holds this many raises `occupancy` (with the mode of `entry`); null = no limit', min: 0 })), null),
  commitOn: def(enumOf(['grant', 'passage'] as const, 'apply a granted move at once, or only when a `passage` event confirms it'), 'grant'),
  passageTimeout: def(seconds('with commitOn: passage, how long a granted move waits for its passage', 1), 10),
  supervision: mode('response when the area would be left without a supervisor present while others remain (`last_supervisor`), or entered by a non-supervisor while none is present (`no_supervisor`)'),
}, 'an area people are in; "outside" exists implicitly and is the root');

const credValue = custom<number | bigint | string>(
  (v) => typeof v === 'string' || typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)),
  'an unsigned integer up to 2^64-1 or a string',
  (v) => (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : (v as number | bigint | string)),
  [(c) => {
    if (typeof c === 'string') { const n = new TextEncoder().encode(c).length; return n < 1 || n > MAX_CRED_BYTES ? `string credential must be 1-${MAX_CRED_BYTES} UTF-8 bytes` : null; }
    return c < 0 || c > MAX_U64 ? 'integer credential must be between 0 and 2^64-1' : null;
  }],
  { anyOf: [{ type: 'integer', minimum: 0, maximum: 18446744073709551615 }, { type: 'string', minLength: 1, maxLength: MAX_CRED_BYTES }], description: 'card number (unsigned integer) or string credential; 123 and "123" are different credentials' },
);

const bitField = (desc: string) => obj({ start: int({ desc: 'first bit (0 = first bit transmitted)', min: 0, max: 255 }), length: int({ desc: 'number of bits', min: 1, max: 64 }) }, desc);

const wiegandFormat = obj({
  name: str({ desc: 'format name', maxBytes: MAX_ID_BYTES }),
  bits: int({ desc: 'total bits of a read in this format', min: 2, max: 256 }),
  facility: opt(bitField('facility code bits')),
  card: bitField('card number bits'),
  parity: def(arr(obj({
    bit: int({ desc: 'position of the parity bit', min: 0, max: 255 }),
    covers: pair(int({ min: 0, max: 255 }), '[from, to]: inclusive range of bits the parity covers'),
    kind: enumOf(['even', 'odd'] as const, 'even or odd parity'),
  }, 'a parity bit'), { desc: 'parity bits checked on every read' }), []),
}, 'a custom Wiegand format');

const reader = obj({
  id: id('reader id (controllers send it); no spaces, commas, slashes, quotes, ?, # or %'),
  from: id('id of the area the reader moves people from'),
  to: id('id of the area the reader moves people to'),
  controller: id('id of the controller that owns the reader'),
  reuseLockout: def(seconds('the same credential granted here again within this time raises `reuse`; 0 = off'), 0),
  reuseMode: def(enumOf(['soft', 'hard'] as const, 'response to a reuse violation'), 'hard'),
  osdp: opt(obj({
    address: int({ desc: 'OSDP device address of the reader\'s PD', min: 0, max: 126 }),
    reader: def(int({ desc: 'reader number on that PD', min: 0, max: 255 }), 0),
  }, 'OSDP mapping: card reads from (address, reader) come from this reader')),
  uhppote: opt(obj({
    door: int({ desc: 'door number on the UHPPOTE controller', min: 1, max: 4 }),
    direction: enumOf(['in', 'out'] as const, 'swipe direction'),
  }, 'UHPPOTE mapping: events for (controller serial, door, direction) come from this reader')),
}, 'a point where a credential is presented; moves people from one area to another');

const controller = obj({
  id: id('controller id; no spaces, commas, slashes, quotes, ?, # or %'),
  token: token(`bearer token the controller authenticates with (${MIN_TOKEN_CHARS}-${MAX_TOKEN_BYTES} characters, no whitespace)`),
  protocol: def(enumOf(['native', 'wiegand', 'osdp', 'uhppote'] as const, 'message format the controller speaks'), 'native'),
  serial: opt(int({ desc: 'UHPPOTE controller serial number (required for protocol uhppote)', min: 0, max: 2 ** 32 - 1 })),
  address: opt(str({ desc: 'protocol uhppote: the controller\'s IP address; UDP events from any other source are dropped (required unless uhppote.host is a loopback address)', rules: [ipRule] })),
  rateLimit: def(int({ desc: 'messages per second before rate_limited', min: 1, max: 100_000_000 }), 10000),
}, 'a device that owns readers and talks to the engine');

export const siteSchema = obj({
  site: str({ desc: 'site name', maxBytes: 128 }),
  timezone: str({ desc: 'IANA time zone of schedules and resetAt, e.g. Europe/London', rules: [validZone] }),
  forgetAfter: def(seconds('a credential with no move for this long becomes unknown everywhere; 0 = never'), 0),
  expectedCredentials: def(int({ desc: 'credentials the engine sizes its table for when it starts without a snapshot (0 = grows as they come); a hint, never a limit', min: 0, max: 80_000_000 }), 0),
  maxClockSkew: def(seconds('a controller timestamp (`ts`) further ahead of the server clock than this is refused with bad_message'), 300),
  areas: def(arr(area, { desc: 'areas (outside exists implicitly)' }), []),
  readers: def(arr(reader, { desc: 'readers; a controller\'s readers are those naming it' }), []),
  controllers: def(arr(controller, { desc: 'controllers and their bearer tokens' }), []),
  credentials: def(arr(obj({
    cred: credValue,
    exempt: def(bool('APB never denies this credential; its moves are still tracked'), false),
    supervisor: def(bool('counts as a supervisor for areas with `supervision`'), false),
  }, 'standing flags of a credential'), { desc: 'credentials with standing flags; every other credential is valid and starts unknown' }), []),
  users: def(arr(obj({
    name: str({ desc: 'operator name (recorded with every action)', maxBytes: MAX_ID_BYTES }),
    token: token(`bearer token of the HTTP API and dashboard (${MIN_TOKEN_CHARS}-${MAX_TOKEN_BYTES} characters, no whitespace)`),
    role: enumOf(['viewer', 'operator', 'admin'] as const, 'viewer: read; operator: forgive/reset/...; admin: everything'),
  }, 'an operator of the HTTP API and dashboard'), { desc: 'operators and their bearer tokens' }), []),
  wiegandFormats: def(arr(wiegandFormat, { desc: 'custom Wiegand formats, besides the built-in ones' }), []),
  uhppote: opt(obj({
    host: def(str({ desc: 'IP address the UDP event listener binds (a non-loopback address requires `address` on every uhppote controller)', rules: [ipRule] }), '127.0.0.1'),
    port: def(int({ desc: 'UDP port of the event listener', min: 1, max: 65535 }), 60001),
  }, 'UDP listener for UHPPOTE controller events')),
  cluster: opt(obj({
    servers: arr(str({ desc: 'a NATS server with JetStream, nats://HOST:PORT (or tls://HOST:PORT)', rules: [natsUrlRule] }), { minItems: 1, maxItems: 16, desc: 'the NATS servers of the cluster (same as --cluster)' }),
    node: opt(str({ desc: 'this node\'s name, unique in the cluster (same as --node; usually given by --node, as the site file is shared)', maxBytes: 64, pattern: /^[A-Za-z0-9_-]+$/, patternText: '1-64 letters, digits, _ or -' })),
    streamReplicas: def(int({ desc: 'replicas of the site\'s streams and of the cluster buckets when this node creates them (same as --stream-replicas)', min: 1, max: 5 }), 1),
    leaseMs: def(int({ desc: 'leader lease duration (same as --lease-ms)', min: 500, max: 60_000, unit: 'ms' }), 2000),
    snapshotEvery: def(int({ desc: 'journal records between two snapshots of a follower\'s engine (same as --snapshot-every); 0 = none (the stream is then never trimmed)', min: 0, max: 1_000_000_000 }), 100_000),
  }, 'cluster mode (docs/cluster.md): read when `apb serve` starts; command-line flags take precedence')),
  webhooks: def(arr(obj({
    url: str({ desc: 'http(s) URL that receives a POST per event', format: 'uri', rules: [(u) => {
      try { const p = new URL(u).protocol; return p === 'http:' || p === 'https:' ? null : `must be an http or https URL, got "${u}"`; } catch { return `must be a URL, got "${u}"`; }
    }] }),
    kinds: opt(arr(enumOf(STREAM_KINDS, 'event kind'), { minItems: 1, unique: (k) => k, desc: 'kinds to send (default [violation])' })),
  }, 'an HTTP endpoint notified of events'), { desc: 'HTTP endpoints that receive events' }), []),
}, 'apb site configuration');

export type SiteFile = Infer<typeof siteSchema>;

/** The generated JSON Schema of the site file (draft 2020-12). */
export function siteJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/apb/apb/site.schema.json',
    title: 'apb site configuration',
    ...siteSchema.json(),
  };
}

// Compile-time: what the schema yields is a SiteConfig (test/config checks the keys match).
export const asSiteConfig = (f: SiteFile): SiteConfig => f;
