/**
 * A small WebSocket client (RFC 6455), enough for the controller protocol:
 * binary messages, ping/pong, close. The bridge keeps its dependencies to
 * what a gate computer needs, and Node 20 has no WebSocket client of its own.
 *
 * Frame (client → server always masked, server → client never):
 *   byte 0: FIN (bit 7), opcode (bits 0-3: 0 continuation, 2 binary, 8 close, 9 ping, 10 pong)
 *   byte 1: MASK (bit 7), length 0-125 | 126 → 16-bit length follows | 127 → 64-bit length follows
 *   [masking key, 4 bytes]  payload (XORed with the key, byte i with key[i % 4])
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
  let buf: Buffer = head.length ? Buffer.from(head) : Buffer.alloc(0);
  let parts: Buffer[] = [];
  let partLen = 0;
  const onMsg: ((d: Uint8Array) => void)[] = [];
  const onPong: (() => void)[] = [];
  const onClose: ((c: number, w: string) => void)[] = [];
  let closed = false;
  let closeCode = 1006, closeWhy = 'connection lost';
  const finish = (): void => {
    if (closed) return;
    closed = true;
    for (const c of onClose) c(closeCode, closeWhy);
  };
  const fail = (why: string): void => { closeCode = 1002; closeWhy = why; socket.destroy(); };
  const write = (b: Buffer): void => { if (!closed && !socket.destroyed) socket.write(b); };

  const parse = (): void => {
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0]! & 0x80) !== 0, op = buf[0]! & 0x0f, masked = (buf[1]! & 0x80) !== 0;
      let len = buf[1]! & 0x7f, at = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) return; const big = buf.readBigUInt64BE(2); if (big > BigInt(MAX_MESSAGE)) { fail('frame too large'); return; } len = Number(big); at = 10; }
      if (len > MAX_MESSAGE) { fail('frame too large'); return; }
      const maskAt = at;
      if (masked) at += 4;
      if (buf.length < at + len) return;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
      buf = buf.subarray(at + len);
      if (op === 0x8) {
        closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        closeWhy = payload.length > 2 ? payload.subarray(2).toString('utf8') : 'closed by the engine';
        write(frame(0x8, payload.subarray(0, 2)));
        socket.end();
        return;
      }
      if (op === 0x9) { write(frame(0xa, payload)); continue; }
      if (op === 0xa) { for (const c of onPong) c(); continue; }
      if (op === 0x1 || op === 0x2 || op === 0x0) {
        parts.push(payload);
        partLen += len;
        if (partLen > MAX_MESSAGE) { fail('message too large'); return; }
        if (fin) {
          const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
          parts = []; partLen = 0;
          const msg = new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
          for (const c of onMsg) c(msg);
        }
        continue;
      }
      fail(`unknown opcode ${op}`);
      return;
    }
  };

  socket.on('data', (d: Buffer) => { buf = buf.length ? Buffer.concat([buf, d]) : d; parse(); });
  socket.on('close', finish);
  socket.on('error', (e: Error) => { closeWhy = e.message; });
  queueMicrotask(parse); // bytes that came with the upgrade answer

  return {
    send: (d) => write(frame(0x2, d)),
    ping: () => write(frame(0x9, new Uint8Array(0))),
    close: (code = 1000) => {
      if (closed || socket.destroyed) return;
      const b = Buffer.alloc(2); b.writeUInt16BE(code);
      closeCode = code; closeWhy = 'closed by the bridge';
      socket.write(frame(0x8, b));
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    },
    onMessage: (cb) => { onMsg.push(cb); },
    onPong: (cb) => { onPong.push(cb); },
    onClose: (cb) => { onClose.push(cb); },
  };
}
