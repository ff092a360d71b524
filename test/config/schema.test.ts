import { test } from 'node:test';
import assert from 'node:assert/strict';
import { siteJsonSchema } from '../../src/config/schema.js';
import { load } from './util.js';

type J = Record<string, any>;

/** A site using every key the file format has, at least once. */
function maximal(): J {
  return {
    site: 'max', timezone: 'Europe/Paris', forgetAfter: 86400, expectedCredentials: 2000000, maxClockSkew: 600,
    areas: [
      { id: 'hall', parent: 'outside', entry: 'hard', exit: 'soft', strict: true, presenceTimeout: 60,
        schedule: [{ days: ['mon', 'sun'], from: '22:00', to: '06:00' }], resetAt: ['03:00'], maxOccupancy: 5, commitOn: 'passage', passageTimeout: 7, supervision: 'soft' },
    ],
    readers: [
      { id: 'r1', from: 'outside', to: 'hall', controller: 'o', reuseLockout: 10, reuseMode: 'soft', osdp: { address: 1, reader: 1 } },
      { id: 'r2', from: 'hall', to: 'outside', controller: 'u', uhppote: { door: 2, direction: 'out' } },
    ],
    controllers: [
      { id: 'o', token: 't-o-long-test-token', protocol: 'osdp', rateLimit: 50 },
      { id: 'u', token: 't-u-long-test-token', protocol: 'uhppote', serial: 423187757, address: '192.0.2.10' },
    ],
    credentials: [{ cred: 42, exempt: true, supervisor: true }],
    users: [{ name: 'n', token: 't-n-long-test-token', role: 'admin' }],
    wiegandFormats: [{ name: 'site-26', bits: 26, facility: { start: 1, length: 8 }, card: { start: 9, length: 16 },
      parity: [{ bit: 0, covers: [1, 12], kind: 'even' }, { bit: 25, covers: [13, 24], kind: 'odd' }] }],
    uhppote: { host: '127.0.0.1', port: 60001 },
    cluster: { servers: ['nats://10.0.0.1:4222'], node: 'gate-a', streamReplicas: 3, leaseMs: 2000, snapshotEvery: 100000 },
    webhooks: [{ url: 'https://example.com/hook', kinds: ['violation'] }],
  };
}

/** Resolves the branch of an anyOf that describes `v`. */
function branch(s: J, v: unknown): J {
  if (!s.anyOf) return s;
  const kind = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v === 'number' ? 'integer' : typeof v === 'object' ? 'object' : 'string';
  const b = s.anyOf.find((x: J) => x.type === kind || (kind === 'string' && (x.const !== undefined || x.enum)));
  assert.ok(b, `no branch for ${kind}`);
  return b;
}

/** Records every key path of the value, checking each is in the schema. */
function walk(s: J, v: unknown, path: string, seen: Set<string>): void {
  s = branch(s, v);
  if (s.type === 'object') {
    assert.equal(s.additionalProperties, false, `${path}: additionalProperties`);
    for (const [k, x] of Object.entries(v as J)) {
      assert.ok(k in s.properties, `${path}.${k} is not in the schema`);
      seen.add(`${path}.${k}`);
      walk(s.properties[k], x, `${path}.${k}`, seen);
    }
  } else if (s.type === 'array') {
    for (const x of v as unknown[]) walk(s.items, x, `${path}[]`, seen);
  } else {
    assert.ok(s.type || s.enum || s.const !== undefined, `${path}: node without type`);
  }
}

/** Every property path the schema declares; each must have a description. */
function declared(s: J, path: string, out: Set<string>): Set<string> {
  for (const b of s.anyOf ?? [s]) {
    if (b.type === 'object') {
      for (const [k, p] of Object.entries(b.properties as J)) {
        assert.ok(typeof p.description === 'string', `${path}.${k} has no description`);
        out.add(`${path}.${k}`);
        declared(p, `${path}.${k}`, out);
      }
    } else if (b.type === 'array') declared(b.items, `${path}[]`, out);
  }
  return out;
}

test('the JSON Schema is JSON, draft 2020-12, and covers every key of a maximal site', () => {
  const schema = JSON.parse(JSON.stringify(siteJsonSchema())) as J;
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  const doc = maximal();
  assert.doesNotThrow(() => load(doc), 'the maximal example is a valid site');
  const seen = new Set<string>();
  walk(schema, doc, '', seen);
  assert.deepEqual([...declared(schema, '', new Set())].sort(), [...seen].sort());
  assert.ok(seen.size >= 60, `covered ${seen.size} keys`);
  assert.deepEqual(schema.required, ['site', 'timezone']);
});

test('JSON Schema defaults equal the defaults the loader fills in', () => {
  const schema = siteJsonSchema() as J;
  const input: J = { site: 's', timezone: 'UTC', areas: [{ id: 'a' }], readers: [{ id: 'r', from: 'outside', to: 'a', controller: 'c' }], controllers: [{ id: 'c', token: 't-long-test-token' }] };
  const { config } = load(input);
  /** checks every defaulted key the input leaves out; returns how many */
  const check = (props: J, given: J, value: J, where: string) => {
    let n = 0;
    for (const [k, p] of Object.entries(props)) {
      if (k in given) continue;
      if ('default' in p) { assert.deepEqual(value[k], p.default, `${where}.${k}`); n++; }
    }
    return n;
  };
  assert.equal(check(schema.properties, input, config, ''), 7);
  assert.equal(check(schema.properties.areas.items.properties, input.areas[0], config.areas[0]!, 'areas[]'), 11);
  assert.equal(check(schema.properties.readers.items.properties, input.readers[0], config.readers[0]!, 'readers[]'), 2);
  assert.equal(check(schema.properties.controllers.items.properties, input.controllers[0], config.controllers[0]!, 'controllers[]'), 2);
  assert.deepEqual(schema.properties.uhppote.properties.port.default, 60001);
});
