/**
 * The commands that show a decision on the reader, ready for the bridge to
 * put on the bus (CP → PD, reply bit clear):
 *
 *   osdp_LED 0x69, one 14-byte record:
 *     reader, LED 0,
 *     temporary: control 0x02 (set and start timer), on time, off time (×100 ms),
 *                on colour, off colour, timer LSB, timer MSB (×100 ms),
 *     permanent: control 0x00 (no change), on, off, on colour, off colour
 *   osdp_BUZ 0x6A: reader, tone 0x02 (default tone), on time, off time (×100 ms), count
 *
 * Grant: LED green for 3 s. Deny: LED red for 3 s and two 300 ms beeps.
 * Sequence numbers: the LED command uses the sequence after the reply's
 * (1 → 2 → 3 → 1; 0 → 1), the buzzer command the one after that, so the pair
 * is valid when the bridge sends them as its next two commands to that PD.
 * A bridge that interleaves polls rewrites CTRL bits 0-1 and the check
 * (see resequence()). The check type (CRC or checksum) follows the reply's.
 */
import { buildPacket } from './packet.js';

export const CMD_LED = 0x69, CMD_BUZ = 0x6a;
export const COLOR_BLACK = 0, COLOR_RED = 1, COLOR_GREEN = 2, COLOR_AMBER = 3, COLOR_BLUE = 4;

export const nextSqn = (s: number): number => (s >= 3 ? 1 : s + 1);

export interface Target { address: number; reader: number; sqn: number; crc: boolean }

export function ledCommand(t: Target, color: number, seconds = 3): Uint8Array {
  const tenths = Math.min(0xffff, Math.round(seconds * 10));
  const data = Uint8Array.of(t.reader, 0, 0x02, 1, 0, color, color, tenths & 0xff, tenths >> 8, 0x00, 0, 0, 0, 0);
  return buildPacket({ address: t.address, sqn: t.sqn, crc: t.crc, code: CMD_LED, data });
}

export function buzzerCommand(t: Target, onTenths = 3, offTenths = 2, count = 2): Uint8Array {
  const data = Uint8Array.of(t.reader, 0x02, onTenths, offTenths, count);
  return buildPacket({ address: t.address, sqn: t.sqn, crc: t.crc, code: CMD_BUZ, data });
}

/** The packets answering a decision: [LED] on grant, [LED, BUZ] on deny. `replySqn` is the card read's sequence. */
export function decisionCommands(address: number, reader: number, replySqn: number, crc: boolean, grant: boolean): Uint8Array[] {
  const led: Target = { address, reader, sqn: nextSqn(replySqn), crc };
  if (grant) return [ledCommand(led, COLOR_GREEN)];
  return [ledCommand(led, COLOR_RED), buzzerCommand({ ...led, sqn: nextSqn(led.sqn) })];
}

/** A copy of a command packet with another sequence number and its check recomputed. */
export function resequence(packet: Uint8Array, sqn: number): Uint8Array {
  const crc = (packet[4]! & 0x04) !== 0;
  const end = packet.length - (crc ? 2 : 1);
  return buildPacket({ address: packet[1]! & 0x7f, reply: (packet[1]! & 0x80) !== 0, sqn, crc, code: packet[5]!, data: packet.subarray(6, end) });
}
