/**
 * Local decisions (reader policy `local`): the engine's own core
 * (src/engine, WASM) run on the bridge over a cut-down site, fed with what
 * the engine last said about each credential this bridge has seen.
 *
 * The cut-down site: the areas the bridge's readers move people between,
 * with their ancestors (the rules look at every area a move enters or
 * exits), the bridge's readers, the standing credential flags. Occupancy
 * limits are dropped: the bridge cannot count the people the other gates
 * let in. A credential last seen in an area outside the cut-down site is
 * placed in its innermost ancestor that is in it: "inside X" answers stay
 * exact for every area the bridge can see; a strict area may then accept
 * a person who is in a sibling area (see the installer's guide).
 *
 * Known state: every engine decision the bridge receives updates it (a grant
 * moves the credential: applied like an offline grant at that instant; at a
 * reader whose move waits for a passage, only when the passage comes), and
 * after an outage the engine's own state of the credentials involved
 * replaces it when a viewer token is configured. Unknown credentials are
 * decided like the engine decides them (first move allowed), or, with an
 * `offline.facilities` allowlist, only when their facility code is listed.
 */
import type { LoadedSite } from '../../config/load.js';
import { compileSite } from '../../config/compile.js';
import type { CompiledSite, SiteConfig } from '../../config/types.js';
import { createEngine } from '../../engine/engine.js';
import { parseCred, type Cred } from '../../engine/cred.js';
import type { CoreOp, Engine } from '../../engine/types.js';
import type { KnownState } from './store.js';

export interface LocalDecision { grant: boolean; reason: string; area: string | null }

/** the site the bridge decides with: its readers' areas and their ancestors */
export function localSite(full: LoadedSite, controller: string, readerIds: string[]): CompiledSite {
  const cfg = full.config;
  const want = new Set(readerIds);
  const readers = cfg.readers.filter((r) => want.has(r.id));
  const parentOf = new Map(cfg.areas.map((a) => [a.id, a.parent]));
  const keep = new Set<string>();
  for (const r of readers) for (let a: string | undefined = r.from; a && a !== 'outside'; a = parentOf.get(a)) keep.add(a);
  for (const r of readers) for (let a: string | undefined = r.to; a && a !== 'outside'; a = parentOf.get(a)) keep.add(a);
  const config: SiteConfig = {
    ...cfg,
    areas: cfg.areas.filter((a) => keep.has(a.id)).map((a) => ({ ...a, maxOccupancy: null })),
    readers,
    controllers: cfg.controllers.filter((c) => c.id === controller),
    users: [], webhooks: [], uhppote: undefined,
  } as SiteConfig;
  return compileSite(config);
}

export class LocalDecider {
  readonly site: CompiledSite;
  private engine: Engine;
  private readonly parentOf: Map<string, string>;
  /** grants at readers whose move waits for a passage: cred → reader, until the passage or the deadline */
  private readonly awaitingPassage = new Map<string, { reader: string; until: number }>();

  constructor(full: LoadedSite, controller: string, readerIds: string[], private readonly known: Map<string, KnownState>,
    private readonly facilities: Set<number> | null, private readonly remember: (cred: string, s: KnownState) => void) {
    this.site = localSite(full, controller, readerIds);
    this.parentOf = new Map(full.config.areas.map((a) => [a.id, a.parent]));
    this.engine = this.rebuild();
  }

  private cred(c: string): Cred { return parseCred(c); }

  /** the innermost area of the cut-down site containing `area` (of the full site) */
  private localArea(area: string | null): number {
    for (let a = area; a; a = this.parentOf.get(a) ?? null) {
      const i = this.site.areaIndex.get(a);
      if (i !== undefined) return i;
      if (a === 'outside') return 0;
    }
    return 0;
  }

  /** a fresh core holding the known states, replayed in time order (each at its own instant) */
  private rebuild(): Engine {
    const e = createEngine(this.site, { core: 'wasm' });
    const all = [...this.known.entries()].sort((a, b) => a[1].lastMoveAt - b[1].lastMoveAt);
    for (const [text, s] of all) {
      const cred = this.cred(text);
      const at = Math.max(1, s.lastMoveAt);
      const r = s.lastReader !== null ? this.site.readerIndex.get(s.lastReader) : undefined;
      const ops: CoreOp[] = [];
      if (s.location === null) { if (s.lastMoveAt > 0) ops.push({ op: 'reset', cred }); }
      else if (r !== undefined && s.lastReaderAt === s.lastMoveAt && this.site.areaIds[this.site.readerTo[r]!] === s.location) {
        ops.push({ op: 'offline', cred, reader: r, ts: at, granted: true }); // also restores the reuse memory
      } else ops.push({ op: 'setLocation', cred, area: this.localArea(s.location) });
      if (s.exempt) ops.push({ op: 'exempt', cred, on: true });
      if (s.freePass) ops.push({ op: 'forgive', cred });
      e.apply(ops, at);
    }
    e.tick(Date.now());
    return e;
  }

  /** decides a badge here, and applies it to the local state like the engine would */
  decide(cred: string, reader: string, now: number): LocalDecision {
    const r = this.site.readerIndex.get(reader);
    if (r === undefined) return { grant: false, reason: 'unknown_reader', area: null };
    const c = this.cred(cred);
    if (this.facilities && !this.known.has(cred) && !this.engine.state(c).stored) {
      const m = /^([0-9]+):[0-9]+$/.exec(cred);
      if (!m || !this.facilities.has(Number(m[1]))) return { grant: false, reason: 'not_allowlisted', area: null };
    }
    const res = this.engine.apply([{ op: 'badge', cred: c, reader: r }], now)[0]!;
    if (res.op !== 'badge') return { grant: false, reason: 'internal', area: null };
    if (res.grant && !res.pending) this.learn(cred, reader, now);
    return { grant: res.grant, reason: res.reason, area: res.grant ? this.site.areaIds[res.area]! : null };
  }

  /** the engine (or the door, offline) granted `cred` at `reader` at `at`: the move happened */
  granted(cred: string, reader: string, at: number): void {
    const r = this.site.readerIndex.get(reader);
    if (r === undefined) return;
    if (this.site.readerPassageMs[r]! > 0) { this.awaitingPassage.set(cred, { reader, until: at + this.site.readerPassageMs[r]! }); return; }
    this.engine.apply([{ op: 'offline', cred: this.cred(cred), reader: r, ts: at, granted: true }], at);
    this.learn(cred, reader, at);
  }

  /** a passage at `reader`: a grant waiting for it (the engine's, or the local core's own) is applied */
  passage(cred: string, reader: string, at: number): void {
    const r = this.site.readerIndex.get(reader);
    if (r === undefined) return;
    const w = this.awaitingPassage.get(cred);
    if (w && w.reader === reader && at < w.until) {
      this.awaitingPassage.delete(cred);
      this.engine.apply([{ op: 'offline', cred: this.cred(cred), reader: r, ts: at, granted: true }], at);
      this.learn(cred, reader, at);
      return;
    }
    const res = this.engine.apply([{ op: 'passage', cred: this.cred(cred), reader: r }], at)[0]!;
    if (res.op === 'passage' && res.applied) this.learn(cred, reader, at);
  }

  private learn(cred: string, reader: string, at: number): void {
    const r = this.site.readerIndex.get(reader)!;
    const prev = this.known.get(cred);
    const s: KnownState = {
      location: this.site.areaIds[this.site.readerTo[r]!]!, lastMoveAt: at, lastReader: reader, lastReaderAt: at,
      exempt: prev?.exempt ?? false, freePass: false,
    };
    this.known.set(cred, s);
    this.remember(cred, s);
  }

  /** the engine's own state of some credentials (after an outage): replaces what the bridge knew */
  refresh(states: [string, KnownState][]): void {
    if (!states.length) return;
    for (const [cred, s] of states) { this.known.set(cred, s); this.remember(cred, s); }
    this.engine = this.rebuild();
  }

  /** where the local core places a credential now (tests, inspection) */
  locationOf(cred: string): string | null {
    const s = this.engine.state(this.cred(cred));
    return s.location >= 0 ? this.site.areaIds[s.location]! : null;
  }
}
