/**
 * The simulated sites, generated in code (so their size can scale) and
 * printable as YAML (`apb simulate --scenario metro --print-site`) to start a
 * server on: `apb serve --config metro.yaml`. Controller tokens are
 * `sim-<controller id>-simulated-token` (site tokens need 16+ characters);
 * rate limits are raised so a load run measures the engine, not the limiter.
 */
import { stringify } from 'yaml';
import type { LooseSite } from './truth.js';

export const RATE = 100_000_000;
export const simToken = (controller: string) => `sim-${controller}-simulated-token`;

function controllers(ids: string[]): LooseSite['controllers'] {
  return ids.map((id) => ({ id, token: simToken(id), protocol: 'native', rateLimit: RATE }));
}

const USERS = [{ name: 'sim-admin', token: 'sim-admin-simulated-token', role: 'admin' }];

export const STADIUM_GATES = ['A', 'B', 'C', 'D', 'E', 'F'];
export const STADIUM_IN_LANES = 8, STADIUM_OUT_LANES = 2;

/** Stadium: turnstiles confirm passage; the stadium is entry-hard; a VIP lounge inside it is entry-hard too. */
export function stadiumSite(): LooseSite {
  const readers: LooseSite['readers'] = [];
  for (const g of STADIUM_GATES) {
    for (let i = 1; i <= STADIUM_IN_LANES; i++) readers.push({ id: `${g}-in-${i}`, from: 'outside', to: 'stadium', controller: `gate-${g}` });
    for (let i = 1; i <= STADIUM_OUT_LANES; i++) readers.push({ id: `${g}-out-${i}`, from: 'stadium', to: 'outside', controller: `gate-${g}` });
  }
  readers.push({ id: 'vip-in', from: 'stadium', to: 'vip', controller: 'vip' }, { id: 'vip-out', from: 'vip', to: 'stadium', controller: 'vip' });
  return {
    site: 'sim-stadium', timezone: 'UTC',
    areas: [
      { id: 'stadium', entry: 'hard', exit: 'off', commitOn: 'passage', passageTimeout: 10 },
      { id: 'vip', parent: 'stadium', entry: 'hard' },
    ],
    readers,
    controllers: controllers([...STADIUM_GATES.map((g) => `gate-${g}`), 'vip']),
    users: USERS,
  };
}

export const METRO_GATES = 3;
export const stationId = (s: number) => `s${String(s).padStart(3, '0')}`;

/** Metro: one paid zone, tap in and out, a 20 s pass-back lockout per gate, soft exit check (fare penalty). */
export function metroSite(stations: number): LooseSite {
  const readers: LooseSite['readers'] = [];
  const ctl: string[] = [];
  for (let s = 0; s < stations; s++) {
    const st = stationId(s);
    ctl.push(`station-${st}`);
    for (let g = 1; g <= METRO_GATES; g++) {
      readers.push({ id: `${st}-in-${g}`, from: 'outside', to: 'paid', controller: `station-${st}`, reuseLockout: 20, reuseMode: 'hard' });
      readers.push({ id: `${st}-out-${g}`, from: 'paid', to: 'outside', controller: `station-${st}`, reuseLockout: 20, reuseMode: 'hard' });
    }
  }
  return {
    site: 'sim-metro', timezone: 'UTC',
    areas: [{ id: 'paid', entry: 'hard', exit: 'soft', presenceTimeout: 3 * 3600 }],
    readers, controllers: controllers(ctl), users: USERS,
  };
}

/** Office: badge-out readers, a 10 h presence timeout, a midnight reset, a strict lab inside. */
export function officeSite(): LooseSite {
  const readers: LooseSite['readers'] = [];
  for (let i = 1; i <= 4; i++) readers.push({ id: `lobby-in-${i}`, from: 'outside', to: 'office', controller: 'lobby' });
  for (let i = 1; i <= 4; i++) readers.push({ id: `lobby-out-${i}`, from: 'office', to: 'outside', controller: 'lobby' });
  readers.push({ id: 'garage-in', from: 'outside', to: 'office', controller: 'garage' }, { id: 'garage-out', from: 'office', to: 'outside', controller: 'garage' });
  readers.push({ id: 'lab-in', from: 'office', to: 'lab', controller: 'lab', reuseLockout: 30, reuseMode: 'soft' }, { id: 'lab-out', from: 'lab', to: 'office', controller: 'lab' });
  return {
    site: 'sim-office', timezone: 'UTC',
    areas: [
      { id: 'office', entry: 'hard', exit: 'soft', presenceTimeout: 10 * 3600, resetAt: ['00:00'] },
      { id: 'lab', parent: 'office', entry: 'hard', strict: true },
    ],
    readers, controllers: controllers(['lobby', 'garage', 'lab']), users: USERS,
  };
}

export function siteYaml(site: LooseSite): string {
  return stringify(site);
}

/**
 * The site of the HTTP and WebSocket benchmarks: one entry-hard hall with a
 * soft exit check; controller `ctl-i` owns readers `ctl-i-in` and `ctl-i-out`.
 * Random credentials over both readers give a mix of grants and denies.
 */
export function benchSite(controllerCount: number): LooseSite {
  const ids = Array.from({ length: controllerCount }, (_, i) => `ctl-${i}`);
  return {
    site: 'bench', timezone: 'UTC',
    areas: [{ id: 'hall', entry: 'hard', exit: 'soft' }],
    readers: ids.flatMap((c) => [
      { id: `${c}-in`, from: 'outside', to: 'hall', controller: c },
      { id: `${c}-out`, from: 'hall', to: 'outside', controller: c },
    ]),
    controllers: controllers(ids), users: USERS,
  };
}
