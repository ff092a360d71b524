/**
 * `apb events`: the exported log is replay input that reproduces the logged
 * decisions when replayed (`apb replay`) against the same configuration.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { openDurableEngine } from '../../src/store/recovery.js';
import { toReplayObject } from '../../src/engine/messages.js';
import { credFromText } from '../../src/engine/cred.js';
import type { EventRecord } from '../../src/store/types.js';
import { CONTROLLERS, ROOT, STADIUM, STADIUM_SMALL_VIP, decideFrame, randomMessage, rng } from './util.js';

const MAIN = join(ROOT, 'build', 'src', 'cli', 'main.js');
const apb = (args: string[], input?: string) => spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28 });

describe('apb events', () => {
  let dir: string;
  let logged: EventRecord[];
  // after the wall clock: the startup config record is journaled at Date.now(), and the engine clock (`at`)
  // never decreases along the journal (the export and the time index rely on it)
  const T0 = 2_000_000_000_000;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'apb-events-'));
    const store = await openStore(dir, { retention: { intervalMs: 0 } });
    const { engine } = await openDurableEngine({ store, configText: STADIUM, core: 'reference' });
    const r = rng(99);
    let now = T0, id = 0;
    for (let f = 0; f < 400; f++) {
      const ctrl = CONTROLLERS[Math.floor(r() * CONTROLLERS.length)]!;
      now += Math.floor(r() * 4000);
      const msgs = Array.from({ length: 1 + Math.floor(r() * 5) }, () => randomMessage(r, ctrl, ++id, 80, now));
      await decideFrame(engine, store, ctrl, msgs, now);
      if (f % 97 === 50) {
        // an operator action, journaled as the server does
        const op = { op: 'forgive' as const, cred: credFromText(String(1000 + f % 80)) };
        engine.apply([op], now);
        await store.append([{ at: engine.clock, kind: 'action', controller: 'http:desk', who: 'desk', why: 'test', action: 'forgive', op: toReplayObject(op, engine.site, engine.clock) }], []);
      }
    }
    await store.append([{ at: now, kind: 'rejected', controller: 'vip', error: { code: 'bad_message', message: 'cred: missing' } }], []);
    logged = [...store.since(0)];
    await store.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exports every replayable record, oldest first, and replay reproduces the logged decisions', () => {
    const exp = apb(['events', '--data', dir]);
    assert.equal(exp.status, 0, exp.stderr);
    const lines = exp.stdout.trim().split('\n');
    const replayable = logged.filter((e) => e.op !== undefined && e.kind !== 'config');
    assert.equal(lines.length, replayable.length);
    assert.ok(logged.some((e) => e.kind === 'rejected') && logged.some((e) => e.kind === 'config'));
    const rep = apb(['replay', '--config', join(ROOT, 'src', 'demo', 'stadium.yaml'), '--events', '-'], exp.stdout);
    assert.equal(rep.status, 0, rep.stderr);
    const out = rep.stdout.trim().split('\n').map((l) => JSON.parse(l) as { t: string; grant?: boolean; reason?: string });
    assert.equal(out.length, replayable.length);
    let badges = 0, denies = 0;
    replayable.forEach((e, i) => {
      if (e.kind !== 'badge') { assert.equal(out[i]!.t, 'ack', `line ${i + 1}`); return; }
      badges++;
      if (!e.grant) denies++;
      assert.equal(out[i]!.t, 'decision', `line ${i + 1}`);
      assert.equal(out[i]!.grant, e.grant, `line ${i + 1}: grant`);
      assert.equal(out[i]!.reason, e.reason, `line ${i + 1}: reason`);
    });
    assert.ok(badges > 500 && denies > 20, `a workload with denials (${badges} badges, ${denies} denied)`);
    // the same traffic against another configuration runs too (what installers do)
    const cfg = join(dir, 'small-vip.yaml');
    writeFileSync(cfg, STADIUM_SMALL_VIP);
    const other = apb(['replay', '--config', cfg, '--events', '-'], exp.stdout);
    assert.equal(other.status, 0, other.stderr);
    assert.equal(other.stdout.trim().split('\n').length, replayable.length);
  });

  it('--since/--until select a time window (ms or ISO)', () => {
    const from = T0 + 200_000, to = T0 + 500_000;
    const want = logged.filter((e) => e.op !== undefined && e.kind !== 'config' && e.at >= from && e.at <= to);
    for (const since of [String(from), new Date(from).toISOString()]) {
      const exp = apb(['events', '--data', dir, '--since', since, '--until', String(to)]);
      assert.equal(exp.status, 0, exp.stderr);
      const lines = exp.stdout.trim().split('\n');
      assert.equal(lines.length, want.length);
      assert.equal(lines[0], JSON.stringify(JSON.parse(lines[0]!)));
    }
  });

  it('bad input is a precise error', () => {
    const bad = apb(['events', '--data', dir, '--since', 'yesterday-ish']);
    assert.equal(bad.status, 2); // a usage error: `apb <command>: <message>`, no wire code (issue 10 item 22)
    assert.match(bad.stderr, /^apb events: --since must be/);
    const missing = apb(['events', '--data', join(dir, 'nope')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /not_found/);
    const noData = apb(['events']);
    assert.match(noData.stderr, /--data is required/);
  });
});
