/**
 * What a configuration swap changes (Engine.reconfigure): areas, readers
 * and controllers added, removed or changed (matched by id), and the maps
 * from old dense indices to new ones (-1 = gone) the cores need to carry
 * state across. locationsDropped is left 0: only the engine knows it.
 */
import type { ReloadReport } from '../engine/types.js';
import type { CompiledSite } from './types.js';

/** Stable text of a config value (bigint-safe) for equality. */
const same = (a: unknown, b: unknown) => stable(a) === stable(b);
function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
}

function compare<T extends { id: string }>(prev: T[], next: T[]) {
  const before = new Map(prev.map((x) => [x.id, x]));
  const after = new Map(next.map((x) => [x.id, x]));
  return {
    added: next.filter((x) => !before.has(x.id)).map((x) => x.id),
    removed: prev.filter((x) => !after.has(x.id)).map((x) => x.id),
    changed: next.filter((x) => before.has(x.id) && !same(before.get(x.id), x)).map((x) => x.id),
  };
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
      locationsDropped: 0,
    },
    areaMap: indexMap(prev.areaIds, next.areaIndex),
    readerMap: indexMap(prev.readerIds, next.readerIndex),
  };
}
