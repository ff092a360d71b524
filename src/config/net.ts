/**
 * IP address helpers for the UHPPOTE listener's source check: the site file
 * names addresses as IP literals, compared with the sender of each datagram.
 */
import { isIP } from 'node:net';

export const isIpAddress = (a: string): boolean => isIP(a) !== 0;

/** One spelling per address: IPv6 in its canonical form (as the OS reports a sender), IPv4-mapped IPv6 (::ffff:192.0.2.1) → IPv4. */
export function normalizeIp(a: string): string {
  if (isIP(a) !== 6) return a;
  let v6 = a.toLowerCase();
  try { v6 = new URL(`http://[${a}]/`).hostname.slice(1, -1); } catch { /* keep the lower-case form */ }
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6) ?? /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!m) return v6;
  if (m.length === 2) return m[1]!;
  const hi = parseInt(m[1]!, 16), lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms: only this machine can send to a socket bound there. */
export function isLoopback(a: string): boolean {
  const n = normalizeIp(a);
  if (isIP(n) === 4) return n.startsWith('127.');
  return n === '::1';
}
