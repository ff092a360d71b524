import type { CanonicalMessage } from './types.js';

/** A message an adapter leaves alone (ping, or a type the hub will refuse): its `t` is checked by the hub. */
export const passThrough = (msg: Record<string, unknown>): CanonicalMessage => msg as unknown as CanonicalMessage;
