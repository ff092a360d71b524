/**
 * The site configuration (SPEC 10) as the rest of the engine sees it: the
 * validated file with every default filled in (SiteConfig), and the dense
 * tables compiled from it (CompiledSite) that both engine cores read.
 * src/config/load.ts produces both; nothing else parses the file.
 */

export type Mode = 'off' | 'soft' | 'hard';
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface ScheduleWindow { days: Weekday[]; from: string; to: string } // "HH:MM", from != to

export interface AreaConfig {
  id: string;
  parent: string;             // default "outside"
  entry: Mode;                // default off
  exit: Mode;                 // default off
  strict: boolean;            // default false
  presenceTimeout: number;    // seconds, 0 = never
  schedule: 'always' | ScheduleWindow[];
  resetAt: string[];          // "HH:MM" local times
  maxOccupancy: number | null;
  commitOn: 'grant' | 'passage';
  passageTimeout: number;     // seconds, default 10
  supervision: Mode;          // default off (SPEC 13.2)
}

export interface WiegandFormatConfig {
  name: string;
  bits: number;
  facility?: { start: number; length: number };  // bit positions, 0 = first bit transmitted
  card: { start: number; length: number };
  parity: { bit: number; covers: [number, number]; kind: 'even' | 'odd' }[]; // covers = inclusive bit range
}

export interface ReaderConfig {
  id: string;
  from: string;
  to: string;
  controller: string;
  reuseLockout: number;       // seconds, 0 = off
  reuseMode: 'soft' | 'hard';
  osdp?: { address: number; reader: number };
  uhppote?: { door: number; direction: 'in' | 'out' };
}

export interface ControllerConfig {
  id: string;
  token: string;
  protocol: 'native' | 'wiegand' | 'osdp' | 'uhppote';
  serial?: number;            // uhppote controllers
  address?: string;           // uhppote controllers: the only source IP accepted
  rateLimit?: number;         // messages per second, default 10000
}

export interface SiteConfig {
  site: string;
  timezone: string;
  forgetAfter: number;        // seconds, 0 = never
  /** credentials the WASM core's table is sized for at creation (0 = grows from empty); a hint, not a limit */
  expectedCredentials?: number;
  maxClockSkew: number;       // seconds a message ts may be ahead of the server clock (default 300)
  areas: AreaConfig[];        // without the implicit "outside"
  readers: ReaderConfig[];
  controllers: ControllerConfig[];
  credentials: { cred: number | bigint | string; exempt: boolean; supervisor: boolean }[]; // bigint beyond 2^53
  users: { name: string; token: string; role: 'viewer' | 'operator' | 'admin' }[];
  wiegandFormats: WiegandFormatConfig[];
  uhppote?: { host: string; port: number };
  /** cluster mode (src/cluster, docs/cluster.md), read at start; flags take precedence */
  cluster?: { servers: string[]; node?: string; streamReplicas: number; leaseMs: number; snapshotEvery: number };
  webhooks: { url: string; kinds?: string[] }[];
}

/** Mode as stored in the dense tables. */
export const MODE_OFF = 0, MODE_SOFT = 1, MODE_HARD = 2;

/**
 * Dense tables. Area 0 is "outside" (the root, never has a policy).
 * Readers and areas are numbered in file order (areas from 1).
 */
export interface CompiledSite {
  config: SiteConfig;
  areaIds: string[];                 // [0] = "outside"
  areaIndex: Map<string, number>;
  parent: Int32Array;                // parent[0] = -1
  depth: Uint8Array;                 // depth[0] = 0
  entry: Uint8Array;                 // MODE_*
  exit: Uint8Array;
  strict: Uint8Array;                // 0/1
  presenceTimeoutMs: Float64Array;   // 0 = never
  maxOccupancy: Float64Array;        // -1 = none
  commitOnPassage: Uint8Array;       // 0/1
  passageTimeoutMs: Float64Array;
  hasSchedule: Uint8Array;           // 1 = schedule is not "always"
  supervision: Uint8Array;           // MODE_* (SPEC 13.2)
  readerIds: string[];
  readerIndex: Map<string, number>;
  readerFrom: Uint16Array;
  readerTo: Uint16Array;
  readerController: Uint16Array;     // index into controllerIds
  reuseLockoutMs: Float64Array;      // 0 = off
  reuseHard: Uint8Array;             // 1 = hard, 0 = soft
  /** largest passageTimeout among the areas the reader's move enters or exits that have commitOn passage; 0 = commits on grant */
  readerPassageMs: Float64Array;
  controllerIds: string[];
  controllerIndex: Map<string, number>;
  forgetAfterMs: number;             // 0 = never
}
