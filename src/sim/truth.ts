/**
 * Ground truth for the scenario generators: a deliberately small model of
 * the SPEC 4/5/12 rules the simulated sites use (entry/exit modes, strict,
 * presenceTimeout, commitOn passage, reuse lockout, periodic resets),
 * written from the SPEC and sharing no code with the engine. A generator
 * walks each simulated person through their day with it, so it KNOWS which
 * badge must raise which violation before the engine sees the stream.
 *
 * Features it does not model (maxOccupancy with entry on, schedules, a
 * forgetAfter shorter than the simulated window) make a site "inexact": its
 * findings are then reported but not checked. Generated credentials are a
 * range of their own, never the site's configured (e.g. exempt) ones.
 *
 * Two clocks: 'sim' judges every duration by the events' simulated times
 * (what the in-process engine sees); 'zero' judges as if no time passed
 * between a person's events (what a server sees when the stream is played
 * as fast as possible: its clock is wall time). A person whose outcomes
 * differ between the two depends on timing and is kept out of server runs.
 */
import type { ViolationCode } from '../engine/types.js';

export type Mode = 'off' | 'soft' | 'hard';

export interface TruthSite {
  areaIds: string[];              // [0] = outside
  parent: number[];               // parent[0] = -1
  entry: Mode[]; exit: Mode[]; strict: boolean[];
  presenceMs: number[];           // 0 = never
  commitPassage: boolean[]; passageMs: number[];
  readers: { id: string; from: number; to: number; controller: string; lockoutMs: number; reuseHard: boolean }[];
  readerIndex: Map<string, number>;
  /** periodic reset instants in simulated time, ascending */
  resets: { area: number; at: number }[];
  /** features the model does not cover (empty = exact) */
  unsupported: string[];
}

/** the loose shape of a site file (SPEC 10) with defaults still missing */
export interface LooseSite {
  site?: string; timezone?: string; forgetAfter?: number;
  areas: { id: string; parent?: string; entry?: Mode; exit?: Mode; strict?: boolean; presenceTimeout?: number; supervision?: Mode;
    schedule?: unknown; resetAt?: string[]; maxOccupancy?: number | null; commitOn?: 'grant' | 'passage'; passageTimeout?: number }[];
  readers: { id: string; from: string; to: string; controller: string; reuseLockout?: number; reuseMode?: 'soft' | 'hard' }[];
  controllers: { id: string; token: string; protocol?: string; rateLimit?: number }[];
  credentials?: { cred: number | string; exempt?: boolean }[];
  [k: string]: unknown;
}

/** Builds the model's tables from a site file; resetAt instants are listed for [from, to] (UTC sites only). */
export function truthSite(cfg: LooseSite, window?: { from: number; to: number }): TruthSite {
  const areaIds = ['outside', ...cfg.areas.map((a) => a.id)];
  const idx = new Map(areaIds.map((id, i) => [id, i]));
  const unsupported: string[] = [];
  const area = (name: string) => { const i = idx.get(name); if (i === undefined) throw new Error(`unknown area ${name}`); return i; };
  const s: TruthSite = {
    areaIds, parent: [-1], entry: ['off'], exit: ['off'], strict: [false], presenceMs: [0], commitPassage: [false], passageMs: [0],
    readers: [], readerIndex: new Map(), resets: [], unsupported,
  };
  for (const a of cfg.areas) {
    s.parent.push(area(a.parent ?? 'outside'));
    s.entry.push(a.entry ?? 'off'); s.exit.push(a.exit ?? 'off'); s.strict.push(a.strict ?? false);
    s.presenceMs.push((a.presenceTimeout ?? 0) * 1000);
    s.commitPassage.push(a.commitOn === 'passage'); s.passageMs.push((a.passageTimeout ?? 10) * 1000);
    if (a.maxOccupancy != null && (a.entry ?? 'off') !== 'off') unsupported.push(`areas.${a.id}.maxOccupancy`);
    if (a.schedule !== undefined && a.schedule !== 'always') unsupported.push(`areas.${a.id}.schedule`);
    if (a.resetAt?.length) {
      // instants are listed for UTC sites only (the generated ones); wall-clock server runs do not model resets at all
      if (window && (cfg.timezone ?? 'UTC') === 'UTC') {
        for (const hhmm of a.resetAt) {
          const [h, m] = hhmm.split(':').map(Number) as [number, number];
          const day0 = Math.floor(window.from / 86400000) * 86400000;
          for (let d = day0; d <= window.to; d += 86400000) {
            const at = d + (h * 60 + m) * 60000;
            if (at > window.from && at <= window.to) s.resets.push({ area: area(a.id), at });
          }
        }
      }
    }
  }
  // forgetAfter matters only if it can pass within the simulated window; generated credentials never collide with configured (exempt) ones
  if (cfg.forgetAfter && (!window || cfg.forgetAfter * 1000 <= window.to - window.from)) unsupported.push('forgetAfter');
  s.resets.sort((x, y) => x.at - y.at || x.area - y.area);
  for (const r of cfg.readers) {
    s.readerIndex.set(r.id, s.readers.length);
    s.readers.push({ id: r.id, from: area(r.from), to: area(r.to), controller: r.controller, lockoutMs: (r.reuseLockout ?? 0) * 1000, reuseHard: (r.reuseMode ?? 'hard') === 'hard' });
  }
  return s;
}

/** Is area `a` inside `x` (or equal)? */
export function inside(s: TruthSite, a: number, x: number): boolean {
  for (let i = a; i >= 0; i = s.parent[i]!) if (i === x) return true;
  return false;
}

/** areas containing `a`, innermost first (outside excluded) */
function chain(s: TruthSite, a: number): number[] {
  const out: number[] = [];
  for (let i = a; i > 0; i = s.parent[i]!) out.push(i);
  return out;
}

export interface PersonState {
  loc: number; lastMoveAt: number; lastReader: number; lastReaderAt: number;
  pending: { reader: number; to: number; deadline: number } | null;
  resetCursor: number;
}

export function newPerson(): PersonState {
  return { loc: -1, lastMoveAt: 0, lastReader: -1, lastReaderAt: 0, pending: null, resetCursor: 0 };
}

export interface Expect { grant: boolean; codes: ViolationCode[] }
export const NONE: Expect = Object.freeze({ grant: true, codes: Object.freeze([]) as unknown as ViolationCode[] });

export type Clock = 'sim' | 'zero';

/** Runs the periodic resets due at or before t ('sim' clock only). */
function advance(s: TruthSite, p: PersonState, t: number, clock: Clock): void {
  if (clock === 'zero') return;
  while (p.resetCursor < s.resets.length && s.resets[p.resetCursor]!.at <= t) {
    const r = s.resets[p.resetCursor++]!;
    if (p.loc >= 0 && inside(s, p.loc, r.area)) {
      p.loc = -1; p.lastMoveAt = r.at; p.lastReader = -1; p.lastReaderAt = 0; p.pending = null;
    }
  }
}

function elapsed(clock: Clock, from: number, t: number): number { return clock === 'zero' ? 0 : t - from; }

/** is the location known for the checks of area x at t (presence timeout, SPEC 4.2 / 12) */
function known(s: TruthSite, p: PersonState, x: number, t: number, clock: Clock): boolean {
  if (p.loc < 0) return false;
  const to = s.presenceMs[x]!;
  return to === 0 || elapsed(clock, p.lastMoveAt, t) < to;
}

function apply(p: PersonState, to: number, t: number): void {
  p.loc = to; p.lastMoveAt = t; p.pending = null;
}

/** SPEC 4 for a badge at reader r, time t; updates the person's state. */
export function badge(s: TruthSite, p: PersonState, r: number, t: number, clock: Clock): Expect {
  advance(s, p, t, clock);
  const rd = s.readers[r]!;
  const codes: ViolationCode[] = [];
  let hard = false;
  if (rd.lockoutMs > 0 && p.lastReader === r && elapsed(clock, p.lastReaderAt, t) < rd.lockoutMs) { codes.push('reuse'); hard ||= rd.reuseHard; }
  const fromChain = chain(s, rd.from), toChain = chain(s, rd.to);
  const exits = fromChain.filter((x) => !toChain.includes(x));            // innermost first
  const enters = toChain.filter((x) => !fromChain.includes(x)).reverse(); // outermost first
  for (const x of exits) {
    if (s.exit[x] === 'off') continue;
    if (known(s, p, x, t, clock) && !inside(s, p.loc, x)) { codes.push('exit_not_entered'); hard ||= s.exit[x] === 'hard'; }
  }
  const entering: [ViolationCode, boolean][] = [];
  for (const y of enters) {
    if (s.entry[y] === 'off') continue;
    const k = known(s, p, y, t, clock);
    if (k && inside(s, p.loc, y)) entering.push(['reentry', s.entry[y] === 'hard']);
    if (s.strict[y] && k && p.loc !== rd.from) entering.push(['sequence', s.entry[y] === 'hard']);
  }
  // SPEC 12: listed by code order first (reentry before sequence), then area order
  for (const code of ['reentry', 'sequence'] as const) for (const [c, h] of entering) if (c === code) { codes.push(c); hard ||= h; }
  if (hard) return { grant: false, codes };
  p.lastReader = r; p.lastReaderAt = t;
  const involved = [...exits, ...enters].filter((x) => s.commitPassage[x]);
  if (involved.length) p.pending = { reader: r, to: rd.to, deadline: t + Math.max(...involved.map((x) => s.passageMs[x]!)) };
  else apply(p, rd.to, t);
  return codes.length ? { grant: true, codes } : NONE;
}

/** SPEC 5: a passage applies the pending move made at the same reader, before its deadline. */
export function passage(s: TruthSite, p: PersonState, r: number, t: number, clock: Clock): void {
  advance(s, p, t, clock);
  const pd = p.pending;
  if (pd && pd.reader === r && (clock === 'zero' || t < pd.deadline)) apply(p, pd.to, t);
  else if (pd && clock === 'sim' && t >= pd.deadline) p.pending = null;
}

export function sameExpect(a: Expect, b: Expect): boolean {
  return a.grant === b.grant && a.codes.length === b.codes.length && a.codes.every((c, i) => c === b.codes[i]);
}
