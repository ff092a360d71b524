/**
 * Compiles a validated SiteConfig into the dense tables both engine cores
 * read (CompiledSite in types.ts). Area 0 is "outside"; declared areas are
 * 1..n in file order, readers 0..m-1 and controllers 0..k-1 in file order.
 * Assumes crossCheck() passed (every reference resolves, the tree is sound).
 */
import { MODE_HARD, MODE_OFF, MODE_SOFT, type CompiledSite, type Mode, type SiteConfig } from './types.js';
import { movePath } from './tree.js';

const MODE: Record<Mode, number> = { off: MODE_OFF, soft: MODE_SOFT, hard: MODE_HARD };

export function compileSite(config: SiteConfig): CompiledSite {
  const areaIds = ['outside', ...config.areas.map((a) => a.id)];
  const areaIndex = new Map(areaIds.map((id, i) => [id, i]));
  const n = areaIds.length;
  const parent = new Int32Array(n), depth = new Uint8Array(n), entry = new Uint8Array(n), exit = new Uint8Array(n);
  const strict = new Uint8Array(n), commitOnPassage = new Uint8Array(n), hasSchedule = new Uint8Array(n), supervision = new Uint8Array(n);
  const presenceTimeoutMs = new Float64Array(n), maxOccupancy = new Float64Array(n).fill(-1), passageTimeoutMs = new Float64Array(n);
  parent[0] = -1;
  config.areas.forEach((a, k) => {
    const i = k + 1;
    parent[i] = areaIndex.get(a.parent)!;
    entry[i] = MODE[a.entry]; exit[i] = MODE[a.exit];
    strict[i] = a.strict ? 1 : 0;
    presenceTimeoutMs[i] = a.presenceTimeout * 1000;
    maxOccupancy[i] = a.maxOccupancy ?? -1;
    commitOnPassage[i] = a.commitOn === 'passage' ? 1 : 0;
    passageTimeoutMs[i] = a.passageTimeout * 1000;
    hasSchedule[i] = a.schedule === 'always' ? 0 : 1;
    supervision[i] = MODE[a.supervision ?? 'off'];
  });
  // Depths: parents may be declared after their children, so resolve by walking up.
  const resolved = new Uint8Array(n); resolved[0] = 1;
  const depthOf = (i: number): number => {
    if (resolved[i]) return depth[i]!;
    depth[i] = depthOf(parent[i]!) + 1; resolved[i] = 1;
    return depth[i]!;
  };
  for (let i = 1; i < n; i++) depthOf(i);

  const controllerIds = config.controllers.map((c) => c.id);
  const controllerIndex = new Map(controllerIds.map((id, i) => [id, i]));
  const readerIds = config.readers.map((r) => r.id);
  const readerIndex = new Map(readerIds.map((id, i) => [id, i]));
  const m = readerIds.length;
  const readerFrom = new Uint16Array(m), readerTo = new Uint16Array(m), readerController = new Uint16Array(m);
  const reuseLockoutMs = new Float64Array(m), reuseHard = new Uint8Array(m), readerPassageMs = new Float64Array(m);
  const tree = { parent, depth };
  config.readers.forEach((r, i) => {
    readerFrom[i] = areaIndex.get(r.from)!; readerTo[i] = areaIndex.get(r.to)!;
    readerController[i] = controllerIndex.get(r.controller)!;
    reuseLockoutMs[i] = r.reuseLockout * 1000;
    reuseHard[i] = r.reuseMode === 'hard' ? 1 : 0;
    const { exited, entered } = movePath(tree, readerFrom[i]!, readerTo[i]!);
    let ms = 0;
    for (const a of [...exited, ...entered]) if (commitOnPassage[a] && passageTimeoutMs[a]! > ms) ms = passageTimeoutMs[a]!;
    readerPassageMs[i] = ms;
  });

  return {
    config, areaIds, areaIndex, parent, depth, entry, exit, strict, presenceTimeoutMs, maxOccupancy, commitOnPassage,
    passageTimeoutMs, hasSchedule, supervision, readerIds, readerIndex, readerFrom, readerTo, readerController, reuseLockoutMs,
    reuseHard, readerPassageMs, controllerIds, controllerIndex, forgetAfterMs: config.forgetAfter * 1000,
  };
}
