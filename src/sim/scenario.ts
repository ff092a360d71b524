/**
 * What a scenario generator produces: a site file and a time-ordered event
 * stream in simulated time, each badge carrying the decision the ground
 * truth (truth.ts) expects. Generators build the stream person by person
 * with a Walk, which runs both truth clocks and marks the people whose
 * outcomes depend on timing (kept out of wall-clock server runs).
 */
import { badge, newPerson, passage, sameExpect, truthSite, type Expect, type LooseSite, type PersonState, type TruthSite } from './truth.js';

export const BADGE = 0, PASSAGE = 1;

/**
 * One simulated event. `expect` is the sim-clock truth (badges only);
 * `timing` marks every event of a person whose outcome would differ if no
 * time passed between their events.
 */
export interface SimEvent {
  at: number;                 // simulated ms since the epoch
  kind: 0 | 1;                // BADGE | PASSAGE
  cred: number;
  reader: number;             // index into scenario.truth.readers
  expect: Expect | null;
  timing: boolean;
  tag: string;                // the behaviour that produced it ("passback", "normal", …)
}

export interface Scenario {
  name: string;
  seed: number;
  config: LooseSite;
  truth: TruthSite;
  start: number; end: number;
  events: SimEvent[];
  persons: number;
  /** people whose outcomes depend on timing (presence timeouts, lockouts, resets) */
  timingPersons: number;
  /** all features of the site are modelled: expected violations are exact */
  exact: boolean;
}

export interface ScenarioOptions {
  seed?: number;
  /** people (stadium, office) or trips (metro); defaults are the full sizes */
  size?: number;
  /** first credential number (a fresh range for runs against a persistent server) */
  credBase?: number;
}

export class ScenarioBuilder {
  readonly events: SimEvent[] = [];
  persons = 0;
  timingPersons = 0;
  readonly truth: TruthSite;
  constructor(readonly config: LooseSite, readonly start: number, readonly end: number) {
    this.truth = truthSite(config, { from: start, to: end });
  }
  reader(id: string): number {
    const r = this.truth.readerIndex.get(id);
    if (r === undefined) throw new Error(`scenario: no reader "${id}"`);
    return r;
  }
  person(cred: number): Walk { this.persons++; return new Walk(this, cred); }
  finish(name: string, seed: number): Scenario {
    this.events.sort((a, b) => a.at - b.at);   // stable: one person's events keep their order
    return {
      name, seed, config: this.config, truth: this.truth, start: this.start, end: this.end, events: this.events,
      persons: this.persons, timingPersons: this.timingPersons, exact: this.truth.unsupported.length === 0,
    };
  }
}

/** One person's timeline: events must be added in time order; times are forced strictly increasing. */
export class Walk {
  private sim: PersonState = newPerson();
  private zero: PersonState = newPerson();
  private mine: SimEvent[] = [];
  private timing = false;
  t = 0;
  constructor(private b: ScenarioBuilder, readonly cred: number) {}
  private at(t: number): number { const x = Math.max(Math.round(t), this.t + 1); this.t = x; return x; }
  badge(reader: string, t: number, tag = 'normal'): Expect {
    const r = this.b.reader(reader), at = this.at(t);
    const e = badge(this.b.truth, this.sim, r, at, 'sim');
    const z = badge(this.b.truth, this.zero, r, at, 'zero');
    if (!sameExpect(e, z)) this.timing = true;
    this.mine.push({ at, kind: BADGE, cred: this.cred, reader: r, expect: e, timing: false, tag });
    return e;
  }
  passage(reader: string, t: number, tag = 'normal'): void {
    const r = this.b.reader(reader), at = this.at(t);
    passage(this.b.truth, this.sim, r, at, 'sim');
    passage(this.b.truth, this.zero, r, at, 'zero');
    this.mine.push({ at, kind: PASSAGE, cred: this.cred, reader: r, expect: null, timing: false, tag });
  }
  done(): void {
    if (this.timing) { this.b.timingPersons++; for (const e of this.mine) e.timing = true; }
    for (const e of this.mine) this.b.events.push(e);
  }
}

/** minutes / seconds → ms */
export const MIN = 60_000, SEC = 1000, HOUR = 3_600_000;
