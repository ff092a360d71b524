/**
 * The leader lease of a site: one JSON value under the site's key in the APB_LEASES bucket, written
 * only with compare-and-swap (create when absent, update with the revision read), so of two nodes
 * racing for it exactly one wins. NATS 2.9 has no per-key expiry: the holder writes its own deadline
 * and renews it; anyone judges it expired from that deadline plus a margin for clock skew.
 *
 *   { node, epoch, since, renewedAt, expiresAt[, handoff, handoffUntil] }   (ms since the epoch, holder's clock)
 *
 * A holder handing the site to another node (balancing, host.ts) releases it with `handoff`: only
 * that node may take it until `handoffUntil`, then anyone may (the chosen node may have died).
 *
 * epoch grows by one at every takeover; it is carried in every journal message the holder publishes.
 */
import type { KV } from '@nats-io/kv';

export interface Lease { node: string; epoch: number; since: number; renewedAt: number; expiresAt: number; handoff?: string; handoffUntil?: number }

export interface HeldLease { lease: Lease; revision: number }

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeLease(l: Lease): Uint8Array { return enc.encode(JSON.stringify(l)); }

/** undefined for anything that is not a lease (a value written by hand, a deleted key) */
export function decodeLease(bytes: Uint8Array): Lease | undefined {
  try {
    const v = JSON.parse(dec.decode(bytes)) as Lease;
    if (typeof v?.node === 'string' && Number.isInteger(v.epoch) && typeof v.expiresAt === 'number') return v;
  } catch { /* not a lease */ }
  return undefined;
}

/** expired: its own deadline plus `marginMs` (clock skew between nodes) has passed on this clock */
export function leaseExpired(l: Lease | undefined, now: number, marginMs: number): boolean {
  return !l || now > l.expiresAt + marginMs;
}

/** The lease as it stands (undefined: none, or deleted), with its revision (0 when absent). */
export async function readLease(kv: KV, key: string): Promise<{ lease: Lease | undefined; revision: number }> {
  const e = await kv.get(key);
  if (!e || e.operation !== 'PUT') return { lease: undefined, revision: e?.revision ?? 0 };
  return { lease: decodeLease(e.value), revision: e.revision };
}

/**
 * Takes the lease for `node` if it is absent or expired (epoch + 1); undefined when someone holds
 * it (or won the race for it).
 */
export async function tryTakeLease(kv: KV, key: string, node: string, ttlMs: number, marginMs: number, now = Date.now()): Promise<HeldLease | undefined> {
  const cur = await readLease(kv, key);
  if (cur.lease && !leaseExpired(cur.lease, now, marginMs) && cur.lease.node !== node) return undefined;
  // handed to another node, which has until handoffUntil to take it
  if (cur.lease?.handoff !== undefined && cur.lease.handoff !== node && now <= (cur.lease.handoffUntil ?? 0)) return undefined;
  // our own unexpired lease from before a restart is taken over like any other: a new epoch
  const lease: Lease = { node, epoch: (cur.lease?.epoch ?? 0) + 1, since: now, renewedAt: now, expiresAt: now + ttlMs };
  try {
    const revision = cur.revision === 0 ? await kv.create(key, encodeLease(lease)) : await kv.update(key, encodeLease(lease), cur.revision);
    return { lease, revision };
  } catch (e) {
    if (isWrongRevision(e)) return undefined;
    throw e;
  }
}

/** Renews a held lease (CAS on its revision); undefined when it was taken (the holder is deposed). */
export async function renewLease(kv: KV, key: string, held: HeldLease, ttlMs: number, now = Date.now()): Promise<HeldLease | undefined> {
  const lease: Lease = { ...held.lease, renewedAt: now, expiresAt: now + ttlMs };
  try {
    return { lease, revision: await kv.update(key, encodeLease(lease), held.revision) };
  } catch (e) {
    if (isWrongRevision(e)) return undefined;
    throw e;
  }
}

/**
 * Gives a held lease up at once (expiresAt 0): the next node to look takes it without waiting; with
 * `handoff`, only that node, for `handoffMs` (then anyone).
 */
export async function releaseLease(kv: KV, key: string, held: HeldLease, handoff?: string, handoffMs = 0, now = Date.now()): Promise<void> {
  const lease: Lease = { ...held.lease, expiresAt: 0 };
  if (handoff !== undefined) { lease.handoff = handoff; lease.handoffUntil = now + handoffMs; }
  try { await kv.update(key, encodeLease(lease), held.revision); } catch { /* taken already */ }
}

/** JetStream's refusal of a compare-and-swap or an expected-last-sequence publish (error 10071) */
export function isWrongRevision(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; api_error?: { err_code?: number } };
  return err?.api_error?.err_code === 10071 || err?.code === 10071 || (typeof err?.message === 'string' && err.message.includes('wrong last sequence'));
}
