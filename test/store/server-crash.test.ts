/**
 * Crash safety of the real server (issue 4 item 5): `apb serve` on a data
 * directory, several controllers stream MessagePack batches over WebSocket
 * (client: `ws` + @msgpack/msgpack, not the server's msgpackr), the server is
 * SIGKILLed at a random instant, restarted on the same directory, and each
 * controller first resends ids it had acknowledged replies for (and some it
 * had sent without a reply). Over 4 seeded rounds:
 *  - a resent acknowledged id gets the same reply, and is not decided again;
 *  - every acknowledged message is in the event log exactly once, with its reply stored;
 *  - no (controller, id) is ever decided twice;
 *  - the recovered engine (snapshot + journal) equals a replay of the whole journal.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { encode, decode } from '@msgpack/msgpack';
import { openStore } from '../../src/store/index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { openDurableEngine } from '../../src/store/recovery.js';
import type { EventRecord } from '../../src/store/types.js';
import { ROOT, STADIUM, engineState, rng } from './util.js';

const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const CONFIG = join(ROOT, 'src', 'demo', 'stadium.yaml');
const CTRLS: Record<string, { token: string; readers: string[] }> = {
  'gate-north': { token: 'demo-gate-north-token', readers: ['gate-north-in', 'gate-north-out'] },
  'gate-south': { token: 'demo-gate-south-token', readers: ['gate-south-in', 'gate-south-out'] },
  turnstiles: { token: 'demo-turnstiles-token', readers: ['turnstile-1-in', 'turnstile-1-out', 'turnstile-2-in', 'turnstile-2-out'] },
};
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

async function startServer(data: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', CONFIG, '--data', data, '--port', String(port), '--host', '127.0.0.1'], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, APB_LOG_LEVEL: 'warn' },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${err}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok && ((await r.json()) as { ready: boolean }).ready) return { child, port };
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`server did not become ready: ${err}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Sent { msg: Record<string, unknown>; reply?: string }

/** Streams batches from one controller until the socket dies; records every reply. */
function stream(port: number, ctrl: string, state: Map<number, Sent>, resend: number[], nextId: () => number, r: () => number): Promise<{ resentReplies: Map<number, string> }> {
  const resentReplies = new Map<number, string>();
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/controller`, { headers: { authorization: `Bearer ${CTRLS[ctrl]!.token}` } });
    let inflight: number[] = [];
    let first = true;
    const send = (ids: number[]): void => {
      inflight = ids;
      ws.send(encode(ids.map((id) => state.get(id)!.msg)));
    };
    const fresh = (): void => {
      const ids: number[] = [];
      for (let k = 1 + Math.floor(r() * 16); k > 0; k--) {
        const id = nextId();
        const readers = CTRLS[ctrl]!.readers;
        const c = Math.floor(r() * 400);
        state.set(id, { msg: { t: r() < 0.8 ? 'badge' : 'passage', id, cred: c % 13 === 0 ? `s-${c}` : 1000 + c, reader: readers[Math.floor(r() * readers.length)]! } });
        ids.push(id);
      }
      send(ids);
    };
    ws.on('open', () => { if (resend.length) send(resend); else { first = false; fresh(); } });
    ws.on('message', (data: Buffer) => {
      const replies = decode(data) as Record<string, unknown>[];
      replies.forEach((rep, k) => {
        const id = inflight[k]!;
        if (rep.t === 'error') throw new Error(`${ctrl} id ${id}: ${String(rep.code)} ${String(rep.message)}`);
        const text = JSON.stringify(rep);
        if (first) resentReplies.set(id, text);
        else state.get(id)!.reply = text;
      });
      first = false;
      fresh();
    });
    ws.on('error', () => undefined);
    ws.on('close', () => resolve({ resentReplies }));
  });
}

describe('crash safety of apb serve: SIGKILL at random instants', () => {
  it('keeps every acknowledged decision over 4 rounds; resends are idempotent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apb-srv-crash-'));
    dirs.push(dir);
    const data = join(dir, 'data');
    const r = rng(4242);
    const sent = new Map<string, Map<number, Sent>>(Object.keys(CTRLS).map((c) => [c, new Map()]));
    let idCounter = 0;
    let resentChecked = 0;
    for (let round = 0; round < 4; round++) {
      const { child, port } = await startServer(data);
      const exited = new Promise((res) => child.once('exit', res));
      const runs = Object.keys(CTRLS).map((ctrl) => {
        const st = sent.get(ctrl)!;
        const acked = [...st.entries()].filter(([, s]) => s.reply !== undefined).map(([id]) => id);
        const unacked = [...st.entries()].filter(([, s]) => s.reply === undefined).map(([id]) => id).slice(-5);
        const resend = [...acked.filter(() => r() < 0.1).slice(0, 30), ...unacked];
        return { ctrl, resend, p: stream(port, ctrl, st, resend, () => ++idCounter, r) };
      });
      await new Promise((res) => setTimeout(res, 300 + Math.floor(r() * 700)));
      child.kill('SIGKILL');
      await exited;
      for (const run of runs) {
        const { resentReplies } = await run.p;
        const st = sent.get(run.ctrl)!;
        for (const [id, text] of resentReplies) {
          const s = st.get(id)!;
          if (s.reply !== undefined) { assert.equal(text, s.reply, `${run.ctrl} resent id ${id}: different reply`); resentChecked++; }
          else s.reply = text; // an un-acknowledged id: decided now (or found committed)
        }
      }
    }
    assert.ok(resentChecked > 5, `acknowledged ids were resent (${resentChecked})`);

    const store = await openStore(data, { retention: { intervalMs: 0 } });
    try {
      const seen = new Map<string, number>();
      const all: EventRecord[] = [];
      for (const e of store.since(0)) {
        all.push(e);
        if (e.controller !== undefined && e.id !== undefined && e.kind !== 'rejected') {
          const k = `${e.controller}/${e.id}`;
          seen.set(k, (seen.get(k) ?? 0) + 1);
        }
      }
      for (const [k, n] of seen) assert.equal(n, 1, `${k} decided ${n} times`);
      let acked = 0;
      for (const [ctrl, st] of sent) {
        for (const [id, s] of st) {
          if (s.reply === undefined) continue;
          acked++;
          assert.equal(seen.get(`${ctrl}/${id}`), 1, `acknowledged ${ctrl}/${id} missing from the log`);
          const stored = decode(store.getIdem(ctrl, id)!) as Record<string, unknown>;
          assert.equal(JSON.stringify(stored), s.reply, `stored reply of ${ctrl}/${id}`);
        }
      }
      assert.ok(acked > 100, `enough traffic was acknowledged (${acked})`);
      const recovered = await openDurableEngine({ store, configText: STADIUM, core: 'wasm' });
      const mem = new MemoryStore({ retention: { intervalMs: 0 } });
      await mem.append(all.map((e) => ({ ...e, seq: undefined })), []);
      const full = await openDurableEngine({ store: mem, configText: STADIUM, core: 'wasm' });
      assert.deepEqual(engineState(recovered.engine, 400, 13), engineState(full.engine, 400, 13));
      await mem.close();
    } finally { await store.close(); }
  });
});
