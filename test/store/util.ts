/**
 * Test helpers for the store suites: a seeded workload over the demo
 * stadium and a minimal "hub" (decode → idempotency → engine.apply → journal
 * record → store.append) that journals exactly as the server does.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { credToText } from '../../src/engine/cred.js';
import { decodeMessage, encodeResult, toReplayObject } from '../../src/engine/messages.js';
import type { Engine } from '../../src/engine/types.js';
import type { EventRecord, IdemRecord, Store } from '../../src/store/types.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const STADIUM = readFileSync(join(ROOT, 'src', 'demo', 'stadium.yaml'), 'utf8');
/** the stadium with a smaller lounge: a configuration change that matters */
export const STADIUM_SMALL_VIP = STADIUM.replace('maxOccupancy: 200', 'maxOccupancy: 3');

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

const READERS: Record<string, string[]> = {
  'gate-north': ['gate-north-in', 'gate-north-out'],
  'gate-south': ['gate-south-in', 'gate-south-out'],
  turnstiles: ['turnstile-1-in', 'turnstile-1-out', 'turnstile-2-in', 'turnstile-2-out'],
  vip: ['vip-in', 'vip-out'],
};
export const CONTROLLERS = Object.keys(READERS);

/** One random wire message of `controller` (badges mostly, passages after turnstile badges, some offline uploads). */
export function randomMessage(r: () => number, controller: string, id: number, nCreds: number, now: number): Record<string, unknown> {
  const readers = READERS[controller]!;
  const reader = readers[Math.floor(r() * readers.length)]!;
  const c = Math.floor(r() * nCreds);
  const cred = c % 17 === 0 ? `s-${c}` : 1000 + c;
  const x = r();
  if (x < 0.75) return { t: 'badge', id, cred, reader };
  if (x < 0.92) return { t: 'passage', id, cred, reader };
  return { t: 'offline', id, cred, reader, ts: now - Math.floor(r() * 60_000), granted: r() < 0.8 };
}

export const wirePackr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'auto' } as never);

export interface Decided { controller: string; id: number; reply: Uint8Array; fresh: boolean }

/**
 * Decides one frame of one controller the way the server does: resent ids get their stored reply and change
 * nothing; the rest are applied at `now`, journaled and their replies kept for idempotency. Resolves after commit.
 */
export async function decideFrame(engine: Engine, store: Store, controller: string, msgs: Record<string, unknown>[], now: number): Promise<Decided[]> {
  const out: Decided[] = [];
  const events: EventRecord[] = [];
  const idem: IdemRecord[] = [];
  for (const m of msgs) {
    const id = m.id as number;
    const stored = store.getIdem(controller, id);
    if (stored) { out.push({ controller, id, reply: stored, fresh: false }); continue; }
    const site = engine.site;
    const d = decodeMessage(m, site, { mode: 'wire' });
    const [res] = engine.apply([d.op!], now);
    const at = engine.clock;
    const reply = wirePackr.pack({ id, ...encodeResult(res!, site) });
    const op = d.op!;
    const rec: EventRecord = { at, kind: d.t as EventRecord['kind'], controller, id, op: toReplayObject(op, site, at) };
    if ('cred' in op) rec.cred = credToText(op.cred);
    if (typeof m.reader === 'string') rec.reader = m.reader;
    if (res!.op === 'badge') { rec.grant = res!.grant; rec.reason = res!.reason; }
    if (d.ts !== undefined) rec.ts = d.ts;
    events.push(rec);
    idem.push({ controller, id, reply });
    out.push({ controller, id, reply, fresh: true });
  }
  await store.append(events, idem);
  return out;
}

/** Everything observable about an engine, for exact comparisons. */
export function engineState(engine: Engine, nCreds: number, strEvery = 17): unknown {
  const { credFromText } = cachedCred;
  const creds: unknown[] = [];
  for (let c = 0; c < nCreds; c++) {
    const text = c % strEvery === 0 ? 's:' + encodeURIComponent(`s-${c}`) : String(1000 + c);
    creds.push([text, engine.state(credFromText(text))]);
  }
  const occ = engine.site.areaIds.map((id, i) => [id, engine.occupancy(i)]);
  return { clock: engine.clock, occ, creds };
}
import { credFromText } from '../../src/engine/cred.js';
const cachedCred = { credFromText };
