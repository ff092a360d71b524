/**
 * The areas as GET /v1/areas and the stream's occupancy events show them:
 * one row per area with its occupancy, limit, lockdown (SPEC 13.1) and
 * supervisors present (SPEC 13.2). The caller ticks the engine first.
 */
import type { CompiledSite } from '../config/types.js';
import type { Engine } from '../engine/types.js';

const MODE_NAMES = ['off', 'soft', 'hard'] as const;

export interface AreaRow {
  id: string;
  parent: string | null;
  occupancy: number;
  max: number | null;
  lockdown: boolean;
  supervisors: number;
  supervision: 'off' | 'soft' | 'hard';
}

export function areaRows(engine: Engine, site: CompiledSite): AreaRow[] {
  return site.areaIds.map((id, i) => ({
    id,
    parent: i === 0 ? null : site.areaIds[site.parent[i]!]!,
    occupancy: engine.occupancy(i),
    max: site.maxOccupancy[i]! >= 0 ? site.maxOccupancy[i]! : null,
    lockdown: engine.locked(i),
    supervisors: engine.supervisors(i),
    supervision: MODE_NAMES[site.supervision[i]!] ?? 'off',
  }));
}
