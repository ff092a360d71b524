/**
 * The console in cluster mode, in Debian's chromium (playwright-core): the leader serves it, and
 * its top bar names the node that leads the site, the lease epoch, and (title) every node with the
 * sites it leads. After the leader is killed and another node takes over, the console on the new
 * leader names it, with the next epoch. A follower's port refuses the console, naming the leader.
 * Skipped with the reason without nats-server or chromium.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { STADIUM } from '../store/util.js';
import { ApbNode, SKIP_NO_NATS, freePort, leaderOf, startNats, stopAll, until, type NatsServer } from './harness.js';
import { CHROMIUM, LAUNCH_ARGS, POLL, skip as SKIP_NO_CHROMIUM, signIn, tid } from '../dashboard/helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'apb-cluster-ui-'));
let nats: NatsServer[] = [];
const nodes: ApbNode[] = [];
let browser: Browser | undefined;
const skip = SKIP_NO_NATS || SKIP_NO_CHROMIUM;

before(async () => {
  if (skip) return;
  nats = await startNats(tmp, 1);
  const config = join(tmp, 'site.yaml');
  writeFileSync(config, STADIUM);
  for (const name of ['ui-a', 'ui-b']) nodes.push(new ApbNode(name, await freePort(), join(tmp, `data-${name}`), config, nats[0]!.url, ['--lease-ms', '1000']));
  for (const n of nodes) await n.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
});
after(async () => { await browser?.close(); await stopAll(); rmSync(tmp, { recursive: true, force: true }); });

describe('the console shows which node leads', { skip }, () => {
  it('names the leader and the epoch, and the new leader after a takeover', async () => {
    const leader = await until('a leader', 20_000, () => leaderOf(nodes));
    const follower = nodes.find((n) => n !== leader)!;
    const epoch = (await leader.health())!.epoch;
    const ctx = await browser!.newContext();
    try {
      const page = await ctx.newPage();
      await signIn(page, leader.base, 'demo-viewer-token');
      await page.waitForSelector(`${tid('cluster-leader')}:not([hidden])`);
      assert.equal(await page.textContent(tid('cluster-leader')), `leader: ${leader.name} (this node) · epoch ${epoch}`);
      // the title lists every node and what it leads (presence records, refreshed every half lease)
      await page.waitForFunction(([id, f]) => (document.querySelector(`[data-testid="${id}"]`) as HTMLElement | null)?.title.includes(`${f}: follows`), ['cluster-leader', follower.name] as const, POLL);
      const title = await page.getAttribute(tid('cluster-leader'), 'title');
      assert.match(title!, new RegExp(`${leader.name}: leads demo-stadium`));

      // a follower serves no console: it names the leader
      const r = await fetch(follower.base + '/');
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { code: string; leader: string }).leader, leader.name);

      leader.signal('SIGKILL');
      await until('the other node leading', 20_000, async () => ((await follower.health())?.role === 'leader' ? true : undefined));
      const page2 = await ctx.newPage();
      await signIn(page2, follower.base, 'demo-viewer-token');
      await page2.waitForSelector(`${tid('cluster-leader')}:not([hidden])`);
      assert.equal(await page2.textContent(tid('cluster-leader')), `leader: ${follower.name} (this node) · epoch ${epoch + 1}`);
    } finally { await ctx.close(); }
  });
});
