/**
 * The 32-bit FNV-1a fingerprint that D/index's runs (name-runs.ts) key names by, over the UTF-16
 * code units of the name.
 *
 * The journal holds credentials and message ids of the fast path as numbers, while the index names
 * them by their text (String(cred), and the 20-digit padded id). continueNumber hashes the decimal
 * text of a number without making the string: the index worker did that for every record, a string
 * per credential and one per id, which was a sixth of its time and much of its garbage.
 */
export const FNV_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const ZERO = 48;

/** `h` (an FNV-1a state) continued with the code units of `s`; finish with `>>> 0` */
export function continueText(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, FNV_PRIME); }
  return h;
}

export function fingerprint(s: string): number { return continueText(FNV_BASIS, s) >>> 0; }

const digits = new Uint8Array(16); // a safe integer has at most 16 decimal digits

/**
 * `h` continued with the text of `x` as String(x).padStart(width, '0') gives it; finish with `>>> 0`.
 * Non-negative safe integers (every credential and id of the fast path) are hashed digit by digit,
 * in two halves of at most 8 digits each: `%` on a number past 2^31 is a floating-point remainder,
 * about 25 ns a digit, 32-bit integer division a few. Any other number goes through its string.
 */
export function continueNumber(h: number, x: number, width = 0): number {
  if (!(Number.isSafeInteger(x) && x >= 0)) return continueText(h, String(x).padStart(width, '0'));
  let hi = 0, lo = x;
  if (x >= 1e8) {
    hi = Math.floor(x / 1e8);
    lo = x - hi * 1e8; // exact (below 2^53); the quotient's rounding corrected below
    if (lo < 0) { hi--; lo += 1e8; } else if (lo >= 1e8) { hi++; lo -= 1e8; }
  }
  let l = lo | 0, u = hi | 0, n = 0;
  // least significant first: lo's 8 digits (zeros included) when there is a high half
  do { const q = (l / 10) | 0; digits[n++] = ZERO + l - q * 10; l = q; } while (l > 0 || (u > 0 && n < 8));
  while (u > 0) { const q = (u / 10) | 0; digits[n++] = ZERO + u - q * 10; u = q; }
  for (let i = n; i < width; i++) { h ^= ZERO; h = Math.imul(h, FNV_PRIME); }
  while (n > 0) { h ^= digits[--n]!; h = Math.imul(h, FNV_PRIME); }
  return h;
}

/** `h` continued with one code unit (a separator) */
export function continueCode(h: number, code: number): number { return Math.imul(h ^ code, FNV_PRIME); }
