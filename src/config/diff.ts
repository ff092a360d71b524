/**
 * What a configuration swap changes (Engine.reconfigure): areas, readers
 * and controllers added, removed or changed (matched by id), and the maps
 * from old dense indices to new ones (-1 = gone) the cores need to carry
 * state across. locationsDropped is left 0: only the engine knows it.
 */
import type { ReloadReport } from '../engine/types.js';
import type { CompiledSite } from './types.js';


/** Deep equality of parsed-config values (plain maps, lists, scalars, bigint); no allocation, since a reload runs it 20,000 times on the main thread. */
const same = (a: unknown, b: unknown): boolean => equal(a, b);
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equal(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) { if (!Object.hasOwn(y, k) || !equal(x[k], y[k])) return false; n++; }
  for (const _ in y) n--;
  return n === 0;
}

function compare<T extends { id: string }>(prev: T[], next: T[]) {
  const before = new Map(prev.map((x) => [x.id, x]));
  const after = new Map(next.map((x) => [x.id, x]));
  const changed: string[] = [];
  for (const x of next) {
    const p = before.get(x.id);
    if (p !== undefined && !equal(p, x)) changed.push(x.id);
  }
  return {
    added: next.filter((x) => !before.has(x.id)).map((x) => x.id),
    removed: prev.filter((x) => !after.has(x.id)).map((x) => x.id),
    changed,
  };
}

/** Keys compared one by one above; every other top-level key is a "setting". */
const LISTED = new Set(['areas', 'readers', 'controllers', 'users']);
function settingsChanged(prev: object, next: object): string[] {
  const p = prev as Record<string, unknown>, n = next as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(p), ...Object.keys(n)])].filter((k) => !LISTED.has(k));
  return keys.filter((k) => !same(p[k], n[k])).sort();
}

function indexMap(prevIds: string[], next: Map<string, number>): Int32Array {
  const m = new Int32Array(prevIds.length);
  prevIds.forEach((id, i) => { m[i] = next.get(id) ?? -1; });
  return m;
}

export function diffSites(prev: CompiledSite, next: CompiledSite): { report: ReloadReport; areaMap: Int32Array; readerMap: Int32Array } {
  const a = compare(prev.config.areas, next.config.areas);
  const r = compare(prev.config.readers, next.config.readers);
  const c = compare(prev.config.controllers, next.config.controllers);
  return {
    report: {
      areasAdded: a.added, areasRemoved: a.removed, areasChanged: a.changed,
      readersAdded: r.added, readersRemoved: r.removed, readersChanged: r.changed,
      controllersAdded: c.added, controllersRemoved: c.removed, controllersChanged: c.changed,
      usersChanged: !same(prev.config.users, next.config.users),
      settingsChanged: settingsChanged(prev.config, next.config),
      locationsDropped: 0,
    },
    areaMap: indexMap(prev.areaIds, next.areaIndex),
    readerMap: indexMap(prev.readerIds, next.readerIndex),
  };
}
