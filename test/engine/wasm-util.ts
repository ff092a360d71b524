/**
 * Helpers for the WASM core's own tests (test/engine/wasm-*.test.ts):
 * sites from YAML, credential builders, a small deterministic RNG, and
 * the SPEC 8 occupancy definition computed from credential states.
 */
import { loadSiteText } from '../../src/config/load.js';
import type { CompiledSite } from '../../src/config/types.js';
import type { Cred } from '../../src/engine/cred.js';
import type { EngineCore } from '../../src/engine/types.js';

export const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
export const SEC = 1000, MIN = 60 * SEC, HOUR = 60 * MIN;

/** a compiled site from YAML (areas/readers); one controller `c` owns every reader */
export function siteOf(yaml: string, forgetAfter = 0): CompiledSite {
  return loadSiteText(`site: wasm-test\ntimezone: UTC\nforgetAfter: ${forgetAfter}\n${yaml}\ncontrollers:\n  - { id: c, token: t-long-test-token }\n`).site;
}

export const int = (n: number | bigint): Cred => ({ kind: 'int', value: BigInt(n) });
export const str = (s: string): Cred => ({ kind: 'str', value: s, bytes: new TextEncoder().encode(s) });
export const bin = (bytes: number[] | Uint8Array): Cred => ({ kind: 'bin', value: Uint8Array.from(bytes) });

export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

export function isInside(site: CompiledSite, loc: number, area: number): boolean {
  for (let a = loc; a >= 0; a = site.parent[a]!) if (a === area) return true;
  return false;
}

/** occupancy of `area` by SPEC 8's definition, from the states of `creds` at clock `now` */
export function occupancyByDefinition(core: EngineCore, site: CompiledSite, creds: Cred[], area: number, now: number): number {
  let n = 0;
  const to = site.presenceTimeoutMs[area]!;
  for (const c of creds) {
    const s = core.state(c);
    if (s.location < 0 || !isInside(site, s.location, area)) continue;
    if (to > 0 && now - s.lastMoveAt >= to) continue;
    n++;
  }
  return n;
}

/** a wasm module of just `(global (export "ABI_VERSION") i32 (i32.const v))` */
export function wasmWithAbi(v: number): Uint8Array {
  const leb = (n: number): number[] => { const out: number[] = []; for (;;) { const b = n & 0x7f; n >>= 7; if ((n === 0 && !(b & 0x40)) || (n === -1 && (b & 0x40))) { out.push(b); return out; } out.push(b | 0x80); } };
  const name = [...Buffer.from('ABI_VERSION')];
  const global = [0x01, 0x7f, 0x00, 0x41, ...leb(v), 0x0b];
  const exp = [0x01, name.length, ...name, 0x03, 0x00];
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x06, global.length, ...global, 0x07, exp.length, ...exp]);
}
