/**
 * A simulated controller for the cluster tests: frames of random stadium messages over the real
 * WebSocket protocol to whichever node leads, reconnecting (and resending its unanswered frame with
 * the same ids) when the leader goes away. It keeps every acknowledged reply and the raw bytes of
 * every frame whose messages were all acknowledged (for byte-exact resends).
 */
import WebSocket from 'ws';
import { decode } from '@msgpack/msgpack';
import { randomMessage, rng } from '../store/util.js';
import type { ApbNode } from './harness.js';

export const TOKENS: Record<string, string> = {
  'gate-north': 'demo-gate-north-token', 'gate-south': 'demo-gate-south-token', turnstiles: 'demo-turnstiles-token', vip: 'demo-vip-door-token',
};
export const N_CREDS = 40;

export interface AckedFrame { msgs: Record<string, unknown>[]; reply: Buffer }

export class Controller {
  /** id → the decoded reply (decision or ack) */
  readonly acked = new Map<number, Record<string, unknown>>();
  readonly frames: AckedFrame[] = [];
  /** replies other than decision/ack/error seen, and every reply received after `watchFrom` was set (SIGSTOP test) */
  errors = 0;
  private nextId: number;
  private pending: Record<string, unknown>[] | undefined;
  private readonly r: () => number;
  stopped = false;
  /** every controller made, so a failed test's run loops can still be stopped (stopAll) */
  private static readonly made = new Set<Controller>();
  static stopAll(): void { for (const c of Controller.made) c.stopped = true; }

  constructor(readonly name: string, seed: number, firstId = 1) { this.r = rng(seed); this.nextId = firstId; Controller.made.add(this); }

  newFrame(n = 8): Record<string, unknown>[] {
    const msgs: Record<string, unknown>[] = [];
    for (let k = 0; k < n; k++) msgs.push(randomMessage(this.r, this.name, this.nextId++, N_CREDS, Date.now()));
    return msgs;
  }

  /** opens a socket to `node` (undefined when refused: it does not lead) */
  static open(node: ApbNode, name: string): Promise<WebSocket | undefined> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${node.port}/v1/controller`, { headers: { authorization: `Bearer ${TOKENS[name]}` } });
      ws.once('open', () => resolve(ws));
      ws.once('error', () => resolve(undefined));
      ws.once('unexpected-response', () => { ws.terminate(); resolve(undefined); });
    });
  }

  /** sends one frame, resolves with the reply bytes (undefined: the socket closed or nothing came in `ms`) */
  static exchange(ws: WebSocket, frame: Buffer, ms = 4000): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const done = (v: Buffer | undefined): void => { clearTimeout(t); ws.off('message', onMsg); ws.off('close', onClose); resolve(v); };
      const onMsg = (d: Buffer): void => done(d);
      const onClose = (): void => done(undefined);
      const t = setTimeout(() => done(undefined), ms);
      ws.on('message', onMsg);
      ws.once('close', onClose);
      try { ws.send(frame); } catch { done(undefined); }
    });
  }

  /** streams frames to the leader until stop() (resending the unanswered frame after a failover) */
  async run(leader: () => Promise<ApbNode | undefined>, encode: (v: unknown) => Buffer): Promise<void> {
    let ws: WebSocket | undefined;
    while (!this.stopped) {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        const node = await leader();
        ws = node ? await Controller.open(node, this.name) : undefined;
        if (!ws) { await new Promise((r) => setTimeout(r, 50)); continue; }
      }
      const msgs = this.pending ?? this.newFrame();
      this.pending = msgs;
      const bytes = await Controller.exchange(ws, encode(msgs));
      if (!bytes) { ws.terminate(); ws = undefined; continue; }
      const replies = decode(bytes) as Record<string, unknown>[];
      let all = true;
      for (const rep of replies) {
        if (rep.t === 'decision' || rep.t === 'ack') this.acked.set(Number(rep.id), rep);
        else { all = false; this.errors++; }
      }
      if (all) { this.frames.push({ msgs, reply: bytes }); this.pending = undefined; }
      else { ws.terminate(); ws = undefined; await new Promise((r) => setTimeout(r, 50)); } // storage_unavailable: the same ids again
    }
    ws?.terminate();
  }
}
