/**
 * Issue 10 items 12 and 20: the UHPPOTE listener accepts a controller's
 * datagrams only from its configured `address` (a spoofed packet with a
 * known serial is dropped and counted), listens on loopback by default, a
 * uhppote controller's token cannot act as a native controller, and a
 * reload restarts the listener when `uhppote` changes. Loopback only:
 * 127.0.0.2 plays the spoofing host (Linux routes all of 127/8 to lo).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startUhppoteListener } from '../../src/adapters/uhppote-listener.js';
import { encodeEventPacket, TYPE_SWIPE } from '../../src/adapters/uhppote/packet.js';
import { adapterSite } from './util.js';
import { Controller, http, siteYaml, start, tempDir, TOKENS, until } from '../server/util.js';

const SERIAL = 423187757;
const UP_TOKEN = 'tok-up-long-test-token';

/** A granted swipe at door 1 "in" of card 90:<card>, dated 2025-01-02 10:00:00 local. */
function swipe(index: number, card: number): Uint8Array {
  return encodeEventPacket({
    som: 0x17, serial: SERIAL, index, type: TYPE_SWIPE, granted: true, door: 1, direction: 1, card: 9_000_000 + card,
    time: { year: 2025, month: 1, day: 2, hour: 10, minute: 0, second: 0 }, reason: 1,
  } as Parameters<typeof encodeEventPacket>[0]);
}

async function udpFrom(address: string): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r, j) => { s.once('error', j); s.bind(0, address, () => r()); });
  return s;
}
const send = (s: Socket, p: Uint8Array, port: number) => new Promise<void>((r, j) => s.send(p, port, '127.0.0.1', (e) => (e ? j(e) : r())));

async function freeUdpPort(): Promise<number> {
  const s = await udpFrom('127.0.0.1');
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function uhppoteSite(udpPort: number, address = '127.0.0.1'): string {
  return siteYaml(`uhppote: { host: 127.0.0.1, port: ${udpPort} }\n`)
    .replace('controllers:\n', `controllers:\n  - { id: up, token: ${UP_TOKEN}, protocol: uhppote, serial: ${SERIAL}, address: ${address} }\n`)
    .replace('readers:\n', 'readers:\n  - { id: u-in, from: outside, to: stadium, controller: up, uhppote: { door: 1, direction: in } }\n');
}

const known = async (url: string, card: number): Promise<boolean> =>
  (await http(url, 'GET', `/v1/credentials/s:90%3A${card}`, { token: TOKENS.viewer })).body.known === true;

test('listener: a packet from a source other than the controller\'s address is dropped and counted, never applied', async () => {
  const site = adapterSite({
    controllers: [{ id: 'uh-1', token: UP_TOKEN, protocol: 'uhppote', serial: SERIAL, address: '127.0.0.1' }],
    readers: [{ id: 'g', from: 'outside', to: 'b', controller: 'uh-1', reuseLockout: 0, reuseMode: 'hard', uhppote: { door: 1, direction: 'in' } }],
  });
  const events: unknown[] = [], rejected: [number, string][] = [];
  const listener = await startUhppoteListener({
    host: '127.0.0.1', port: 0, site: () => site,
    onEvent: (_c, m) => events.push(m), onMalformed: () => undefined, onRejected: (serial, from) => rejected.push([serial, from]),
  });
  const spoof = await udpFrom('127.0.0.2'), real = await udpFrom('127.0.0.1');
  try {
    await send(spoof, swipe(1, 1), listener.port);
    await until(() => listener.stats().received === 1, 3000, 'the spoofed datagram');
    await send(real, swipe(2, 2), listener.port);
    await until(() => events.length === 1, 3000, 'the genuine datagram');
    assert.deepEqual(rejected.map(([s, f]) => [s, f.split(':')[0]]), [[SERIAL, '127.0.0.2']]);
    assert.equal((events[0] as { id: number }).id, 2);
    assert.deepEqual(listener.stats(), { received: 2, events: 1, ignored: 0, malformed: 0, rejected: 1 });
  } finally {
    spoof.close(); real.close();
    await listener.close();
  }
});

test('server: a spoofed source is refused and counted in apb_uhppote_rejected_total; the uhppote token cannot act as a native controller', async () => {
  const udpPort = await freeUdpPort();
  const srv = await start({ configText: uhppoteSite(udpPort) });
  const spoof = await udpFrom('127.0.0.2'), real = await udpFrom('127.0.0.1');
  try {
    await send(spoof, swipe(1, 501), udpPort);
    await until(async () => /^apb_uhppote_rejected_total 1$/m.test((await http(srv.url, 'GET', '/metrics')).text), 3000, 'the rejected count');
    assert.equal(await known(srv.url, 501), false);
    await send(real, swipe(2, 502), udpPort);
    await until(() => known(srv.url, 502), 3000, 'the genuine swipe to be applied');
    assert.equal(await known(srv.url, 501), false);

    // the uhppote controller's token: refused on the socket and on POST /v1/decide, with the reason
    const err = await Controller.connect(srv.ws, UP_TOKEN).then(() => null, (e: { status?: number }) => e);
    assert.equal(err?.status, 401);
    const d = await http(srv.url, 'POST', '/v1/decide', { token: UP_TOKEN, body: { t: 'badge', id: 1, cred: 7, reader: 'u-in' } });
    assert.equal(d.status, 403);
    assert.equal(d.body.code, 'forbidden');
    assert.match(d.body.message, /protocol uhppote/);
    assert.equal(await known(srv.url, 7), false);
  } finally {
    spoof.close(); real.close();
    await srv.close();
  }
});

test('reload: a changed uhppote section restarts the listener and the report names it', async () => {
  const t = tempDir('apb-uhppote-reload-');
  const file = join(t.dir, 'site.yaml');
  const p1 = await freeUdpPort();
  writeFileSync(file, uhppoteSite(p1));
  const srv = await start({ configPath: file, configText: undefined });
  const real = await udpFrom('127.0.0.1');
  try {
    assert.equal(srv.uhppotePort(), p1);
    const p2 = await freeUdpPort();
    writeFileSync(file, uhppoteSite(p2));
    const report = await srv.reload('test');
    assert.deepEqual(report.settingsChanged, ['uhppote']);
    assert.equal(srv.uhppotePort(), p2);
    await send(real, swipe(3, 601), p2);
    await until(() => known(srv.url, 601), 3000, 'a swipe on the new port to be applied');
    // the old port is free again
    const probe = createSocket('udp4');
    await new Promise<void>((r, j) => { probe.once('error', j); probe.bind(p1, '127.0.0.1', () => r()); });
    probe.close();
    // removing the section stops the listener
    writeFileSync(file, uhppoteSite(p2).replace(/^uhppote: .*\n/m, ''));
    assert.deepEqual((await srv.reload('test')).settingsChanged, ['uhppote']);
    assert.equal(srv.uhppotePort(), undefined);
  } finally {
    real.close();
    await srv.close();
    t.cleanup();
  }
});
