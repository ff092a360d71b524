/**
 * The UDP event listener for UHPPOTE controllers (`uhppote: {host, port}` in
 * the site file). Each datagram is one 64-byte event packet: a swipe becomes
 * a canonical offline message handed to onEvent(controller, msg); a packet
 * that cannot be decoded or matched goes to onMalformed(ApbError
 * 'bad_uhppote', "address:port") and is never applied; other event types
 * are counted as ignored. A packet whose serial belongs to a controller with
 * an `address` is accepted only from that IP: from any other source it goes
 * to onRejected and is never applied (a spoofed packet with a known serial
 * could otherwise place any card). The listener never replies (controllers
 * do not expect an answer to pushed events).
 */
import { createSocket, type Socket } from 'node:dgram';
import { ApbError } from '../errors.js';
import type { CompiledSite } from '../config/types.js';
import { decodeEventPacket } from './uhppote/packet.js';
import { allowedSource, mapEvent } from './uhppote/map.js';
import { normalizeIp } from '../config/net.js';

export interface UhppoteListenerStats { received: number; events: number; ignored: number; malformed: number; rejected: number }

export interface UhppoteListenerOptions {
  host: string;
  port: number;
  site: () => CompiledSite;
  onEvent(controller: string, msg: Record<string, unknown>): void;
  onMalformed(err: ApbError, from: string): void;
  /** a packet from a source other than its controller's `address` */
  onRejected?(serial: number, from: string): void;
}

export interface UhppoteListener { port: number; close(): Promise<void>; stats(): UhppoteListenerStats }

export function startUhppoteListener(opts: UhppoteListenerOptions): Promise<UhppoteListener> {
  const stats: UhppoteListenerStats = { received: 0, events: 0, ignored: 0, malformed: 0, rejected: 0 };
  const sock: Socket = createSocket({ type: opts.host.includes(':') ? 'udp6' : 'udp4' });
  sock.on('message', (buf, rinfo) => {
    stats.received++;
    const from = `${rinfo.address}:${rinfo.port}`;
    let mapped;
    try {
      const ev = decodeEventPacket(buf);
      const site = opts.site();
      const allowed = allowedSource(ev.serial, site);
      if (allowed !== undefined && normalizeIp(rinfo.address) !== allowed) {
        stats.rejected++;
        opts.onRejected?.(ev.serial, from);
        return;
      }
      mapped = mapEvent(ev, site);
    } catch (e) {
      stats.malformed++;
      opts.onMalformed(e instanceof ApbError ? e : new ApbError('bad_uhppote', `packet: ${(e as Error).message}`), from);
      return;
    }
    if (!mapped) { stats.ignored++; return; }
    stats.events++;
    opts.onEvent(mapped.controller, mapped.msg);
  });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.bind(opts.port, opts.host, () => {
      sock.off('error', onError);
      sock.on('error', () => { /* a late socket error (ICMP etc.) must not crash the server; datagrams just stop */ });
      let closed: Promise<void> | null = null;
      resolve({
        port: sock.address().port,
        stats: () => ({ ...stats }),
        close: () => (closed ??= new Promise<void>((res) => sock.close(() => res()))),
      });
    });
  });
}
