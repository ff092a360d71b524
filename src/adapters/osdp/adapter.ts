/**
 * protocol: osdp. The RS-485 bridge forwards each reply packet a reader sends,
 * whole: {t: "osdp", id, packet (binary), ts?}. A card read becomes
 * {t: "badge", id, cred, reader, ts?}; the reader is the site reader with
 * `osdp: {address, reader}` among this controller's readers. A read from an
 * address/reader number the site does not list becomes reader
 * "osdp:<address>:<reader>", which the engine denies as unknown_reader (and
 * the reader shows red), as PROTOCOL.md treats any unknown reader.
 * decorateDecision adds `osdp`: the LED (and on deny buzzer) command packets.
 * Other message types pass through unchanged (ping, native passage…).
 */
import { ApbError } from '../../errors.js';
import type { CompiledSite } from '../../config/types.js';
import type { Adapter, AdapterContext, CanonicalMessage } from '../types.js';
import { passThrough } from '../pass.js';
import { binaryField } from '../wiegand/adapter.js';
import { formatTableFor } from '../wiegand/formats.js';
import { decisionCommands } from './commands.js';
import { parsePacket } from './packet.js';
import { decodeCardRead } from './replies.js';

interface ReadTarget { address: number; reader: number; sqn: number; crc: boolean }

/** controller id → (address << 8 | reader number) → reader id */
const readerMaps = new WeakMap<CompiledSite, Map<string, Map<number, string>>>();

function osdpReaders(site: CompiledSite, controller: string): Map<number, string> | undefined {
  let m = readerMaps.get(site);
  if (!m) {
    m = new Map();
    for (const r of site.config.readers) {
      if (!r.osdp) continue;
      let byKey = m.get(r.controller);
      if (!byKey) m.set(r.controller, (byKey = new Map()));
      const key = (r.osdp.address << 8) | (r.osdp.reader ?? 0);
      if (!byKey.has(key)) byKey.set(key, r.id);
    }
    readerMaps.set(site, m);
  }
  return m.get(controller);
}

export function osdpReaderId(site: CompiledSite, controller: string, address: number, reader: number): string {
  return osdpReaders(site, controller)?.get((address << 8) | reader) ?? `osdp:${address}:${reader}`;
}

/** where each decoded card read came from, for decorateDecision */
const targets = new WeakMap<Record<string, unknown>, ReadTarget>();

export const osdpAdapter: Adapter = {
  protocol: 'osdp',
  toCanonical(msg: Record<string, unknown>, ctx: AdapterContext): CanonicalMessage {
    if (msg.t !== 'osdp') return passThrough(msg);
    if (msg.packet === undefined) throw new ApbError('bad_message', 'packet: missing (the OSDP reply packet, binary)');
    const pkt = parsePacket(binaryField(msg.packet));
    const read = decodeCardRead(pkt, formatTableFor(ctx.site));
    targets.set(msg, { address: pkt.address, reader: read.reader, sqn: pkt.sqn, crc: pkt.crc });
    const out: CanonicalMessage = { t: 'badge', cred: read.cred, reader: osdpReaderId(ctx.site, ctx.controller, pkt.address, read.reader) };
    if (msg.id !== undefined) out.id = msg.id;
    if (msg.ts !== undefined) out.ts = msg.ts;
    return out;
  },
  decorateDecision(reply: Record<string, unknown>, msg: Record<string, unknown>, ctx: AdapterContext): void {
    if (reply.t !== 'decision' || msg.t !== 'osdp') return;
    let t = targets.get(msg);
    if (!t) { // a caller that copied the message: decode it again (it decoded once already)
      try {
        const pkt = parsePacket(binaryField(msg.packet));
        t = { address: pkt.address, reader: decodeCardRead(pkt, formatTableFor(ctx.site)).reader, sqn: pkt.sqn, crc: pkt.crc };
      } catch { return; }
    }
    reply.osdp = decisionCommands(t.address, t.reader, t.sqn, t.crc, reply.grant === true);
  },
};
