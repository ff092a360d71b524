/**
 * The engine link against a real engine (the server in process, LMDB in a
 * temp directory, 127.0.0.1): one frame per event-loop turn of messages,
 * 64-bit ids and timestamps as integers, a wrong token refused, badges
 * failing fast while the link is down, uploads and passages kept and sent
 * again with their ids after the engine restarts, reconnect backoff.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { EngineLink } from '../../src/bridge/link/engine-link.js';
import { ApbError } from '../../src/errors.js';
import { waitFor } from './sim-pd.js';
import { freePort } from './util.js';

const TOKEN = 'link-token-0123456789abcdef';
const SITE = `site: link
timezone: UTC
areas: [{ id: hall, entry: hard }]
readers: [{ id: r1, from: outside, to: hall, controller: gate }]
controllers: [{ id: gate, token: ${TOKEN} }]
users: [{ name: v, token: viewer-token-0123456789abcdef, role: viewer }]
`;
const dir = mkdtempSync(join(tmpdir(), 'apb-link-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function capture(): { log: Logger; lines: () => any[] } {
  const out: string[] = [];
  const log: Logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }));
  return { log, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

const serve = (port: number): Promise<RunningServer> => startServer({ configText: SITE, data: join(dir, 'engine'), host: '127.0.0.1', port, logLevel: 'silent' });
const link = (port: number, token = TOKEN, log: Logger = pino({ level: 'silent' })) => new EngineLink({ url: `ws://127.0.0.1:${port}`, token, reconnectMin: 50, reconnectMax: 400, pingEvery: 2000 }, log);

test('batches a turn\'s messages into one frame; 64-bit ids and ts stay integers', async () => {
  const port = await freePort();
  const s = await serve(port);
  const l = link(port);
  try {
    l.start();
    await waitFor(() => l.up, 3000, 'up');
    const base = Date.now() * 1000;
    const replies = await Promise.all([1, 2, 3, 4, 5].map((k) => l.send({ t: 'badge', id: base + k, cred: `1:${k}`, reader: 'r1', ts: Date.now() })));
    assert.equal(l.counters.framesOut, 1, 'one frame for five messages');
    assert.deepEqual(replies.map((r) => [r.t, r.grant, Number(r.id)]), [1, 2, 3, 4, 5].map((k) => ['decision', true, base + k]));
    const again = await l.send({ t: 'badge', id: base + 1, cred: '1:1', reader: 'r1', ts: Date.now() });
    assert.deepEqual(again, replies[0], 'a known id gets its first reply');
    const err = await l.send({ t: 'badge', id: base + 9, cred: '', reader: 'r1' });
    assert.equal(err.t, 'error');
    assert.equal(err.code, 'bad_message', 'an error reply is a reply, not a failure');
  } finally { await l.stop(); await s.close(); }
});

test('a wrong token never comes up and says why', async () => {
  const port = await freePort();
  const s = await serve(port);
  const c = capture();
  const l = link(port, 'wrong-token-0123456789abcdef', c.log);
  try {
    l.start();
    await waitFor(() => c.lines().filter((x) => x.msg === 'engine link: cannot connect').length >= 2, 3000, 'two refusals');
    assert.equal(l.up, false);
    assert.match(c.lines().find((x) => x.msg === 'engine link: cannot connect').err, /HTTP 401.*wrong controller token/);
    assert.ok(!JSON.stringify(c.lines()).includes('wrong-token'), 'the token is not logged');
    await assert.rejects(l.send({ t: 'badge', id: 1, cred: '1:1', reader: 'r1' }), (e: ApbError) => e.code === 'not_ready');
  } finally { await l.stop(); await s.close(); }
});

test('engine restart: badges fail fast, uploads wait and go out again with their ids', async () => {
  const port = await freePort();
  let s = await serve(port);
  const l = link(port);
  try {
    l.start();
    await waitFor(() => l.up, 3000, 'up');
    const id0 = Date.now() * 1000 + 100;
    await s.close();
    await waitFor(() => !l.up, 3000, 'down');
    const t0 = Date.now();
    await assert.rejects(l.send({ t: 'badge', id: id0, cred: '2:2', reader: 'r1' }), (e: ApbError) => e.code === 'not_ready');
    assert.ok(Date.now() - t0 < 50, 'at once');
    const upload = l.send({ t: 'offline', id: id0 + 1, cred: '2:2', reader: 'r1', ts: Date.now(), granted: true }, true);
    assert.equal(l.queued, 1);
    await new Promise((r) => setTimeout(r, 500)); // a few refused reconnects
    s = await serve(port);
    const rep = await upload;
    assert.deepEqual([rep.t, Number(rep.id)], ['ack', id0 + 1]);
    assert.equal(l.counters.connects, 2);
    const st = await (await fetch(`http://127.0.0.1:${port}/v1/credentials/s:2%3A2`, { headers: { authorization: 'Bearer viewer-token-0123456789abcdef' } })).json() as { location: string };
    assert.equal(st.location, 'hall', 'the upload was applied');
  } finally { await l.stop(); await s.close(); }
});
