/** The scenario registry used by `apb simulate` and bench/scenarios.ts. */
import { metroScenario } from './metro.js';
import { officeScenario } from './office.js';
import type { Scenario, ScenarioOptions } from './scenario.js';
import { stadiumScenario } from './stadium.js';

export type ScenarioName = 'stadium' | 'metro' | 'office';
export const SCENARIOS: Record<ScenarioName, (o?: ScenarioOptions) => Scenario> = {
  stadium: stadiumScenario,
  metro: metroScenario,
  office: officeScenario,
};
export function isScenarioName(s: string): s is ScenarioName { return s in SCENARIOS; }
