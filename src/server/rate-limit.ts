/**
 * Per-controller token bucket: `rateLimit` messages per second (SPEC 10,
 * default 10000) with a burst of one second's worth. Every message takes a
 * token, whether it is decided, refused or itself rate limited: a message
 * taken when the bucket is empty is answered `rate_limited`, changes
 * nothing, and still pushes the bucket into debt (down to one second's
 * worth below zero). So a controller that keeps sending over its limit gets
 * no token back until it slows down, and the hub can refuse its frames
 * without decoding them (admit): the work it causes stays O(rate), not
 * O(what it sends).
 */
export const DEFAULT_RATE_LIMIT = 10000;

export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(public rate: number, now = performance.now()) {
    this.tokens = rate;
    this.last = now;
  }

  private refill(now: number): void {
    const dt = now - this.last;
    if (dt > 0) {
      this.tokens = Math.min(this.rate, this.tokens + (dt * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Takes one token; false (and the token is owed) when none was left. */
  take(now = performance.now()): boolean {
    this.refill(now);
    const ok = this.tokens >= 1;
    this.tokens = Math.max(-this.rate, this.tokens - 1);
    return ok;
  }

  /** Takes n tokens when at least n are there (true); else takes nothing (false). */
  takeAll(n: number, now = performance.now()): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Takes n tokens at once for n messages refused without a look (they are owed). */
  charge(n: number, now = performance.now()): void {
    this.refill(now);
    this.tokens = Math.max(-this.rate, this.tokens - n);
  }

  /** True when more than half a second's worth of messages is owed: the controller keeps sending while refused. */
  exhausted(now = performance.now()): boolean {
    this.refill(now);
    return this.tokens < -this.rate / 2;
  }

  /** Whether a message now would get a token (takes nothing). */
  admit(now = performance.now()): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }
}
