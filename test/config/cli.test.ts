import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSiteFile } from '../../src/config/load.js';
import { CLI, DEMO } from './util.js';

const apb = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });

test('apb validate: good file -> ok, exit 0; bad file -> every error, exit 1; missing file -> clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-validate-'));
  try {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'site: s\ntimezone: UTC\nareas: [{id: a}]\nreaders: [{id: r, from: outside, to: a, controller: c}]\ncontrollers: [{id: c, token: t-long-test-token}]\n');
    let r = apb('validate', '--config', good);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ok: .*good\.yaml: site "s", 1 areas, 1 readers, 1 controllers\n$/);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ site: 's', timezone: 'UTC', areas: [{ id: 'a', parent: 'lobby', entry: 'maybe' }], readers: [{ id: 'r', from: 'outside', to: 'a', controller: 'c' }], colour: 1 }));
    r = apb('validate', '--config', bad);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stdout.trimEnd().split('\n').sort(), [
      'areas[0].entry: must be one of off | soft | hard, got "maybe"',
      'areas[0].parent: unknown area "lobby"',
      'colour: unknown key (allowed: site, timezone, forgetAfter, expectedCredentials, maxClockSkew, areas, readers, controllers, credentials, users, wiegandFormats, uhppote, cluster, webhooks)',
      'readers[0].controller: unknown controller "c"',
    ]);
    assert.match(r.stderr, /4 errors/);

    const corrupt = join(dir, 'corrupt.yaml');
    writeFileSync(corrupt, 'site: [\n');
    r = apb('validate', '--config', corrupt);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /corrupt\.yaml is not valid YAML or JSON: .* at line \d+, column \d+/);

    r = apb('validate', '--config', join(dir, 'missing.yaml'));
    assert.equal(r.status, 1);
    assert.equal(r.stdout, `cannot read site file "${join(dir, 'missing.yaml')}": no such file\n`);

    r = apb('validate');
    assert.equal(r.status, 2); // a usage error (issue 10 item 22)
    assert.equal(r.stderr, 'apb validate: --config is required\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('apb schema prints the JSON Schema', () => {
  const r = apb('schema');
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.ok(s.properties.areas.items.properties.commitOn.enum.includes('passage'));
});

test('the bundled demo sites validate (in process and through the CLI) with the documented tokens', () => {
  const files = readdirSync(DEMO).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.includes('stadium.yaml') && files.includes('office.yaml'));
  for (const f of files) {
    assert.doesNotThrow(() => loadSiteFile(join(DEMO, f)), f);
    const r = apb('validate', '--config', join(DEMO, f));
    assert.equal(r.status, 0, r.stdout + r.stderr);
  }
  const { config } = loadSiteFile(join(DEMO, 'stadium.yaml'));
  assert.deepEqual(config.controllers.map((c) => [c.id, c.token]), [
    ['gate-north', 'demo-gate-north-token'], ['gate-south', 'demo-gate-south-token'], ['turnstiles', 'demo-turnstiles-token'], ['vip', 'demo-vip-door-token'], ['staff', 'demo-staff-doors-token']]);
  assert.deepEqual(config.users.map((u) => [u.name, u.token, u.role]), [
    ['viewer', 'demo-viewer-token', 'viewer'], ['desk', 'demo-operator-token', 'operator'], ['admin', 'demo-admin-token', 'admin']]);
  assert.equal(config.timezone, 'Europe/London');
  assert.ok(config.credentials.some((c) => c.exempt));
  assert.ok(config.readers.some((r) => r.reuseLockout > 0));
  assert.ok(config.areas.some((a) => a.commitOn === 'passage' && a.parent !== 'outside'));
  assert.ok(config.areas.some((a) => a.strict && a.maxOccupancy !== null && a.entry === 'hard'));
  assert.ok(config.areas.some((a) => a.resetAt.length > 0));
});
