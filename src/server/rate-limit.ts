/**
 * Per-controller token bucket: `rateLimit` messages per second (SPEC 10,
 * default 10000) with a burst of one second's worth. A message taken when
 * the bucket is empty is answered `rate_limited` and changes nothing.
 */
export const DEFAULT_RATE_LIMIT = 10000;

export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(public rate: number, now = performance.now()) {
    this.tokens = rate;
    this.last = now;
  }
  /** Takes one token; false when none is left. */
  take(now = performance.now()): boolean {
    const dt = now - this.last;
    if (dt > 0) {
      this.tokens = Math.min(this.rate, this.tokens + (dt * this.rate) / 1000);
      this.last = now;
    }
    if (this.tokens >= 1) { this.tokens -= 1; return true; }
    return false;
  }
}
