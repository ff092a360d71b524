/**
 * A simulated controller for the browser tests: a `ws` client speaking plain
 * MessagePack (@msgpack/msgpack, not the server's msgpackr) per PROTOCOL.md.
 * Requests go one frame at a time; each awaits its reply frame.
 */
import WebSocket from 'ws';
import { decode, encode } from '@msgpack/msgpack';

export interface Decision { t: string; id: number; grant: boolean; reason: string; violations: { code: string; mode: string }[]; area?: string }

export class SimController {
  private waiting: ((v: unknown) => void)[] = [];
  /** ids are the controller's idempotency keys: a second connection of the same controller must continue, not restart at 1 */
  private constructor(private readonly ws: WebSocket, private nextId = 1) {
    ws.on('message', (data: Buffer) => {
      const w = this.waiting.shift();
      if (w) w(decode(data));
    });
  }

  static async connect(baseUrl: string, token: string, firstId = 1): Promise<SimController> {
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/v1/controller', { headers: { authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    return new SimController(ws, firstId);
  }

  private send(frame: unknown): Promise<unknown> {
    return new Promise((resolve) => { this.waiting.push(resolve); this.ws.send(encode(frame)); });
  }

  async badge(cred: number | string, reader: string): Promise<Decision> {
    return (await this.send({ t: 'badge', id: this.nextId++, cred, reader })) as Decision;
  }

  /** One frame holding a batch of badges; one reply array back, same order. */
  async badges(list: { cred: number | string; reader: string }[]): Promise<Decision[]> {
    return (await this.send(list.map((b) => ({ t: 'badge', id: this.nextId++, cred: b.cred, reader: b.reader })))) as Decision[];
  }

  /** The turnstile turned: commits a pending move (commitOn: passage). */
  async passages(list: { cred: number | string; reader: string }[]): Promise<unknown[]> {
    return (await this.send(list.map((b) => ({ t: 'passage', id: this.nextId++, cred: b.cred, reader: b.reader })))) as unknown[];
  }

  /** the id the next message will carry */
  get next(): number { return this.nextId; }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => { this.ws.once('close', () => resolve()); this.ws.close(); });
  }
}
