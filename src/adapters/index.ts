/**
 * Adapter per controller protocol (SPEC 10 `protocol`).
 *
 * Credential scheme: a card read through any hardware adapter becomes the
 * string credential "<facility>:<card>" (decimal, no leading zeros; facility
 * 0 when the format has none), so one card is one credential whether it
 * arrives as Wiegand bits, an OSDP osdp_RAW/osdp_FMT reply or a UHPPOTE
 * event (FC*100000+CN). Exceptions, by design distinct: an OSDP keypad
 * entry is "pin:<keys>", and osdp_FMT text that is not "<digits>" or
 * "<digits>:<digits>" is kept as sent. Native controllers choose their own
 * credentials; to share state with badge readers on adapters they send the
 * same "<facility>:<card>" string.
 *
 *   native   identity: the message already is canonical
 *   wiegand  {t, id, reader, raw, bits, format?, ts?, granted?} → cred from the bits
 *   osdp     {t: "osdp", id, packet} → badge; replies gain `osdp` command packets
 *   uhppote  identity: these controllers reach the engine through the UDP
 *            listener (uhppote-listener.ts), whose output is canonical
 */
import type { ControllerConfig } from '../config/types.js';
import type { Adapter } from './types.js';
import { passThrough } from './pass.js';
import { wiegandAdapter } from './wiegand/adapter.js';
import { osdpAdapter } from './osdp/adapter.js';

export const nativeAdapter: Adapter = {
  protocol: 'native',
  toCanonical: passThrough,
};

const uhppoteAdapter: Adapter = {
  protocol: 'uhppote',
  toCanonical: passThrough,
};

const ADAPTERS: Record<ControllerConfig['protocol'], Adapter> = {
  native: nativeAdapter, wiegand: wiegandAdapter, osdp: osdpAdapter, uhppote: uhppoteAdapter,
};

export function adapterFor(protocol: ControllerConfig['protocol'] | undefined): Adapter {
  return ADAPTERS[protocol ?? 'native'] ?? nativeAdapter;
}

export { checkWiegandFormats, BUILTIN_FORMATS } from './wiegand/formats.js';
export { startUhppoteListener } from './uhppote-listener.js';
