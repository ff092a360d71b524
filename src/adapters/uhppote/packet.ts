/**
 * The 64-byte event packet a UHPPOTE controller pushes to its event listener
 * (function 0x20, the same layout as its get-status reply), as laid out in
 * the public uhppoted sources (uhppote-core messages/events.go):
 *
 *   off size  field
 *    0   1    SOM 0x17 (0x19 on firmware v6.62)
 *    1   1    function code 0x20
 *    2   2    reserved (0)
 *    4   4    controller serial number, little-endian
 *    8   4    event index, little-endian
 *   12   1    event type: 1 swipe, 2 door/button/reboot/remote, 3 warning, 0 none, 0xFF overwritten
 *   13   1    granted (0/1)
 *   14   1    door 1-4
 *   15   1    direction 1 in, 2 out
 *   16   4    card number, little-endian (FC*100000 + CN)
 *   20   7    event time, BCD YYYY MM DD HH mm ss (controller local time)
 *   27   1    reason code
 *   28   4    door 1-4 open states      32  4  door 1-4 button states
 *   36   1    system error              37  3  system time BCD HH mm ss
 *   40   4    sequence id, LE           48  1  special info
 *   49   1    relay state bitmap        50  1  input state bitmap
 *   51   3    system date BCD YY MM DD  54 10  reserved
 */
import { ApbError } from '../../errors.js';

export const EVENT_PACKET_SIZE = 64;
export const SOM = 0x17, SOM_V6_62 = 0x19, FN_EVENT = 0x20;
export const TYPE_NONE = 0, TYPE_SWIPE = 1, TYPE_DOOR = 2, TYPE_WARN = 3, TYPE_OVERWRITTEN = 0xff;

export interface LocalTime { year: number; month: number; day: number; hour: number; minute: number; second: number }

export interface UhppoteEvent {
  som: number;
  serial: number;
  index: number;
  type: number;
  granted: boolean;
  door: number;
  direction: number;     // 1 in, 2 out
  card: number;
  /** null when the field is not a valid BCD date-time (accepted only for non-swipe events) */
  time: LocalTime | null;
  reason: number;
}

const bad = (message: string): ApbError => new ApbError('bad_uhppote', message);
const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0');

function bcd(b: number): number {
  const hi = b >> 4, lo = b & 0x0f;
  return hi > 9 || lo > 9 ? -1 : hi * 10 + lo;
}

function readTime(p: Uint8Array, at: number): LocalTime | string {
  const d: number[] = [];
  for (let i = 0; i < 7; i++) {
    const v = bcd(p[at + i]!);
    if (v < 0) return `byte ${at + i} (${hex2(p[at + i]!)}) is not BCD`;
    d.push(v);
  }
  const t = { year: d[0]! * 100 + d[1]!, month: d[2]!, day: d[3]!, hour: d[4]!, minute: d[5]!, second: d[6]! };
  const mdays = new Date(Date.UTC(t.year, t.month, 0)).getUTCDate();
  if (t.month < 1 || t.month > 12) return `month ${t.month} is not 1-12`;
  if (t.day < 1 || t.day > mdays) return `day ${t.day} is not in ${t.year}-${String(t.month).padStart(2, '0')}`;
  if (t.hour > 23 || t.minute > 59 || t.second > 59) return `time ${t.hour}:${t.minute}:${t.second} is not a time of day`;
  if (t.year < 2000) return `year ${t.year} is before 2000`;
  return t;
}

export function decodeEventPacket(p: unknown): UhppoteEvent {
  if (!(p instanceof Uint8Array)) throw bad('packet: not binary');
  if (p.length !== EVENT_PACKET_SIZE) throw bad(`length: ${p.length} bytes, an event packet is ${EVENT_PACKET_SIZE}`);
  if (p[0] !== SOM && p[0] !== SOM_V6_62) throw bad(`SOM: ${hex2(p[0]!)}, expected 0x17 (or 0x19)`);
  if (p[1] !== FN_EVENT) throw bad(`function code ${hex2(p[1]!)} is not an event (0x20)`);
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const type = p[12]!;
  const timeOrWhy = readTime(p, 20);
  const ev: UhppoteEvent = {
    som: p[0]!, serial: dv.getUint32(4, true), index: dv.getUint32(8, true), type,
    granted: p[13] !== 0, door: p[14]!, direction: p[15]!, card: dv.getUint32(16, true),
    time: typeof timeOrWhy === 'string' ? null : timeOrWhy, reason: p[27]!,
  };
  if (type === TYPE_SWIPE) {
    if (p[13]! > 1) throw bad(`granted: byte 13 is ${hex2(p[13]!)}, expected 0 or 1`);
    if (ev.door < 1 || ev.door > 4) throw bad(`door: ${ev.door}, expected 1-4`);
    if (ev.direction !== 1 && ev.direction !== 2) throw bad(`direction: ${ev.direction}, expected 1 (in) or 2 (out)`);
    if (typeof timeOrWhy === 'string') throw bad(`event time: ${timeOrWhy}`);
  }
  return ev;
}

function toBcd(v: number): number { return ((Math.floor(v / 10) % 10) << 4) | (v % 10); }

/** The packet a controller would send for `ev` (tests, simulator). */
export function encodeEventPacket(ev: Omit<UhppoteEvent, 'som'> & { som?: number }): Uint8Array {
  const p = new Uint8Array(EVENT_PACKET_SIZE);
  const dv = new DataView(p.buffer);
  p[0] = ev.som ?? SOM;
  p[1] = FN_EVENT;
  dv.setUint32(4, ev.serial >>> 0, true);
  dv.setUint32(8, ev.index >>> 0, true);
  p[12] = ev.type;
  p[13] = ev.granted ? 1 : 0;
  p[14] = ev.door;
  p[15] = ev.direction;
  dv.setUint32(16, ev.card >>> 0, true);
  if (ev.time) {
    const t = ev.time;
    [Math.floor(t.year / 100), t.year % 100, t.month, t.day, t.hour, t.minute, t.second].forEach((v, i) => { p[20 + i] = toBcd(v); });
  }
  p[27] = ev.reason;
  return p;
}
