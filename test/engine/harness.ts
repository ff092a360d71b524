/**
 * Shared helpers for the engine contract tests: sites from YAML, the
 * list of cores every contract test runs over, and short op builders.
 * The WASM core is always in the list: if it cannot be loaded, its tests
 * fail with the load error instead of being skipped.
 */
import { loadSiteText } from '../../src/config/load.js';
import type { CompiledSite } from '../../src/config/types.js';
import type { Cred } from '../../src/engine/cred.js';
import { createReferenceCore } from '../../src/engine/reference-core.js';
import type { CoreOp, CoreResult, CredState, EngineCore } from '../../src/engine/types.js';

export interface CoreFactory { kind: 'wasm' | 'reference'; make(site: CompiledSite): EngineCore }

async function loadCores(): Promise<CoreFactory[]> {
  const cores: CoreFactory[] = [{ kind: 'reference', make: createReferenceCore }];
  try {
    const mod = (await import('../../src/engine/wasm-core.js' as string)) as { createWasmCore(site: CompiledSite): EngineCore };
    cores.push({ kind: 'wasm', make: (site) => mod.createWasmCore(site) });
  } catch (e) {
    cores.push({ kind: 'wasm', make: () => { throw new Error(`the WASM core could not be loaded: ${(e as Error).message}`); } });
  }
  // APB_CORES=reference narrows the list while developing; the suite runs both.
  const only = process.env.APB_CORES?.split(',');
  return only ? cores.filter((c) => only.includes(c.kind)) : cores;
}

export const CORES: CoreFactory[] = await loadCores();

const HEADER = 'site: test\ntimezone: Europe/London\n';

/** a compiled site from YAML; `controllers` defaults to one controller `c` owning every reader */
export function site(yaml: string): CompiledSite {
  const text = HEADER + yaml + (/^controllers:/m.test(yaml) ? '' : '\ncontrollers:\n  - { id: c, token: t-long-test-token }\n');
  return loadSiteText(text).site;
}

export const int = (n: number | bigint): Cred => ({ kind: 'int', value: BigInt(n) });
export const str = (s: string): Cred => ({ kind: 'str', value: s, bytes: new TextEncoder().encode(s) });
export const bin = (hex: string): Cred => ({ kind: 'bin', value: Uint8Array.from(Buffer.from(hex, 'hex')) });

/** what Bench needs: a core or an Engine (src/engine/engine.ts) */
export interface Applier {
  apply(ops: CoreOp[], now: number): CoreResult[];
  occupancy(area: number): number;
  state(c: Cred): CredState;
}

/** A core (or engine) plus name lookups, for readable tests. */
export class Bench<C extends Applier = EngineCore> {
  constructor(readonly site: CompiledSite, readonly core: C) {}
  r(id: string): number {
    const r = this.site.readerIndex.get(id);
    if (r === undefined) throw new Error(`no reader ${id}`);
    return r;
  }
  a(id: string): number {
    const a = this.site.areaIndex.get(id);
    if (a === undefined) throw new Error(`no area ${id}`);
    return a;
  }
  one(op: CoreOp, t: number): CoreResult { return this.core.apply([op], t)[0]!; }
  badge(c: Cred, reader: string, t: number) {
    return this.one({ op: 'badge', cred: c, reader: this.r(reader) }, t) as Extract<CoreResult, { op: 'badge' }>;
  }
  passage(c: Cred, reader: string, t: number): boolean {
    return (this.one({ op: 'passage', cred: c, reader: this.r(reader) }, t) as { applied: boolean }).applied;
  }
  offline(c: Cred, reader: string, ts: number, granted: boolean, now: number) {
    return this.one({ op: 'offline', cred: c, reader: this.r(reader), ts, granted }, now) as Extract<CoreResult, { op: 'offline' }>;
  }
  action(op: CoreOp, t: number): number { return (this.one(op, t) as { changed: number }).changed; }
  loc(c: Cred): string | null {
    const l = this.core.state(c).location;
    return l < 0 ? null : this.site.areaIds[l]!;
  }
  occ(area: string): number { return this.core.occupancy(this.a(area)); }
}

/** [code, mode, area id|null] triples of a result's violations */
export function vios(site: CompiledSite, res: { violations: { code: string; mode: string; area: number }[] }): string[] {
  return res.violations.map((v) => `${v.code}/${v.mode}/${v.area >= 0 ? site.areaIds[v.area] : '-'}`);
}

export const T0 = Date.UTC(2026, 0, 5, 9, 0, 0); // Monday 09:00 UTC (= London local time in winter)
export const SEC = 1000, MIN = 60 * SEC, HOUR = 60 * MIN, DAY = 24 * HOUR;
