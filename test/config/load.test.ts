import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApbError } from '../../src/errors.js';
import { loadSiteText, loadSiteFile } from '../../src/config/load.js';
import { baseDoc, errorsOf, load } from './util.js';

test('defaults are filled in for every optional key', () => {
  const { config } = load({ site: 's', timezone: 'UTC', areas: [{ id: 'a' }], readers: [{ id: 'r', from: 'outside', to: 'a', controller: 'c' }], controllers: [{ id: 'c', token: 't-long-test-token' }] });
  assert.deepEqual(config.areas[0], {
    id: 'a', parent: 'outside', entry: 'off', exit: 'off', strict: false, presenceTimeout: 0, schedule: 'always',
    resetAt: [], maxOccupancy: null, commitOn: 'grant', passageTimeout: 10, supervision: 'off',
  });
  assert.deepEqual(config.readers[0], { id: 'r', from: 'outside', to: 'a', controller: 'c', reuseLockout: 0, reuseMode: 'hard' });
  assert.deepEqual(config.controllers[0], { id: 'c', token: 't-long-test-token', protocol: 'native', rateLimit: 10000 });
  assert.equal(config.forgetAfter, 0);
  assert.deepEqual([config.credentials, config.users, config.wiegandFormats, config.webhooks], [[], [], [], []]);
  assert.equal(config.uhppote, undefined);
  const full = load({ site: 's', timezone: 'UTC', uhppote: {}, controllers: [{ id: 'u', token: 't-long-test-token', protocol: 'uhppote', serial: 423187757 }],
    areas: [{ id: 'a' }], readers: [{ id: 'r', from: 'outside', to: 'a', controller: 'u', uhppote: { door: 1, direction: 'in' } }] });
  assert.deepEqual(full.config.uhppote, { host: '127.0.0.1', port: 60001 }); // loopback by default (issue 10 item 12)
  const osdp = load({ site: 's', timezone: 'UTC', controllers: [{ id: 'o', token: 't-long-test-token', protocol: 'osdp' }], areas: [{ id: 'a' }],
    readers: [{ id: 'r', from: 'outside', to: 'a', controller: 'o', osdp: { address: 3 } }] });
  assert.deepEqual(osdp.config.readers[0]!.osdp, { address: 3, reader: 0 });
});

test('defaults are not shared between loads', () => {
  const a = load(baseDoc()).config, b = load(baseDoc()).config;
  a.areas[0]!.resetAt.push('01:00');
  assert.deepEqual(b.areas[0]!.resetAt, []);
});

// [name, mutate the base document, expected path, expected message]
type Case = [string, (d: Record<string, any>) => void, string, string];
const cases: Case[] = [
  ['missing site', (d) => { delete d.site; }, 'site', 'is required'],
  ['missing timezone', (d) => { delete d.timezone; }, 'timezone', 'is required'],
  ['unknown time zone', (d) => { d.timezone = 'Mars/Olympus'; }, 'timezone', 'unknown IANA time zone "Mars/Olympus"'],
  ['unknown top-level key', (d) => { d.area = []; }, 'area', 'unknown key (allowed: site, timezone, forgetAfter, expectedCredentials, maxClockSkew, areas, readers, controllers, credentials, users, wiegandFormats, uhppote, cluster, webhooks)'],
  ['negative forgetAfter', (d) => { d.forgetAfter = -1; }, 'forgetAfter', 'must be between 0 and 2147483647, got -1'],
  ['fractional forgetAfter', (d) => { d.forgetAfter = 1.5; }, 'forgetAfter', 'must be an integer, got 1.5'],
  ['string forgetAfter', (d) => { d.forgetAfter = '10'; }, 'forgetAfter', 'must be an integer, got "10"'],
  ['areas not a list', (d) => { d.areas = { id: 'x' }; }, 'areas', 'must be a list, got a map'],
  ['area not a map', (d) => { d.areas[1] = 'lab'; }, 'areas[1]', 'must be a map, got "lab"'],
  ['area unknown key', (d) => { d.areas[0].colour = 'red'; }, 'areas[0].colour', 'unknown key (allowed: id, parent, entry, exit, strict, presenceTimeout, schedule, resetAt, maxOccupancy, commitOn, passageTimeout, supervision)'],
  ['area missing id', (d) => { delete d.areas[0].id; d.areas[1].parent = 'outside'; d.readers = []; }, 'areas[0].id', 'is required'],
  ['area id with a comma', (d) => { d.areas[0].id = 'a,b'; }, 'areas[0].id', 'must be an id without spaces, commas, slashes, quotes, ?, # or %, got "a,b"'],
  ['unknown parent', (d) => { d.areas[1].parent = 'lobby'; }, 'areas[1].parent', 'unknown area "lobby"'],
  ['duplicate area id', (d) => { d.areas.push({ id: 'lab' }); }, 'areas[2].id', 'duplicate area id "lab" (first at areas[1].id)'],
  ['outside redeclared', (d) => { d.areas.push({ id: 'outside' }); }, 'areas[2].id', '"outside" is the implicit root area and cannot be declared'],
  ['own parent', (d) => { d.areas[0].parent = 'building'; }, 'areas[0].parent', 'area "building" cannot be its own parent'],
  ['parent cycle', (d) => { d.areas[0].parent = 'lab'; }, 'areas[0].parent', 'areas form a cycle: building -> lab -> building'],
  ['bad entry mode', (d) => { d.areas[0].entry = 'strong'; }, 'areas[0].entry', 'must be one of off | soft | hard, got "strong"'],
  ['strict not bool', (d) => { d.areas[0].strict = 'yes'; }, 'areas[0].strict', 'must be true or false, got "yes"'],
  ['bad resetAt', (d) => { d.areas[0].resetAt = ['03:00', '24:00']; }, 'areas[0].resetAt[1]', 'must be a local time "HH:MM" (00:00-23:59), got "24:00"'],
  ['duplicate resetAt', (d) => { d.areas[0].resetAt = ['03:00', '03:00']; }, 'areas[0].resetAt[1]', 'duplicate of areas[0].resetAt[0]'],
  ['bad schedule word', (d) => { d.areas[0].schedule = 'sometimes'; }, 'areas[0].schedule', 'must be "always" or a list of windows, got "sometimes"'],
  ['schedule not list', (d) => { d.areas[0].schedule = 5; }, 'areas[0].schedule', 'must be "always" or a list of windows, got an integer'],
  ['empty schedule list', (d) => { d.areas[0].schedule = []; }, 'areas[0].schedule', 'must have at least 1 item'],
  ['bad weekday', (d) => { d.areas[0].schedule = [{ days: ['mon', 'funday'], from: '08:00', to: '18:00' }]; }, 'areas[0].schedule[0].days[1]', 'must be one of mon | tue | wed | thu | fri | sat | sun, got "funday"'],
  ['no days', (d) => { d.areas[0].schedule = [{ days: [], from: '08:00', to: '18:00' }]; }, 'areas[0].schedule[0].days', 'must have at least 1 item'],
  ['bad window time', (d) => { d.areas[0].schedule = [{ days: ['mon'], from: '8:00', to: '18:00' }]; }, 'areas[0].schedule[0].from', 'must be a local time "HH:MM" (00:00-23:59), got "8:00"'],
  ['window from == to', (d) => { d.areas[0].schedule = [{ days: ['mon'], from: '08:00', to: '08:00' }]; }, 'areas[0].schedule[0].to', 'must differ from `from` ("08:00"); use schedule: always for a whole day'],
  ['window unknown key', (d) => { d.areas[0].schedule = [{ days: ['mon'], from: '08:00', to: '09:00', until: 1 }]; }, 'areas[0].schedule[0].until', 'unknown key (allowed: days, from, to)'],
  ['negative maxOccupancy', (d) => { d.areas[0].maxOccupancy = -1; }, 'areas[0].maxOccupancy', 'must be >= 0, got -1'],
  ['zero passageTimeout', (d) => { d.areas[0].passageTimeout = 0; }, 'areas[0].passageTimeout', 'must be between 1 and 2147483647, got 0'],
  ['bad commitOn', (d) => { d.areas[0].commitOn = 'badge'; }, 'areas[0].commitOn', 'must be one of grant | passage, got "badge"'],
  ['bad supervision mode', (d) => { d.areas[1].supervision = 'always'; }, 'areas[1].supervision', 'must be one of off | soft | hard, got "always"'],
  ['negative presenceTimeout', (d) => { d.areas[0].presenceTimeout = -5; }, 'areas[0].presenceTimeout', 'must be between 0 and 2147483647, got -5'],
  ['reader unknown from', (d) => { d.readers[0].from = 'street'; }, 'readers[0].from', 'unknown area "street"'],
  ['reader unknown to', (d) => { d.readers[1].to = 'roof'; }, 'readers[1].to', 'unknown area "roof"'],
  ['reader from == to', (d) => { d.readers[1].to = 'building'; }, 'readers[1].to', 'must differ from `from` ("building")'],
  ['reader unknown controller', (d) => { d.readers[0].controller = 'c9'; }, 'readers[0].controller', 'unknown controller "c9"'],
  ['reader missing controller', (d) => { delete d.readers[0].controller; }, 'readers[0].controller', 'is required'],
  ['duplicate reader id', (d) => { d.readers[1].id = 'r1'; }, 'readers[1].id', 'duplicate reader id "r1" (first at readers[0].id)'],
  ['negative reuseLockout', (d) => { d.readers[0].reuseLockout = -1; }, 'readers[0].reuseLockout', 'must be between 0 and 2147483647, got -1'],
  ['bad reuseMode', (d) => { d.readers[0].reuseMode = 'off'; }, 'readers[0].reuseMode', 'must be one of soft | hard, got "off"'],
  ['osdp on a native controller', (d) => { d.readers[0].osdp = { address: 1 }; }, 'readers[0].osdp', 'controller "c1" has protocol native, not osdp'],
  ['osdp address out of range', (d) => { d.controllers[0].protocol = 'osdp'; d.readers[0].osdp = { address: 127 }; }, 'readers[0].osdp.address', 'must be between 0 and 126, got 127'],
  ['osdp negative reader', (d) => { d.controllers[0].protocol = 'osdp'; d.readers[0].osdp = { address: 1, reader: -1 }; }, 'readers[0].osdp.reader', 'must be between 0 and 255, got -1'],
  ['osdp duplicate', (d) => { d.controllers[0].protocol = 'osdp'; d.readers[0].osdp = { address: 1 }; d.readers[1].osdp = { address: 1, reader: 0 }; }, 'readers[1].osdp', 'duplicate OSDP address/reader "address 1 reader 0 on controller c1" (first at readers[0].osdp)'],
  ['uhppote on a native controller', (d) => { d.readers[0].uhppote = { door: 1, direction: 'in' }; }, 'readers[0].uhppote', 'controller "c1" has protocol native, not uhppote'],
  ['uhppote door out of range', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 1 }); d.readers[0].uhppote = { door: 5, direction: 'in' }; }, 'readers[0].uhppote.door', 'must be between 1 and 4, got 5'],
  ['uhppote bad direction', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 1 }); d.readers[0].uhppote = { door: 1, direction: 'up' }; }, 'readers[0].uhppote.direction', 'must be one of in | out, got "up"'],
  ['uhppote duplicate', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 1 }); d.readers[0].uhppote = { door: 2, direction: 'out' }; d.readers[1].uhppote = { door: 2, direction: 'out' }; }, 'readers[1].uhppote', 'duplicate UHPPOTE door/direction "door 2 out on controller c1" (first at readers[0].uhppote)'],
  ['uhppote without serial', (d) => { d.controllers[0].protocol = 'uhppote'; }, 'controllers[0].serial', 'is required for protocol uhppote'],
  ['serial on native', (d) => { d.controllers[0].serial = 5; }, 'controllers[0].serial', 'only applies to protocol uhppote (this controller is native)'],
  ['serial beyond uint32', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 2 ** 32 }); }, 'controllers[0].serial', 'must be between 0 and 4294967295, got 4294967296'],
  ['duplicate serial', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 7 }); d.controllers.push({ id: 'c2', token: 't2-long-test-token', protocol: 'uhppote', serial: 7 }); }, 'controllers[1].serial', 'duplicate UHPPOTE serial "7" (first at controllers[0].serial)'],
  ['bad protocol', (d) => { d.controllers[0].protocol = 'zigbee'; }, 'controllers[0].protocol', 'must be one of native | wiegand | osdp | uhppote, got "zigbee"'],
  ['zero rateLimit', (d) => { d.controllers[0].rateLimit = 0; }, 'controllers[0].rateLimit', 'must be between 1 and 100000000, got 0'],
  ['duplicate controller id', (d) => { d.controllers.push({ id: 'c1', token: 'other-long-test-token' }); }, 'controllers[1].id', 'duplicate controller id "c1" (first at controllers[0].id)'],
  ['token with space', (d) => { d.controllers[0].token = 'a b-long-test-token'; }, 'controllers[0].token', 'must be a token without whitespace'],
  // issue 10 item 17: tokens of at least MIN_TOKEN_CHARS characters, at most MAX_TOKEN_BYTES bytes
  ['15-character controller token', (d) => { d.controllers[0].token = 'x'.repeat(15); }, 'controllers[0].token', 'must be at least 16 characters long (use a long random secret)'],
  ['1-character user token', (d) => { d.users[0].token = 't'; }, 'users[0].token', 'must be at least 16 characters long (use a long random secret)'],
  ['15 characters of 2 bytes each', (d) => { d.users[0].token = 'é'.repeat(15); }, 'users[0].token', 'must be at least 16 characters long (use a long random secret)'],
  ['257-byte token', (d) => { d.controllers[0].token = 'x'.repeat(257); }, 'controllers[0].token', 'must be at most 256 UTF-8 bytes'],
  // issue 10 item 1: ids and names are bounded by MAX_ID_BYTES (src/limits.ts)
  ['65-byte reader id', (d) => { d.readers[0].id = 'r'.repeat(65); }, 'readers[0].id', 'must be at most 64 UTF-8 bytes'],
  ['65-byte user name', (d) => { d.users[0].name = 'n'.repeat(65); }, 'users[0].name', 'must be at most 64 UTF-8 bytes'],
  // issue 10 item 12: the UHPPOTE listener's source check
  ['uhppote host not an IP', (d) => { d.uhppote = { host: 'gateway.local' }; }, 'uhppote.host', 'must be an IPv4 or IPv6 address (e.g. 192.0.2.10), got "gateway.local"'],
  ['uhppote address not an IP', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 1, address: '10.0.0' }); }, 'controllers[0].address', 'must be an IPv4 or IPv6 address (e.g. 192.0.2.10), got "10.0.0"'],
  ['address on a native controller', (d) => { d.controllers[0].address = '192.0.2.10'; }, 'controllers[0].address', 'only applies to protocol uhppote (this controller is native)'],
  ['uhppote listener on the network without address', (d) => { Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 1 }); d.uhppote = { host: '0.0.0.0' }; }, 'controllers[0].address',
    'is required: the UHPPOTE listener binds 0.0.0.0, not a loopback address, so the controller\'s source IP must be named'],
  ['empty token', (d) => { d.controllers[0].token = ''; }, 'controllers[0].token', 'must not be empty'],
  ['token shared by controllers', (d) => { d.controllers.push({ id: 'c2', token: 'tok-c1-long-test-token' }); }, 'controllers[1].token', 'duplicate token "…" (first at controllers[0].token)'],
  ['token shared controller/user', (d) => { d.users[0].token = 'tok-c1-long-test-token'; }, 'users[0].token', 'duplicate token "…" (first at controllers[0].token)'],
  ['bad role', (d) => { d.users[0].role = 'root'; }, 'users[0].role', 'must be one of viewer | operator | admin, got "root"'],
  ['duplicate user name', (d) => { d.users.push({ name: 'desk', token: 'x2-long-test-token', role: 'viewer' }); }, 'users[1].name', 'duplicate user name "desk" (first at users[0].name)'],
  ['negative cred', (d) => { d.credentials = [{ cred: -1 }]; }, 'credentials[0].cred', 'integer credential must be between 0 and 2^64-1'],
  ['fractional cred', (d) => { d.credentials = [{ cred: 1.5 }]; }, 'credentials[0].cred', 'must be an unsigned integer up to 2^64-1 or a string, got a number'],
  ['empty string cred', (d) => { d.credentials = [{ cred: '' }]; }, 'credentials[0].cred', 'string credential must be 1-64 UTF-8 bytes'],
  ['supervisor not a boolean', (d) => { d.credentials = [{ cred: 7, supervisor: 'yes' }]; }, 'credentials[0].supervisor', 'must be true or false, got "yes"'],
  ['65-byte string cred', (d) => { d.credentials = [{ cred: 'é'.repeat(32) + 'x' }]; }, 'credentials[0].cred', 'string credential must be 1-64 UTF-8 bytes'],
  ['duplicate cred', (d) => { d.credentials = [{ cred: 7 }, { cred: '7' }, { cred: 7, exempt: true }]; }, 'credentials[2].cred', 'duplicate credential "7" (first at credentials[0].cred)'],
  ['exempt not bool', (d) => { d.credentials = [{ cred: 7, exempt: 1 }]; }, 'credentials[0].exempt', 'must be true or false, got an integer'],
  ['wiegand card beyond bits', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 10, length: 20 } }]; }, 'wiegandFormats[0].card', 'bits 10..29 exceed the format\'s 26 bits'],
  ['wiegand facility beyond bits', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, facility: { start: 20, length: 8 }, card: { start: 1, length: 16 } }]; }, 'wiegandFormats[0].facility', 'bits 20..27 exceed the format\'s 26 bits'],
  ['wiegand parity bit outside', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 1, length: 24 }, parity: [{ bit: 26, covers: [1, 12], kind: 'even' }] }]; }, 'wiegandFormats[0].parity[0].bit', 'bit 26 is outside the format\'s 26 bits'],
  ['wiegand parity covers reversed', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 1, length: 24 }, parity: [{ bit: 0, covers: [12, 1], kind: 'even' }] }]; }, 'wiegandFormats[0].parity[0].covers', 'range [12, 1] must have from <= to'],
  ['wiegand parity covers beyond', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 1, length: 24 }, parity: [{ bit: 0, covers: [1, 30], kind: 'odd' }] }]; }, 'wiegandFormats[0].parity[0].covers', 'range [1, 30] exceeds the format\'s 26 bits'],
  ['wiegand covers not a pair', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 1, length: 24 }, parity: [{ bit: 0, covers: [1, 2, 3], kind: 'odd' }] }]; }, 'wiegandFormats[0].parity[0].covers', 'must have at most 2 items'],
  ['wiegand bad parity kind', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 1, length: 24 }, parity: [{ bit: 0, covers: [1, 2], kind: 'mark' }] }]; }, 'wiegandFormats[0].parity[0].kind', 'must be one of even | odd, got "mark"'],
  ['wiegand duplicate name', (d) => { d.wiegandFormats = [{ name: 'w', bits: 26, card: { start: 1, length: 24 } }, { name: 'w', bits: 34, card: { start: 1, length: 32 } }]; }, 'wiegandFormats[1].name', 'duplicate Wiegand format name "w" (first at wiegandFormats[0].name)'],
  ['uhppote port out of range', (d) => { d.uhppote = { port: 70000 }; }, 'uhppote.port', 'must be between 1 and 65535, got 70000'],
  ['uhppote unknown key', (d) => { d.uhppote = { bind: 'x' }; }, 'uhppote.bind', 'unknown key (allowed: host, port)'],
  ['webhook bad scheme', (d) => { d.webhooks = [{ url: 'ftp://example.com/x' }]; }, 'webhooks[0].url', 'must be an http or https URL, got "ftp://example.com/x"'],
  ['webhook not a url', (d) => { d.webhooks = [{ url: 'not a url' }]; }, 'webhooks[0].url', 'must be a URL, got "not a url"'],
  ['webhook bad kind', (d) => { d.webhooks = [{ url: 'https://example.com/h', kinds: ['decision', 'gossip'] }]; }, 'webhooks[0].kinds[1]', 'must be one of decision | violation | occupancy | action | stats, got "gossip"'],
];

for (const [name, mutate, path, message] of cases) {
  test(`error: ${name}`, () => {
    const d = baseDoc();
    mutate(d);
    const errors = errorsOf(d);
    assert.deepEqual(errors.find((e) => e.path === path), { path, message }, JSON.stringify(errors));
    // and the unmutated base loads, so the error really comes from the mutation
    assert.doesNotThrow(() => load(baseDoc()));
  });
}

test('all errors are collected and the first is the ApbError message', () => {
  const d = baseDoc();
  d.timezone = 'Nowhere/Land';
  d.areas[1].parent = 'lobby';
  d.readers[0].controller = 'nope';
  d.extra = true;
  try { load(d); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ApbError);
    assert.equal(e.code, 'invalid_config');
    const errors = (e.detail as { errors: { path: string; message: string }[] }).errors;
    assert.deepEqual(errors.map((x) => x.path).sort(), ['areas[1].parent', 'extra', 'readers[0].controller', 'timezone']);
    assert.equal(e.message, `${errors[0]!.path}: ${errors[0]!.message}`);
  }
});

test('a document that is not a valid site: precise whole-file errors', () => {
  const cases: [string, RegExp][] = [
    ['', /site file is empty/],
    ['   \n\n', /site file is empty/],
    ['# only a comment\n', /site file is empty/],
    ['null', /site file is empty/],
    ['- a\n- b\n', /must be a map of settings .* got a list/],
    ['42', /must be a map of settings .* got a number/],
    ['"text"', /must be a map of settings .* got a string/],
    ['site: [1, 2\n', /not valid YAML or JSON: .*line 2/],
    ['{"site": "x",, "timezone": "UTC"}', /not valid YAML or JSON: .*line 1, column/],
    ['site: a\nsite: b\n', /not valid YAML or JSON: Map keys must be unique at line 2, column 1/],
    ['site: *nowhere\n', /Unresolved alias/],
    ['site: x\n\ttimezone: UTC\n', /not valid YAML or JSON/],
  ];
  for (const [text, re] of cases) {
    const errors = errorsOf(text);
    assert.equal(errors[0]!.path, '', text);
    assert.match(errors[0]!.message, re, `${JSON.stringify(text)} -> ${errors[0]!.message}`);
    assert.throws(() => loadSiteText(text, 'mine.yaml'), (e: ApbError) => e.code === 'invalid_config' && (e.message.includes('mine.yaml') || !/site file/.test(e.message)));
  }
});

test('a missing file is a clear invalid_config error', () => {
  assert.throws(() => loadSiteFile('/nonexistent/dir/site.yaml'), (e: ApbError) => e.code === 'invalid_config' && e.message === 'cannot read site file "/nonexistent/dir/site.yaml": no such file');
});

test('integer credentials keep full 64-bit precision; strings stay strings', () => {
  const text = [
    'site: s', 'timezone: UTC', 'credentials:',
    '  - cred: 18446744073709551615', '  - cred: 9007199254740993', '  - cred: 123', '  - cred: "123"', '  - cred: 0x10',
  ].join('\n');
  const { config } = loadSiteText(text);
  assert.deepEqual(config.credentials.map((c) => c.cred), [18446744073709551615n, 9007199254740993n, 123, '123', 16]);
  assert.equal(typeof config.credentials[2]!.cred, 'number');
  // JSON too
  assert.equal(loadSiteText('{"site":"s","timezone":"UTC","credentials":[{"cred":18446744073709551614}]}').config.credentials[0]!.cred, 18446744073709551614n);
  const over = errorsOf('site: s\ntimezone: UTC\ncredentials:\n  - cred: 18446744073709551616\n');
  assert.deepEqual(over, [{ path: 'credentials[0].cred', message: 'integer credential must be between 0 and 2^64-1' }]);
  // duplicate across representations of the same integer
  const dup = errorsOf('site: s\ntimezone: UTC\ncredentials:\n  - cred: 9007199254740993\n  - cred: 9007199254740993\n');
  assert.equal(dup[0]!.path, 'credentials[1].cred');
});

test('YAML 1.2 scalars: off/on/yes stay strings, unquoted times are strings', () => {
  const { config } = loadSiteText('site: s\ntimezone: UTC\nareas:\n  - id: a\n    entry: off\n    resetAt: [03:00]\n    schedule:\n      - {days: [mon], from: 08:00, to: 18:00}\n');
  assert.equal(config.areas[0]!.entry, 'off');
  assert.deepEqual(config.areas[0]!.resetAt, ['03:00']);
  assert.deepEqual(config.areas[0]!.schedule, [{ days: ['mon'], from: '08:00', to: '18:00' }]);
});

test('areas may name a parent declared later; deep nesting is bounded', () => {
  const d = baseDoc();
  d.areas = [{ id: 'inner', parent: 'outer' }, { id: 'outer' }];
  d.readers = [{ id: 'r', from: 'outside', to: 'inner', controller: 'c1' }];
  const { site } = load(d);
  assert.deepEqual([...site.parent], [-1, 2, 0]);
  assert.deepEqual([...site.depth], [0, 2, 1]);
  const deep = baseDoc();
  deep.readers = [];
  deep.areas = Array.from({ length: 257 }, (_, i) => ({ id: `a${i}`, parent: i === 0 ? 'outside' : `a${i - 1}` }));
  const errs = errorsOf(deep);
  assert.deepEqual(errs, [{ path: 'areas[255].parent', message: 'areas nest deeper than 255 levels' }]);
  deep.areas.length = 255; // depths 1..255
  assert.equal(load(deep).site.depth[255], 255);
});

test('the Wiegand adapter\'s geometry rules run on a typed config (built-in names, overlapping bits)', () => {
  const d = baseDoc();
  d.wiegandFormats = [{ name: 'H10301', bits: 26, card: { start: 1, length: 24 } }];
  const e = errorsOf(d);
  assert.equal(e[0]!.path, 'wiegandFormats[0].name');
  assert.match(e[0]!.message, /built-in/);
  d.wiegandFormats = [{ name: 'mine', bits: 26, facility: { start: 1, length: 10 }, card: { start: 5, length: 16 } }];
  assert.ok(errorsOf(d).some((x) => x.path.startsWith('wiegandFormats[0]')));
  d.wiegandFormats = [{ name: 'mine', bits: 26, facility: { start: 1, length: 8 }, card: { start: 9, length: 16 }, parity: [{ bit: 0, covers: [1, 12], kind: 'even' }, { bit: 25, covers: [13, 24], kind: 'odd' }] }];
  assert.equal(load(d).config.wiegandFormats[0]!.name, 'mine');
});

test('issue 10 item 12: a UHPPOTE address is optional on a loopback listener and accepted with a network listener', () => {
  const d = baseDoc();
  Object.assign(d.controllers[0], { protocol: 'uhppote', serial: 1 });
  d.uhppote = {};
  assert.equal(load(d).config.controllers[0]!.address, undefined);
  d.uhppote = { host: '::' };
  d.controllers[0].address = '192.0.2.10';
  assert.equal(load(d).config.controllers[0]!.address, '192.0.2.10');
});

test('issue 10 item 15: no config error quotes a token value', () => {
  const secret = 'hunter2-SECRET-value';
  const variants: ((d: any) => void)[] = [
    (d) => { d.controllers[0].token = secret + ' x'; },        // whitespace
    (d) => { d.users[0].token = secret.slice(0, 10); },          // too short
    (d) => { d.users[0].token = secret + 'y'.repeat(300); },     // too long
    (d) => { d.controllers.push({ id: 'c2', token: d.controllers[0].token = secret }); }, // duplicate
  ];
  for (const v of variants) {
    const d = baseDoc();
    v(d);
    const text = JSON.stringify(errorsOf(d));
    assert.ok(!text.includes(secret.slice(0, 7)), text);
  }
});
