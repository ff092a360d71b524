/**
 * A small WebSocket client (RFC 6455), enough for the controller protocol:
 * binary messages (fragmented or not, up to MAX_MESSAGE), ping/pong, close
 * with codes. Why not a package: the server's uWebSockets.js has no client,
 * `ws` is only a development dependency here (a production install,
 * `npm ci --omit=dev`, does not have it), Node 20 has no WebSocket client of
 * its own (the global one is stable from Node 22), and the bridge needs
 * about 150 lines of it; test/bridge/ws-client.test.ts holds it to the RFC
 * against a hand-written server.
 *
 * Frame (client → server always masked, server → client never):
 *   byte 0: FIN (bit 7), opcode (bits 0-3: 0 continuation, 2 binary, 8 close, 9 ping, 10 pong)
 *   byte 1: MASK (bit 7), length 0-125 | 126 → 16-bit length follows | 127 → 64-bit length follows
 *   [masking key, 4 bytes]  payload (XORed with the key, byte i with key[i % 4])
 * A server frame that is masked, has RSV bits, is a fragmented or long
 * (> 125 bytes) control frame, a continuation out of place or an unknown
 * opcode closes the connection with 1002; a frame or message beyond
 * MAX_MESSAGE with 1009 (before its payload is buffered).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { ApbError } from '../../errors.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** the engine's replies are far smaller; a frame beyond this is a broken peer */
const MAX_MESSAGE = 8 << 20;

export interface WsConnection {
  send(data: Uint8Array): void;
  ping(): void;
  close(code?: number): void;
  onMessage(cb: (data: Uint8Array) => void): void;
  onPong(cb: () => void): void;
  /** once, when the connection is gone for whatever reason */
  onClose(cb: (code: number, why: string) => void): void;
}

function frame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(n, 2); }
  else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(n), 2); }
  const mask = randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

/** Opens `url` (ws:// or wss://); rejects with `unauthorized` on 401, `not_ready` on any other failure. */
export function connectWs(url: string, headers: Record<string, string>, timeoutMs = 5000): Promise<WsConnection> {
  const u = new URL(url);
  const key = randomBytes(16).toString('base64');
  const req: ClientRequest = (u.protocol === 'wss:' ? httpsRequest : httpRequest)({
    hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (u.protocol === 'wss:' ? 443 : 80), path: u.pathname + u.search,
    headers: { ...headers, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key },
    timeout: timeoutMs,
  });
  return new Promise((resolve, reject) => {
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new ApbError('not_ready', `cannot reach ${u.host}: ${e.message}`)));
    req.on('response', (res: IncomingMessage) => {
      res.resume();
      const code = res.statusCode === 401 ? 'unauthorized' : 'not_ready';
      reject(new ApbError(code, `${u.host} answered HTTP ${res.statusCode} instead of switching to WebSocket${res.statusCode === 401 ? ' (wrong controller token)' : ''}`));
    });
    req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      const want = createHash('sha1').update(key + GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== want) { socket.destroy(); reject(new ApbError('not_ready', `${u.host}: bad Sec-WebSocket-Accept`)); return; }
      resolve(wrap(socket, head));
    });
    req.end();
  });
}

function wrap(socket: Duplex, head: Buffer): WsConnection {
  (socket as unknown as { setNoDelay?(b: boolean): void }).setNoDelay?.(true);
  // received bytes not parsed yet, kept as chunks: a large frame arriving in many
  // pieces is joined once, when it is complete (not once per piece)
  let chunks: Buffer[] = head.length ? [Buffer.from(head)] : [];
  let have = head.length;
  /** bytes the frame at the front needs before it can be parsed (0: unknown, parse to find out) */
  let need = 0;
  let parts: Buffer[] = [];
  let partLen = 0;
  let fragmented = false;
  const onMsg: ((d: Uint8Array) => void)[] = [];
  const onPong: (() => void)[] = [];
  const onClose: ((c: number, w: string) => void)[] = [];
  let closed = false;
  let closeSent = false;
  let closeCode = 1006, closeWhy = 'connection lost';
  const finish = (): void => {
    if (closed) return;
    closed = true;
    for (const c of onClose) c(closeCode, closeWhy);
  };
  const write = (b: Buffer): void => { if (!closed && !socket.destroyed) socket.write(b); };
  const sendClose = (code: number | null): void => {
    if (closeSent) return;
    closeSent = true;
    const b = code === null ? Buffer.alloc(0) : Buffer.alloc(2);
    if (code !== null) b.writeUInt16BE(code);
    write(frame(0x8, b));
  };
  /** a protocol violation by the server: close with `code` (1002 protocol error, 1009 too big) and drop the socket */
  const fail = (code: number, why: string): void => {
    closeCode = code; closeWhy = why;
    sendClose(code);
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
    chunks = []; have = 0; stopped = true;
  };
  let stopped = false;

  const parse = (): void => {
    while (!stopped) {
      if (have < 2 || (need && have < need)) return;
      let buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
      chunks = [buf];
      const fin = (buf[0]! & 0x80) !== 0, rsv = buf[0]! & 0x70, op = buf[0]! & 0x0f, masked = (buf[1]! & 0x80) !== 0;
      let len = buf[1]! & 0x7f, at = 2;
      if (len === 126) { if (have < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) {
        if (have < 10) return;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) { fail(1009, `frame of ${big} bytes is larger than ${MAX_MESSAGE}`); return; }
        len = Number(big); at = 10;
      }
      // RFC 6455 5.1 and 5.2: a server never masks, and no extension was negotiated (RSV bits 0)
      if (masked) { fail(1002, 'the server sent a masked frame'); return; }
      if (rsv) { fail(1002, 'reserved bits set without an extension'); return; }
      if (op >= 0x8 && (!fin || len > 125)) { fail(1002, 'a control frame must be whole and at most 125 bytes'); return; }
      if (len > MAX_MESSAGE) { fail(1009, `frame of ${len} bytes is larger than ${MAX_MESSAGE}`); return; }
      if (have < at + len) { need = at + len; return; }
      need = 0;
      const payload = Buffer.from(buf.subarray(at, at + len));
      buf = buf.subarray(at + len);
      chunks = buf.length ? [buf] : [];
      have = buf.length;
      if (op === 0x8) {
        if (len === 1) { fail(1002, 'a close frame with a 1-byte payload'); return; }
        closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
        closeWhy = len > 2 ? payload.subarray(2).toString('utf8') : 'closed by the engine';
        // echo the code (RFC 6455 5.5.1), then the server closes the TCP connection
        sendClose(len >= 2 ? closeCode : null);
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
        stopped = true;
        return;
      }
      if (op === 0x9) { write(frame(0xa, payload)); continue; }
      if (op === 0xa) { for (const c of onPong) c(); continue; }
      if (op === 0x1 || op === 0x2 || op === 0x0) {
        if (op === 0x0 && !fragmented) { fail(1002, 'a continuation frame with no message started'); return; }
        if (op !== 0x0 && fragmented) { fail(1002, 'a new message before the fragmented one ended'); return; }
        parts.push(payload);
        partLen += len;
        if (partLen > MAX_MESSAGE) { fail(1009, `message larger than ${MAX_MESSAGE} bytes`); return; }
        fragmented = !fin;
        if (fin) {
          const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partLen);
          parts = []; partLen = 0;
          const msg = new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
          for (const c of onMsg) c(msg);
        }
        continue;
      }
      fail(1002, `unknown opcode ${op}`);
      return;
    }
  };

  socket.on('data', (d: Buffer) => { if (stopped) return; chunks.push(d); have += d.length; parse(); });
  socket.on('close', finish);
  socket.on('error', (e: Error) => { if (closeCode === 1006) closeWhy = e.message; });
  queueMicrotask(parse); // bytes that came with the upgrade answer

  return {
    send: (d) => { if (!closeSent) write(frame(0x2, d)); },
    ping: () => { if (!closeSent) write(frame(0x9, new Uint8Array(0))); },
    close: (code = 1000) => {
      if (closed || socket.destroyed || closeSent) return;
      closeCode = code; closeWhy = 'closed by the bridge';
      sendClose(code);
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    },
    onMessage: (cb) => { onMsg.push(cb); },
    onPong: (cb) => { onPong.push(cb); },
    onClose: (cb) => { onClose.push(cb); },
  };
}
