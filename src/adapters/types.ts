/**
 * Reader-hardware adapters (issue 5, PROTOCOL.md "Other adapters"). The
 * controller's `protocol` (SPEC 10) picks one. An adapter turns one decoded
 * message map from a controller's frame into a canonical PROTOCOL.md message
 * (the native form), and may add protocol-specific fields to the reply.
 * Decoding errors are ApbErrors (bad_parity, unknown_format, bad_osdp,
 * unsupported_secure_channel, bad_message) and change no state.
 */
import type { CompiledSite } from '../config/types.js';

export interface CanonicalMessage {
  t: string;                        // badge | passage | offline | ping (others -> unknown_type by the hub)
  id?: unknown;                     // validated by the hub
  cred?: unknown;                   // wire value: integer, string "<facility>:<card>" from hardware adapters, or binary
  reader?: unknown;                 // reader id (string)
  ts?: unknown;
  granted?: unknown;
}

export interface AdapterContext { site: CompiledSite; controller: string }

export interface Adapter {
  readonly protocol: 'native' | 'wiegand' | 'osdp' | 'uhppote';
  toCanonical(msg: Record<string, unknown>, ctx: AdapterContext): CanonicalMessage;
  /** add protocol fields to a reply map (e.g. OSDP's `osdp` command packets); called only for decisions */
  decorateDecision?(reply: Record<string, unknown>, msg: Record<string, unknown>, ctx: AdapterContext): void;
}
