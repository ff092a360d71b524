/**
 * The area tree's one definition of what a move enters and exits (SPEC 1
 * "Move"): a move from A to B exits A and its ancestors up to, not
 * including, the lowest common ancestor, and enters the areas from below
 * the LCA down to B. Both engine cores and compileSite use it.
 */
import type { CompiledSite } from './types.js';

export interface MovePath {
  /** innermost first (SPEC 12 violation order) */
  exited: number[];
  /** outermost first */
  entered: number[];
}

export function movePath(site: Pick<CompiledSite, 'parent' | 'depth'>, fromArea: number, toArea: number): MovePath {
  const { parent, depth } = site;
  const exited: number[] = [];
  const entered: number[] = [];
  let a = fromArea, b = toArea;
  while (depth[a]! > depth[b]!) { exited.push(a); a = parent[a]!; }
  while (depth[b]! > depth[a]!) { entered.push(b); b = parent[b]!; }
  while (a !== b) { exited.push(a); a = parent[a]!; entered.push(b); b = parent[b]!; }
  entered.reverse();
  return { exited, entered };
}

/** true when `area` is `ancestor` or nested inside it. */
export function isInside(site: Pick<CompiledSite, 'parent' | 'depth'>, area: number, ancestor: number): boolean {
  const { parent, depth } = site;
  while (depth[area]! > depth[ancestor]!) area = parent[area]!;
  return area === ancestor;
}
