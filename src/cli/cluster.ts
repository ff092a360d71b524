/**
 * `apb cluster status --cluster nats://H:P[,...]`: one line per site of the cluster (every key of
 * the APB_LEASES bucket): its leader, lease epoch, whether the lease is current, and its stream's
 * last seq, message count and bytes. Exit 0; 1 when NATS cannot be reached.
 */
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { ApbError } from '../errors.js';
import { parseArgs, required } from './args.js';
import { specOf } from './usage.js';
import { LEASE_BUCKET } from '../cluster/names.js';
import { leaseExpired, readLease } from '../cluster/lease.js';

export async function run(argv: string[]): Promise<number> {
  const sub = argv[0]?.startsWith('--') ? undefined : argv[0];
  const a = parseArgs(sub === undefined ? argv : argv.slice(1), specOf('cluster')); // unknown options are named first
  if (sub !== 'status') throw new ApbError('usage', `apb cluster takes one subcommand: status (got "${sub ?? ''}")`);
  const { parseServers } = await import('../cluster/names.js');
  const servers = parseServers(required(a, 'cluster'));
  let nc;
  try { nc = await connect({ servers, name: 'apb-cluster-status', maxReconnectAttempts: 1 }); } catch (e) {
    throw new ApbError('storage_unavailable', `cannot reach NATS at ${servers.join(',')}: ${(e as Error).message}`);
  }
  try {
    const jsm = await jetstreamManager(nc);
    const kv = await new Kvm(nc).open(LEASE_BUCKET);
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    keys.sort();
    const now = Date.now();
    const out: string[] = [];
    for (const key of keys) {
      const { lease } = await readLease(kv, key);
      let stream = { last_seq: 0, messages: 0, bytes: 0 };
      try { stream = (await jsm.streams.info(`APB_${key}`)).state; } catch { /* no stream yet */ }
      out.push(JSON.stringify({
        site: key, leader: lease?.node ?? null, epoch: lease?.epoch ?? 0,
        leaseValid: lease ? !leaseExpired(lease, now, 0) : false, expiresInMs: lease ? lease.expiresAt - now : null,
        streamSeq: stream.last_seq, messages: stream.messages, bytes: stream.bytes,
      }));
    }
    process.stdout.write(out.length ? out.join('\n') + '\n' : 'no sites in this cluster yet\n');
    return 0;
  } finally { await nc.close(); }
}
