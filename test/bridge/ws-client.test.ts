/**
 * The bridge's own WebSocket client against a hand-written server (node:net,
 * the handshake and every frame built byte by byte here), so each rule of
 * RFC 6455 the client relies on is checked on the wire:
 * client frames masked, with 7-bit, 16-bit and 64-bit lengths; fragmented
 * messages with a ping between the fragments; pong; close codes both ways;
 * large frames arriving in small pieces; and the protocol errors (a masked
 * server frame, a stray continuation, a long control frame, a frame over the
 * size limit) closing with 1002 or 1009.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { connectWs, type WsConnection } from '../../src/bridge/link/ws-client.js';
import { ApbError } from '../../src/errors.js';
import { waitFor } from './sim-pd.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface ClientFrame { fin: boolean; op: number; masked: boolean; lenField: number; payload: Buffer }

/** a server that completes the upgrade (or answers `reply` instead) and hands over the socket and the client's frames */
async function server(reply?: (key: string) => string): Promise<{ url: string; srv: Server; conn: Promise<{ sock: Socket; frames: ClientFrame[]; headers: string }> }> {
  let give!: (v: { sock: Socket; frames: ClientFrame[]; headers: string }) => void;
  const conn = new Promise<{ sock: Socket; frames: ClientFrame[]; headers: string }>((r) => { give = r; });
  const srv = createServer((sock) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const frames: ClientFrame[] = [];
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const headers = buf.subarray(0, end).toString();
        buf = buf.subarray(end + 4);
        const key = /sec-websocket-key: (\S+)/i.exec(headers)![1]!;
        if (reply) { sock.end(reply(key)); return; }
        const accept = createHash('sha1').update(key + GUID).digest('base64');
        sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        upgraded = true;
        give({ sock, frames, headers });
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1]! & 0x7f, at = 2;
        const lenField = len;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
        const masked = (buf[1]! & 0x80) !== 0;
        const maskAt = at;
        if (masked) at += 4;
        if (buf.length < at + len) return;
        const payload = Buffer.from(buf.subarray(at, at + len));
        if (masked) for (let i = 0; i < len; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
        frames.push({ fin: (buf[0]! & 0x80) !== 0, op: buf[0]! & 0x0f, masked, lenField, payload });
        buf = buf.subarray(at + len);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { url: `ws://127.0.0.1:${(srv.address() as { port: number }).port}/v1/controller`, srv, conn };
}

/** a server frame, unmasked unless a key is given */
function sframe(op: number, payload: Buffer, o: { fin?: boolean; mask?: Buffer; rsv?: number } = {}): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + (o.mask ? 4 : 0) + n);
  out[0] = (o.fin === false ? 0 : 0x80) | (o.rsv ?? 0) | op;
  out[1] = (o.mask ? 0x80 : 0) | (n < 126 ? n : n < 65536 ? 126 : 127);
  if (n >= 126 && n < 65536) out.writeUInt16BE(n, 2); else if (n >= 65536) out.writeBigUInt64BE(BigInt(n), 2);
  let at = head;
  if (o.mask) { o.mask.copy(out, at); at += 4; }
  for (let i = 0; i < n; i++) out[at + i] = o.mask ? payload[i]! ^ o.mask[i & 3]! : payload[i]!;
  return out;
}

async function pair(): Promise<{ ws: WsConnection; sock: Socket; frames: ClientFrame[]; headers: string; msgs: Buffer[]; closed: Promise<[number, string]>; pongs: () => number; done(): Promise<void> }> {
  const s = await server();
  const ws = await connectWs(s.url, { Authorization: 'Bearer t' });
  const c = await s.conn;
  const msgs: Buffer[] = [];
  let pongs = 0;
  ws.onMessage((d) => msgs.push(Buffer.from(d)));
  ws.onPong(() => { pongs++; });
  const closed = new Promise<[number, string]>((r) => ws.onClose((code, why) => r([code, why])));
  return { ws, ...c, msgs, closed, pongs: () => pongs, done: async () => { c.sock.destroy(); await new Promise((r) => s.srv.close(r)); } };
}

test('the upgrade: headers sent, a wrong accept key and an HTTP 401 refused with their codes', { timeout: 60_000 }, async () => {
  const p = await pair();
  try {
    assert.match(p.headers, /^GET \/v1\/controller HTTP\/1.1/);
    assert.match(p.headers, /authorization: Bearer t/i);
    assert.match(p.headers, /sec-websocket-version: 13/i);
  } finally { await p.done(); }
  const bad = await server((_key) => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n');
  await assert.rejects(connectWs(bad.url, {}), (e: ApbError) => e.code === 'not_ready' && /bad Sec-WebSocket-Accept/.test(e.message));
  bad.srv.close();
  const no = await server(() => 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  await assert.rejects(connectWs(no.url, {}), (e: ApbError) => e.code === 'unauthorized');
  no.srv.close();
});

test('client frames are masked, with 7-bit, 16-bit and 64-bit lengths', { timeout: 60_000 }, async () => {
  const p = await pair();
  try {
    const sizes = [0, 1, 125, 126, 65535, 65536, 300_000];
    const sent = sizes.map((n) => randomBytes(n));
    for (const b of sent) p.ws.send(b);
    await waitFor(() => p.frames.length === sizes.length, 5000, 'all frames at the server');
    assert.deepEqual(p.frames.map((f) => [f.fin, f.op, f.masked, f.lenField]), [
      [true, 2, true, 0], [true, 2, true, 1], [true, 2, true, 125], [true, 2, true, 126], [true, 2, true, 126], [true, 2, true, 127], [true, 2, true, 127],
    ]);
    p.frames.forEach((f, i) => assert.ok(f.payload.equals(sent[i]!), `payload ${sizes[i]} unmasked equals what was sent`));
  } finally { await p.done(); }
});

test('a fragmented message with a ping between its fragments; pongs; large frames in small pieces', { timeout: 60_000 }, async () => {
  const p = await pair();
  try {
    const a = randomBytes(100), b = randomBytes(70_000), c = randomBytes(5);
    p.sock.write(Buffer.concat([
      sframe(0x2, a, { fin: false }),
      sframe(0x9, Buffer.from('hi')),                   // a ping in the middle of the message
      sframe(0x0, b, { fin: false }),
      sframe(0x0, c),
      sframe(0xa, Buffer.alloc(0)),                      // an unsolicited pong
    ]));
    await waitFor(() => p.msgs.length === 1 && p.pongs() === 1, 3000, 'the message and the pong');
    assert.ok(p.msgs[0]!.equals(Buffer.concat([a, b, c])), 'one message, the fragments joined');
    await waitFor(() => p.frames.some((f) => f.op === 0xa), 3000, 'a pong for the ping');
    const pong = p.frames.find((f) => f.op === 0xa)!;
    assert.ok(pong.masked && pong.payload.toString() === 'hi', 'the pong carries the ping\'s payload, masked');
    // a 2 MiB frame (64-bit length) written in 1000-byte pieces
    const big = randomBytes(2 << 20);
    const wire = sframe(0x2, big);
    for (let i = 0; i < wire.length; i += 1000) p.sock.write(wire.subarray(i, i + 1000));
    await waitFor(() => p.msgs.length === 2, 10_000, 'the large frame');
    assert.ok(p.msgs[1]!.equals(big));
    p.ws.ping();
    await waitFor(() => p.frames.some((f) => f.op === 0x9), 3000, 'the client\'s ping');
  } finally { await p.done(); }
});

test('close codes: the server\'s code and reason are reported and echoed; the client\'s code reaches the server', { timeout: 60_000 }, async () => {
  const p = await pair();
  try {
    const body = Buffer.concat([Buffer.of(0x0f, 0xa1), Buffer.from('going away for maintenance')]); // 4001
    p.sock.write(sframe(0x8, body));
    assert.deepEqual(await p.closed, [4001, 'going away for maintenance']);
    const echo = p.frames.find((f) => f.op === 0x8)!;
    assert.deepEqual([...echo.payload], [0x0f, 0xa1], 'the close echoes the code');
    assert.ok(echo.masked);
  } finally { await p.done(); }
  const q = await pair();
  try {
    q.ws.close(1001);
    await waitFor(() => q.frames.some((f) => f.op === 0x8), 3000, 'the client\'s close');
    assert.equal(q.frames.find((f) => f.op === 0x8)!.payload.readUInt16BE(0), 1001);
    q.ws.send(Buffer.from('late'));
    q.sock.end(sframe(0x8, Buffer.of(0x03, 0xe9)));
    assert.equal((await q.closed)[0], 1001);
    assert.equal(q.frames.filter((f) => f.op === 0x2).length, 0, 'nothing is sent after the close');
  } finally { await q.done(); }
});

test('protocol errors close with 1002; a frame over the limit with 1009, before its payload arrives', { timeout: 60_000 }, async () => {
  const cases: [string, Buffer, number, RegExp][] = [
    ['masked server frame', sframe(0x2, Buffer.from('x'), { mask: randomBytes(4) }), 1002, /masked/],
    ['continuation first', sframe(0x0, Buffer.from('x')), 1002, /continuation/],
    ['new message inside a fragmented one', Buffer.concat([sframe(0x2, Buffer.from('a'), { fin: false }), sframe(0x2, Buffer.from('b'))]), 1002, /before the fragmented one ended/],
    ['long ping', sframe(0x9, randomBytes(126)), 1002, /control frame/],
    ['fragmented ping', sframe(0x9, Buffer.from('x'), { fin: false }), 1002, /control frame/],
    ['RSV bit', sframe(0x2, Buffer.from('x'), { rsv: 0x40 }), 1002, /reserved bits/],
    ['unknown opcode', sframe(0x3, Buffer.from('x')), 1002, /unknown opcode 3/],
    ['too large', Buffer.from([0x82, 127, 0, 0, 0, 0, 0x01, 0, 0, 0]), 1009, /larger than/], // 16 MiB announced, no payload sent
  ];
  for (const [name, bytes, code, why] of cases) {
    const p = await pair();
    try {
      p.sock.write(bytes);
      const [got, msg] = await p.closed;
      assert.equal(got, code, name);
      assert.match(msg, why, name);
      await waitFor(() => p.frames.some((f) => f.op === 0x8), 3000, `${name}: close frame`);
      assert.equal(p.frames.find((f) => f.op === 0x8)!.payload.readUInt16BE(0), code, `${name}: the close frame says ${code}`);
      assert.equal(p.msgs.length, 0, `${name}: nothing delivered`);
    } finally { await p.done(); }
  }
});
