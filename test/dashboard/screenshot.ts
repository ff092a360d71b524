/**
 * Regenerates the console screenshots of the README:
 *   src/dashboard/screenshot.png        desktop, a 1440 × 1180 window
 *   src/dashboard/screenshot-phone.png  a 390 × 844 phone (2× pixels), what the first screen shows
 *
 *   npm run screenshot                  (after npm run build)
 *   node build/test/dashboard/screenshot.js [--out DIR] [--seconds N]
 *
 * It starts the demo site of `npm start` (src/demo/stadium.yaml) with
 * `apb serve` on a temporary data directory and a free port, drives its
 * controllers with simulated traffic (entries, exits, turnstile passages, a
 * full VIP lounge, a few pass-backs and a forgive by the desk, the pitch locked
 * down, a supervisor and staff in the control room), opens the
 * console in Debian's Chromium (/usr/bin/chromium) as the demo operator while
 * traffic keeps flowing, takes the screenshots, and stops everything.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { chromium, type Browser, type Page } from 'playwright-core';
import { SimController } from './controller.js';
import { ROOT, startServerChild, killServerChild, type ServerChild } from './server-process.js';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SITE = join(ROOT, 'src', 'demo', 'stadium.yaml');
const DESK_SHOT = { width: 1440, height: 1180 };

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tid = (id: string) => `[data-testid="${id}"]`;

interface Site { controllers: { id: string; token: string }[]; users: { name: string; token: string; role: string }[] }

async function main(): Promise<void> {
  const out = arg('--out', join(ROOT, 'src', 'dashboard'));
  const liveSeconds = Number(arg('--seconds', '24'));
  if (!existsSync(CHROMIUM)) throw new Error(`Debian's chromium is not installed at ${CHROMIUM} (apt-get install chromium)`);
  const site = parse(readFileSync(SITE, 'utf8')) as Site;
  const token = (id: string) => site.controllers.find((c) => c.id === id)!.token;
  const operator = site.users.find((u) => u.role === 'operator')!;

  const data = mkdtempSync(join(tmpdir(), 'apb-screenshot-'));
  let server: ServerChild | undefined;
  let browser: Browser | undefined;
  const ctrls: SimController[] = [];
  try {
    server = await startServerChild({ config: SITE, data });
    const base = server.url;
    process.stdout.write(`demo site on ${base} (data ${data})\n`);
    const connect = async (id: string) => { const c = await SimController.connect(base, token(id)); ctrls.push(c); return c; };
    const north = await connect('gate-north');
    const south = await connect('gate-south');
    const turn = await connect('turnstiles');
    const vip = await connect('vip');
    const staff = await connect('staff');

    // ── before anyone opens the console: the gates open (the console backfills this from the event log) ──
    let next = 40_001;
    const crowd: number[] = [];
    for (let b = 0; b < 6; b++) {
      const north1 = Array.from({ length: 150 }, () => next++);
      const south1 = Array.from({ length: 150 }, () => next++);
      await north.badges(north1.map((cred) => ({ cred, reader: 'gate-north-in' })));
      await south.badges(south1.map((cred) => ({ cred, reader: 'gate-south-in' })));
      crowd.push(...north1, ...south1);
    }
    // 420 go on to the concourse (the turnstile turns: commitOn passage)
    const concourse = crowd.slice(0, 420);
    await turn.badges(concourse.map((cred, i) => ({ cred, reader: i % 2 ? 'turnstile-1-in' : 'turnstile-2-in' })));
    await turn.passages(concourse.map((cred, i) => ({ cred, reader: i % 2 ? 'turnstile-1-in' : 'turnstile-2-in' })));
    // the VIP lounge (200 seats) fills up: the rest are denied `occupancy`
    await vip.badges(concourse.slice(0, 236).map((cred) => ({ cred, reader: 'vip-in' })));
    // pass-backs: a card handed back over the fence, a card that never came in, a double swipe
    await north.badges([{ cred: 40_007, reader: 'gate-north-in' }, { cred: 40_152, reader: 'gate-north-in' }]);
    await south.badge(77_777, 'gate-south-out');
    await turn.badge(40_402, 'turnstile-1-in');
    // the control room: a supervisor first, then staff (who would be refused alone: no_supervisor)
    await north.badges([{ cred: 800_001, reader: 'gate-north-in' }, { cred: 31_001, reader: 'gate-north-in' }, { cred: 31_002, reader: 'gate-north-in' }]);
    await staff.badges([{ cred: 31_001, reader: 'control-in' }, { cred: 800_001, reader: 'control-in' }, { cred: 31_001, reader: 'control-in' }, { cred: 31_002, reader: 'control-in' }]);
    // the pitch is locked down; two fans try it anyway
    await fetch(`${base}/v1/areas/pitch/lockdown`, {
      method: 'POST', headers: { authorization: `Bearer ${operator.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'pitch invasion, stewards on the field', on: true }),
    });
    await staff.badges([{ cred: 40_033, reader: 'pitch-in' }, { cred: 40_034, reader: 'pitch-in' }]);
    const forgiven = 40_152;
    await fetch(`${base}/v1/credentials/${forgiven}/forgive`, {
      method: 'POST', headers: { authorization: `Bearer ${operator.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'season ticket holder, card swapped with partner at the fence' }),
    });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    const desk = await openConsole(browser, base, operator.token, { width: 1440, height: 900 }, 1);
    const phone = await openConsole(browser, base, operator.token, { width: 390, height: 844 }, 2, true);

    // ── live traffic while the console is open (and while the screenshots are taken): the charts and the feed move ──
    let vipTries = 236;
    let tick = 0;
    let running = true;
    const left: number[] = [];
    const traffic = (async () => {
      while (running) {
        const wave = 40 + Math.round(60 * Math.abs(Math.sin(tick / 7)));
        const fresh = Array.from({ length: wave }, () => next++);
        await (tick % 2 ? north : south).badges(fresh.map((cred) => ({ cred, reader: tick % 2 ? 'gate-north-in' : 'gate-south-in' })));
        crowd.push(...fresh);
        const leaving = crowd.slice(420 + tick * 12, 420 + tick * 12 + 12);
        await (tick % 2 ? south : north).badges(leaving.map((cred) => ({ cred, reader: tick % 2 ? 'gate-south-out' : 'gate-north-out' })));
        left.push(...leaving);
        if (tick % 3 === 0) { // more VIP hopefuls: the lounge is full
          await vip.badges(concourse.slice(vipTries, vipTries + 4).map((cred) => ({ cred, reader: 'vip-in' })));
          vipTries = Math.min(vipTries + 4, 416);
        }
        if (tick % 9 === 4) await north.badge(crowd[tick * 5]!, 'gate-north-in'); // a pass-back now and then
        if (tick % 13 === 6 && left.length) await south.badge(left[tick % left.length]!, 'gate-south-out'); // leaving twice: exit_not_entered
        tick++;
        await sleep(450);
      }
    })();
    await sleep(liveSeconds * 1000);
    await north.badge(forgiven, 'gate-north-in'); // the forgiven fan comes back in: granted `forgiven`

    // ── desktop: the lookup shows the forgiven pass-back; muster lists the lounge ──
    await desk.fill(tid('lookup-cred'), String(forgiven));
    await desk.click(tid('lookup-submit'));
    await desk.waitForSelector(`${tid('lookup-events')} tr[data-kind="action"]`);
    await desk.click(`${tid('lookup-events')} tr.has-detail`); // the forgiven badge, explained
    await desk.waitForSelector(tid('event-sentence'), { state: 'visible' });
    await desk.selectOption(tid('muster-area'), 'vip-lounge').catch(() => undefined);
    await desk.waitForSelector(tid('muster-row'), { timeout: 5000 }).catch(() => undefined);
    await sleep(2500); // a few more stats frames
    await desk.click(tid('muster-load')); // the list as of now
    await desk.evaluate(() => window.scrollTo(0, 0)); // the sticky header at the top of the full-page shot
    await sleep(300);
    mkdirSync(out, { recursive: true });
    // a tall desktop window, captured as it is (a fullPage capture lays the page out again at its
    // full height and would catch the virtualised feed before it repaints)
    await desk.setViewportSize(DESK_SHOT);
    await sleep(500);
    await desk.screenshot({ path: join(out, 'screenshot.png') });
    await phone.evaluate(() => window.scrollTo(0, 0));
    await phone.screenshot({ path: join(out, 'screenshot-phone.png') });
    running = false;
    await traffic;
    process.stdout.write(`wrote ${join(out, 'screenshot.png')} and ${join(out, 'screenshot-phone.png')}\n`);
  } finally {
    for (const c of ctrls) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await killServerChild(server, 'SIGTERM');
    rmSync(data, { recursive: true, force: true });
  }
}

async function openConsole(browser: Browser, base: string, token: string, viewport: { width: number; height: number }, scale: number, mobile = false): Promise<Page> {
  const ctx = await browser.newContext({ viewport, deviceScaleFactor: scale, isMobile: mobile, hasTouch: mobile, colorScheme: 'dark' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(base + '/');
  await page.fill(tid('signin-token'), token);
  await page.click(tid('signin-submit'));
  await page.waitForSelector(`${tid('stream-status')}[data-state="live"]`);
  await page.waitForSelector('body[data-history="loaded"]');
  return page;
}

main().catch((e) => {
  process.stderr.write(`screenshot failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
