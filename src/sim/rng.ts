/**
 * Seeded PRNG (sfc32) so a scenario is the same stream for the same seed:
 * tests and benchmark runs are reproducible, and a failing check can be
 * re-run exactly.
 */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9; this.b = 0x243f6a88; this.c = 0xb7e15162; this.d = (seed >>> 0) ^ 0xdeadbeef;
    for (let i = 0; i < 15; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** [0, 1) */
  next(): number { return this.u32() / 4294967296; }
  /** integer in [0, n) */
  int(n: number): number { return Math.floor(this.next() * n); }
  /** integer in [lo, hi] */
  range(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  /** triangular distribution on [lo, hi] with its mode at `mode` (arrival peaks) */
  triangular(lo: number, mode: number, hi: number): number {
    const u = this.next(), f = (mode - lo) / (hi - lo);
    return u < f ? lo + Math.sqrt(u * (hi - lo) * (mode - lo)) : hi - Math.sqrt((1 - u) * (hi - lo) * (hi - mode));
  }
  /** normal(mu, sigma) clipped to [lo, hi] (Box-Muller) */
  normal(mu: number, sigma: number, lo = -Infinity, hi = Infinity): number {
    const u = 1 - this.next(), v = this.next();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return Math.min(hi, Math.max(lo, mu + sigma * z));
  }
}
