/**
 * Crash safety (SPEC 9): a child process streams frames from every controller
 * through the real store (LMDB, group commit, snapshots every few hundred
 * events) and prints each acknowledgement after its commit; it is SIGKILLed
 * at a random instant, restarted on the same directory, and resends ids it
 * had acknowledged (and some it may not have). Over several seeded rounds:
 *  - every acknowledged (controller, id) is in the log exactly once and its stored reply is the acknowledged one;
 *  - resent acknowledged ids get the same reply and no second record (no second move);
 *  - no (controller, id) is ever decided twice;
 *  - the engine recovered from snapshot + journal equals a replay of the whole journal.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { openDurableEngine } from '../../src/store/recovery.js';
import type { EventRecord } from '../../src/store/types.js';
import { ROOT, STADIUM, engineState, rng } from './util.js';

const CHILD = join(ROOT, 'build', 'test', 'store', 'crash-child.js');
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

interface Round { acks: { controller: string; id: number; hex: string; fresh: boolean }[]; ready: boolean }

function runRound(dir: string, seed: number, resend: unknown[], firstId: number, killAfterMs: number): Promise<Round> {
  const file = join(dir, `resend-${seed}.json`);
  writeFileSync(file, JSON.stringify(resend));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, join(dir, 'data'), String(seed), file, String(firstId)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '', err = '';
    const round: Round = { acks: [], ready: false };
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000); // never hang the suite
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      if (!round.ready && buf.includes('READY\n')) {
        round.ready = true;
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') { reject(new Error(`child exited ${code} ${signal}: ${err}`)); return; }
      // only complete lines: a line cut by the kill was never acknowledged
      for (const line of buf.slice(0, buf.lastIndexOf('\n') + 1).split('\n')) {
        const m = /^A (\S+) (\d+) ([0-9a-f]+) (fresh|dup)$/.exec(line);
        if (m) round.acks.push({ controller: m[1]!, id: Number(m[2]), hex: m[3]!, fresh: m[4] === 'fresh' });
      }
      resolve(round);
    });
  });
}

describe('crash safety: SIGKILL at random instants (in-process store, child process)', () => {
  it('loses nothing acknowledged over 5 rounds; resends are idempotent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apb-crash-'));
    dirs.push(dir);
    const r = rng(20260101);
    const acked = new Map<string, string>(); // controller/id → reply hex
    let resentAcked = 0;
    for (let round = 0; round < 5; round++) {
      const keys = [...acked.keys()];
      const resend: { controller: string; msg: Record<string, unknown> }[] = [];
      for (let k = 0; k < Math.min(25, keys.length); k++) {
        const [controller, id] = keys[Math.floor(r() * keys.length)]!.split('/');
        // a resend carries the same id; the content does not matter, the stored reply wins
        resend.push({ controller: controller!, msg: { t: 'badge', id: Number(id), cred: 1, reader: 'gate-north-in' } });
      }
      for (let k = 0; k < 10; k++) {
        // ids of the previous round that may or may not have been committed before the kill
        const id = round * 1_000_000 - 1 - Math.floor(r() * 50);
        if (round > 0 && !acked.has(`gate-north/${id}`)) resend.push({ controller: 'gate-north', msg: { t: 'badge', id, cred: 1, reader: 'gate-north-in' } });
      }
      const res = await runRound(dir, 1000 + round, resend, (round + 1) * 1_000_000 - 900_000, 80 + Math.floor(r() * 400));
      assert.ok(res.ready, 'the child recovered and started');
      const resendKeys = new Set(resend.map((x) => `${x.controller}/${x.msg.id}`));
      for (const a of res.acks) {
        const key = `${a.controller}/${a.id}`;
        const prev = acked.get(key);
        if (prev !== undefined) {
          assert.equal(a.fresh, false, `acknowledged ${key} decided a second time`);
          assert.equal(a.hex, prev, `resent ${key} got a different reply`);
          resentAcked++;
        } else {
          assert.ok(a.fresh || resendKeys.has(key), `${key}: a dup reply for an id never sent before`);
          acked.set(key, a.hex);
        }
      }
    }
    assert.ok(acked.size > 200, `enough traffic was acknowledged (${acked.size})`);
    assert.ok(resentAcked > 20, 'acknowledged ids were resent');

    const store = await openStore(join(dir, 'data'), { retention: { intervalMs: 0 } });
    try {
      const seen = new Map<string, number>();
      const all: EventRecord[] = [];
      for (const e of store.since(0)) {
        all.push(e);
        if (e.controller !== undefined && e.id !== undefined) {
          const k = `${e.controller}/${e.id}`;
          seen.set(k, (seen.get(k) ?? 0) + 1);
        }
      }
      for (const [k, n] of seen) assert.equal(n, 1, `${k} is in the log ${n} times`);
      for (const [k, hex] of acked) {
        assert.equal(seen.get(k), 1, `acknowledged ${k} is missing from the log`);
        const [c, id] = k.split('/');
        assert.equal(Buffer.from(store.getIdem(c!, Number(id))!).toString('hex'), hex, `stored reply of ${k}`);
      }
      assert.ok(store.latestSnapshot(), 'snapshots were written during the run');
      const recovered = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
      assert.ok(recovered.fromSnapshot > 0);
      // the same journal replayed from its first record, without any snapshot
      const mem = new MemoryStore({ retention: { intervalMs: 0 } });
      await mem.append(all.map((e) => ({ ...e, seq: undefined })), []);
      const full = await openDurableEngine({ store: mem, configText: STADIUM, core: 'wasm' });
      assert.equal(full.fromSnapshot, 0);
      assert.deepEqual(engineState(recovered.engine, 300), engineState(full.engine, 300));
      await mem.close();
    } finally { await store.close(); }
  });
});
