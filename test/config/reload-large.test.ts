/**
 * Issue 10 item 20: a large site is parsed, checked and compiled off the
 * main thread during a reload (loadSiteTextAsync), errors cross the thread
 * intact, reloads resolve in the order they were asked for, and a running
 * server answers decisions while a large reload is being parsed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApbError } from '../../src/errors.js';
import { loadSiteText, loadSiteTextAsync, OFF_THREAD_BYTES } from '../../src/config/load.js';
import { http, siteYaml, start, tempDir, TOKENS } from '../server/util.js';

/** The server test site plus `n` more readers on controller c2 (about 80 bytes each). */
function bigSite(n: number, lockout = 0): string {
  const extra = Array.from({ length: n }, (_, i) => `  - { id: extra-${i}, from: outside, to: stadium, controller: c2, reuseLockout: ${lockout} }\n`).join('');
  return siteYaml().replace('readers:\n', 'readers:\n' + extra);
}

test('loadSiteTextAsync: a large site loads in a worker to the same tables; its errors keep code, message and detail', async () => {
  const text = bigSite(5000);
  assert.ok(text.length > OFF_THREAD_BYTES);
  const a = await loadSiteTextAsync(text), b = loadSiteText(text);
  assert.deepEqual(a.site, b.site);
  assert.equal(a.text, text);
  const bad = text.replace('to: stadium, controller: c2, reuseLockout: 0 }\n', 'to: nowhere, controller: c2, reuseLockout: 0 }\n');
  const err = await loadSiteTextAsync(bad).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ApbError);
  assert.equal(err.code, 'invalid_config');
  assert.equal(err.message, 'readers[0].to: unknown area "nowhere"');
  assert.deepEqual((err.detail as { errors: unknown[] }).errors, [{ path: 'readers[0].to', message: 'unknown area "nowhere"' }]);
});

test('loadSiteTextAsync: calls resolve in call order (a small reload after a large one applies last)', async () => {
  const order: string[] = [];
  await Promise.all([
    loadSiteTextAsync(bigSite(5000)).then(() => order.push('large')),
    loadSiteTextAsync(siteYaml()).then(() => order.push('small')),
    loadSiteTextAsync('site: [').then(() => order.push('never'), () => order.push('invalid')),
  ]);
  assert.deepEqual(order, ['large', 'small', 'invalid']);
});

test('a server keeps deciding while a large reload is parsed', async () => {
  const t = tempDir('apb-reload-large-');
  const file = join(t.dir, 'site.yaml');
  writeFileSync(file, bigSite(12000));
  const srv = await start({ configPath: file, configText: undefined });
  try {
    writeFileSync(file, bigSite(12000, 5));
    const events: string[] = [];
    const reload = srv.reload('test').then((r) => { events.push('reloaded'); return r; });
    // a decision asked after the reload started is answered before the reload is done (the parse runs in a worker)
    const d = await http(srv.url, 'POST', '/v1/decide', { token: TOKENS.c1, body: { t: 'badge', id: 1, cred: 4242, reader: 'g-in' } });
    events.push('decided');
    assert.equal(d.status, 200);
    const report = await reload;
    assert.deepEqual(events, ['decided', 'reloaded']);
    assert.equal(report.readersChanged.length, 12000);
  } finally {
    await srv.close();
    t.cleanup();
  }
});
