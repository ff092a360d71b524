/**
 * The bridge file: defaults, every kind of mistake named with its path, the
 * readers checked against the site file, secrets never quoted, and the
 * command line (exit 2 for a wrong command line, 1 with every error listed
 * for a wrong file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBridgeText } from '../../src/bridge/config.js';
import { ApbError } from '../../src/errors.js';
import { MAIN } from './util.js';

const TOKEN = 'gate-token-0123456789abcdef';
const base = (readers: string, extra = '') => `engine: { url: "ws://127.0.0.1:8080", token: ${TOKEN} }
data: ./bridge-data
${extra}ports:
  - path: /dev/ttyUSB0
    readers:
${readers}`;
const ONE = '      - { id: door-1, address: 1 }\n';

function errors(text: string, dir?: string): string[] {
  try { loadBridgeText(text, 'bridge.yaml', dir); } catch (e) {
    assert.ok(e instanceof ApbError && e.code === 'invalid_config', String(e));
    return ((e as ApbError).detail as { errors: { path: string; message: string }[] }).errors.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  }
  assert.fail('accepted');
}

test('a minimal file gets every default', () => {
  const c = loadBridgeText(base(ONE), 'bridge.yaml', '/srv/gate');
  const f = c.file;
  assert.equal(f.data, '/srv/gate/bridge-data', 'relative to the file');
  assert.deepEqual(f.engine, { url: 'ws://127.0.0.1:8080', token: TOKEN, deadline: 150, reconnectMin: 250, reconnectMax: 10000, pingEvery: 5000 });
  assert.deepEqual(f.http, { host: '127.0.0.1', port: 9180 });
  const p = f.ports[0]!;
  assert.deepEqual([p.baud, p.pollInterval, p.replyTimeout, p.retries, p.offlineAfter], [9600, 100, 200, 2, 8000]);
  assert.deepEqual(p.readers[0], { id: 'door-1', address: 1, reader: 0, check: 'crc', policy: 'deny' });
  assert.equal(c.site, null);
  assert.equal(c.keys.size, 0);
});

test('mistakes are named by path, all at once', () => {
  const e = errors(base(`      - { id: door-1, address: 127, policy: maybe, colour: red }
      - { id: door-1, address: 3, secure: { scbk: "0011" } }
      - { id: door-3, address: 3, policy: local, secure: { scbk: "303132333435363738393a3b3c3d3e3f" } }
`));
  assert.deepEqual(e, [
    'ports[0].readers[0].colour: unknown key (allowed: id, address, reader, check, policy, secure, output, passageInput)',
    'ports[0].readers[0].address: must be between 0 and 126, got 127',
    'ports[0].readers[0].policy: must be one of deny | grant | local, got "maybe"',
    'ports[0].readers[1].secure.scbk: must be 32 hexadecimal digits (16 bytes)',
  ]);
  const e2 = errors(base(`      - { id: door-1, address: 3 }
      - { id: door-1, address: 3, secure: { scbk: "303132333435363738393a3b3c3d3e3f" }, policy: local }
`));
  assert.deepEqual(e2, [
    'ports[0].readers[1].reader: address 3 reader 0 is also ports[0].readers[0] (one entry per reader head; a PD with several heads lists each with its own `reader` number)',
    'ports[0].readers[1].secure: must be the same as ports[0].readers[0].secure: both are heads of the PD at address 3, which has one secure channel',
    'ports[0].readers[1].id: reader "door-1" is also ports[0].readers[0].id',
    'ports[0].readers[1].secure.scbk: must not be the default key SCBK-D (30..3F), which every reader in install mode accepts: generate a random key per reader',
    'ports[0].readers[1].policy: local needs `site:` (the site file the engine runs) to decide',
  ]);
  const e3 = errors(`engine: { url: "http://x", token: short }\ndata: d\nports: []\n`);
  assert.ok(e3.includes('engine.url: must be a ws:// or wss:// URL, e.g. ws://10.0.0.5:8080, got "http://x"'), e3.join('\n'));
  assert.ok(e3.some((x) => x.startsWith('engine.token: must be at least 16 characters long')), e3.join('\n'));
  assert.ok(e3.includes('ports: must have at least 1 item'));
  assert.ok(!e3.join('\n').includes('short'), 'the token is never quoted');
  assert.deepEqual(errors(base(ONE).replace('/dev/ttyUSB0', '/dev/ttyUSB0\n    baud: 12345\n    replyTimeout: 900\n    offlineAfter: 800')), [
    'ports[0].baud: must be one of 9600, 19200, 38400, 57600, 115200, 230400, got 12345',
    'ports[0].offlineAfter: must be longer than replyTimeout (900 ms)',
  ]);
  assert.match(errors('engine: [\n')[0]!, /^bridge\.yaml is not valid YAML or JSON: .* at line 2, column 1$/);
  assert.deepEqual(errors('- 1\n'), ['bridge.yaml must be a map of settings (engine, data, ports, ...)']);
});

test('a PD with several reader heads: one entry per head, sharing the PD\'s check and secure channel', () => {
  const c = loadBridgeText(base(`      - { id: gate-in, address: 1, reader: 0 }
      - { id: gate-out, address: 1, reader: 1, passageInput: 2 }
      - { id: door-2, address: 2 }
`), 'bridge.yaml', '/srv');
  assert.deepEqual(c.file.ports[0]!.readers.map((r) => [r.id, r.address, r.reader]), [['gate-in', 1, 0], ['gate-out', 1, 1], ['door-2', 2, 0]]);
  assert.deepEqual(errors(base(`      - { id: gate-in, address: 1, reader: 0 }
      - { id: gate-out, address: 1, reader: 1, check: checksum }
`)), ['ports[0].readers[1].check: must be the same as ports[0].readers[0].check ("crc"): both are heads of the PD at address 1']);
});

test('with the site file: the token\'s controller, its readers, and a readable site', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-bridge-cfg-'));
  try {
    writeFileSync(join(dir, 'site.yaml'), `site: s
timezone: UTC
areas: [{ id: hall }]
readers:
  - { id: door-1, from: outside, to: hall, controller: gate }
  - { id: desk-1, from: outside, to: hall, controller: desk }
controllers:
  - { id: gate, token: ${TOKEN} }
  - { id: desk, token: desk-token-0123456789abcdef, protocol: osdp }
`);
    const ok = loadBridgeText(base(ONE, 'site: site.yaml\n'), 'bridge.yaml', dir);
    assert.equal(ok.controller, 'gate');
    assert.equal(ok.site?.site.readerIds.length, 2);
    assert.deepEqual(errors(base(ONE + '      - { id: desk-1, address: 2 }\n      - { id: nope, address: 4 }\n', 'site: site.yaml\n'), dir), [
      'ports[0].readers[1].id: reader "desk-1" belongs to controller "desk", not to "gate" (the token\'s)',
      'ports[0].readers[2].id: the site file has no reader "nope"',
    ]);
    assert.deepEqual(errors(base(ONE, 'site: site.yaml\n').replace(TOKEN, 'desk-token-0123456789abcdef'), dir), [
      'engine.token: belongs to controller "desk", whose protocol is osdp: the bridge speaks the native protocol (set protocol: native)',
      'ports[0].readers[0].id: reader "door-1" belongs to controller "gate", not to "desk" (the token\'s)',
    ]);
    assert.deepEqual(errors(base(ONE, 'site: site.yaml\n').replace(TOKEN, 'nobody-token-0123456789abcdef'), dir), [`engine.token: is not the token of any controller in the site file ${join(dir, 'site.yaml')}`]);
    assert.deepEqual(errors(base(ONE, 'site: missing.yaml\n'), dir), [`site: cannot read ${join(dir, 'missing.yaml')}: no such file`]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('apb bridge on the command line: exit 2 for the command line, 1 with every error for the file', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, APB_LOG_LEVEL: 'warn' } });
  const none = run(['bridge']);
  assert.equal(none.status, 2);
  assert.equal(none.stderr, 'apb bridge: --config is required\n');
  const dir = mkdtempSync(join(tmpdir(), 'apb-bridge-cli-'));
  try {
    const missing = run(['bridge', '--config', join(dir, 'nope.yaml')]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `apb bridge: invalid_config: cannot read bridge file "${join(dir, 'nope.yaml')}": no such file\n`);
    writeFileSync(join(dir, 'b.yaml'), base('      - { id: a, address: 200 }\n      - { id: b, address: 1, policy: open }\n'));
    const bad = run(['bridge', '--config', join(dir, 'b.yaml')]);
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, 'apb bridge: invalid_config: 2 errors\n'
      + '  ports[0].readers[0].address: must be between 0 and 126, got 200\n'
      + '  ports[0].readers[1].policy: must be one of deny | grant | local, got "open"\n');
    assert.equal(run(['bridge', '--config', join(dir, 'b.yaml'), '--log-level', 'loud']).stderr, 'apb bridge: --log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
