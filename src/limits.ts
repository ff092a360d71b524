/**
 * Every bound on a string or number that comes from outside (wire, HTTP,
 * site file, CLI), in one place, so the checks at each boundary and the
 * README's "Limits and hardening" table cannot drift apart. Bounds are in
 * UTF-8 bytes unless the name says otherwise. Anything that can become an
 * LMDB key must stay far below LMDB's 1,978-byte key limit.
 */

/** ids of readers, areas, controllers and user names (the site file already bounds them so);
 *  also the `reader` field of a message and every id-like query or path parameter */
export const MAX_ID_BYTES = 64;
/** string credentials (binary credentials: 32 bytes; integers: up to 2^64-1) */
export { MAX_STR_BYTES as MAX_CRED_BYTES } from './engine/cred.js';
/** bearer tokens in the site file: at least this many characters ... */
export const MIN_TOKEN_CHARS = 16;
/** ... and at most this many bytes */
export const MAX_TOKEN_BYTES = 256;
/** the `reason` an operator gives for an action */
export const MAX_REASON_BYTES = 1024;
/** default of the site file's `maxClockSkew` (seconds): a message `ts` further ahead of the server clock is refused */
export const DEFAULT_MAX_CLOCK_SKEW_S = 300;
/** at most this many `rejected` event-log records per controller per second; the rest are counted, not written */
export const MAX_REJECTED_RECORDS_PER_S = 20;
/** the error text kept in a `rejected` event-log record (it may quote input) */
export const MAX_REJECTED_TEXT_BYTES = 256;
/** live-stream sockets one user may hold at once (a wall of dashboards), and all users together */
export const MAX_STREAMS_PER_USER = 32;
export const MAX_STREAMS = 1024;
/** GET /v1/events `cursor`: a previous page's `next` (46 characters; store/event-cursor.ts) */
export const MAX_EVENTS_CURSOR_CHARS = 64;
/** `since` / `until` of GET /v1/events and `apb events` (an ISO 8601 date-time with 9 fraction digits and an offset is 35) */
export const MAX_INSTANT_CHARS = 40;
/** GET /v1/areas/{area}/credentials `q` (the longest credential text, "s:" + 64 URL-encoded UTF-8 bytes, is 194) and `cursor` (34) */
export const MAX_MUSTER_Q_CHARS = 200;
export const MAX_MUSTER_CURSOR_CHARS = 48;
