/**
 * Compares what the engine decided with what the ground truth expected,
 * badge by badge: violations found must equal violations injected, exactly
 * (same codes in the same order on the same badge, and the same grant).
 */
import type { SimEvent } from './scenario.js';

export interface Mismatch { at: number; cred: number; reader: string; tag: string; expected: string; found: string }

export interface CheckSummary {
  sent: number; badges: number; passages: number; granted: number; denied: number;
  /** violation counts by code: what the generator injected and what the engine found */
  injected: Record<string, number>;
  found: Record<string, number>;
  /** found violations by code and mode, e.g. "reentry/hard" */
  foundModes: Record<string, number>;
  errors: Record<string, number>;
  mismatches: number;
  samples: Mismatch[];
}

const show = (grant: boolean, codes: readonly string[]) => `${grant ? 'grant' : 'deny'}${codes.length ? ' [' + codes.join(',') + ']' : ''}`;

export class Checker {
  readonly s: CheckSummary = { sent: 0, badges: 0, passages: 0, granted: 0, denied: 0, injected: {}, found: {}, foundModes: {}, errors: {}, mismatches: 0, samples: [] };
  constructor(private readerName: (r: number) => string, private maxSamples = 10) {}
  passage(): void { this.s.sent++; this.s.passages++; }
  error(code: string): void { this.s.sent++; this.s.errors[code] = (this.s.errors[code] ?? 0) + 1; }
  /** one decided badge: `violations` as the engine reported them */
  badge(ev: SimEvent, grant: boolean, violations: readonly { code: string; mode?: string }[]): void {
    const s = this.s;
    s.sent++; s.badges++;
    if (grant) s.granted++; else s.denied++;
    for (const v of violations) {
      s.found[v.code] = (s.found[v.code] ?? 0) + 1;
      if (v.mode) s.foundModes[`${v.code}/${v.mode}`] = (s.foundModes[`${v.code}/${v.mode}`] ?? 0) + 1;
    }
    const exp = ev.expect;
    if (!exp) return;
    for (const c of exp.codes) s.injected[c] = (s.injected[c] ?? 0) + 1;
    const same = exp.grant === grant && exp.codes.length === violations.length && exp.codes.every((c, i) => c === violations[i]!.code);
    if (!same) {
      s.mismatches++;
      if (s.samples.length < this.maxSamples) {
        s.samples.push({ at: ev.at, cred: ev.cred, reader: this.readerName(ev.reader), tag: ev.tag, expected: show(exp.grant, exp.codes), found: show(grant, violations.map((v) => v.code)) });
      }
    }
  }
}

export function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** A loud, complete description of a failed check (both counts and samples). */
export function describeMismatch(label: string, s: CheckSummary): string {
  const lines = [
    `${label}: violations found != violations injected (${s.mismatches} badge(s) decided differently from the ground truth)`,
    `  injected: ${JSON.stringify(s.injected)} (total ${total(s.injected)})`,
    `  found:    ${JSON.stringify(s.found)} (total ${total(s.found)})`,
  ];
  if (total(s.errors)) lines.push(`  errors:   ${JSON.stringify(s.errors)}`);
  for (const m of s.samples) lines.push(`  at ${new Date(m.at).toISOString()} cred ${m.cred} reader ${m.reader} (${m.tag}): expected ${m.expected}, found ${m.found}`);
  return lines.join('\n');
}
