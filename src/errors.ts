/**
 * The one error base class. Every error the engine reports to a client, a
 * log or a CLI user is an ApbError with a stable `code` (snake_case, never
 * renamed once published). README's "Error codes" table lists them all and
 * test/errors.test.ts checks that the table and ERROR_CODES agree.
 */
export const ERROR_CODES = {
  bad_frame: 'not MessagePack/JSON, or not a map or an array of maps',
  bad_message: 'a field is missing or of the wrong type or range',
  unknown_type: 'the message type `t` is not known',
  forbidden_reader: 'the reader belongs to another controller',
  unknown_area: 'an operator action or a read names an area the site does not have',
  too_large: 'the frame or body exceeds the size limit',
  rate_limited: 'the controller exceeded its message rate',
  storage_unavailable: 'the state change could not be persisted, nothing was decided',
  unauthorized: 'missing or wrong bearer token',
  forbidden: 'the token\'s role is too low for this action',
  not_found: 'no such path or resource',
  not_ready: 'the engine is starting or shutting down',
  not_leader: 'cluster mode: this node follows the site and cannot serve this (the live stream, the console, or a write when no leader answers); the reply names the node that leads it',
  invalid_config: 'the site configuration is invalid',
  bad_parity: 'a Wiegand read failed its parity check',
  unknown_format: 'no Wiegand format matches the read',
  bad_osdp: 'an OSDP packet is malformed or not a card read',
  unsupported_secure_channel: 'OSDP secure channel packets are not supported',
  bad_uhppote: 'a UHPPOTE packet is malformed',
  abi_mismatch: 'the WebAssembly module does not match this host',
  native_unavailable: 'the uWebSockets.js native binary could not be loaded',
  data_locked: 'another apb process holds the data directory',
  address_in_use: 'the address and port to listen on are taken by another process',
  usage: 'the command line is wrong (unknown flag, missing or bad value)',
  internal: 'an unexpected internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** HTTP status for each code, where it has a natural one. */
export const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  bad_frame: 400, bad_message: 400, unknown_type: 400, bad_parity: 400, unknown_format: 400,
  bad_osdp: 400, unsupported_secure_channel: 400, bad_uhppote: 400, invalid_config: 400,
  unauthorized: 401, forbidden: 403, forbidden_reader: 403, unknown_area: 404, not_found: 404,
  too_large: 413, rate_limited: 429, storage_unavailable: 503, not_ready: 503, not_leader: 503, internal: 500,
};

export class ApbError extends Error {
  readonly code: ErrorCode;
  /** extra machine-readable detail (e.g. the list of config errors) */
  readonly detail?: unknown;
  constructor(code: ErrorCode, message: string, detail?: unknown) {
    super(message);
    this.name = 'ApbError';
    this.code = code;
    if (detail !== undefined) this.detail = detail;
  }
  get status(): number { return HTTP_STATUS[this.code] ?? 500; }
}

export function isApbError(e: unknown): e is ApbError {
  return e instanceof ApbError;
}
