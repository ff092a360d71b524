/**
 * The console's SPEC 13 parts in Debian's Chromium against the real engine
 * (`apb serve` as a child process, LMDB data directory): locking an area
 * down asks for its name to be typed, a locked area is marked on its row and
 * in a banner at desktop and phone width, supervised areas show their
 * supervisors present, and a denied badge in the credential lookup opens
 * into a sentence with the raw facts beside it. The HTTP API is the ground
 * truth. Skipped (with the reason) where /usr/bin/chromium is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { SimController } from './controller.js';
import { SITE_YAML, TOKENS } from './site.js';
import { startServerChild, killServerChild, type ServerChild } from './server-process.js';
import { CHROMIUM, skip, LAUNCH_ARGS, tid, POLL, DESKTOP, PHONE, api, signIn, clockIn } from './helpers.js';

// vip is supervised; credential 77 is a standing supervisor
const SITE = SITE_YAML
  .replace('    entry: hard\n    maxOccupancy: 20\n', '    entry: hard\n    maxOccupancy: 20\n    supervision: hard\n')
  .replace('users:', 'credentials:\n  - { cred: 77, supervisor: true }\nusers:');

test('the console: lockdown with typed confirmation, locked areas at a glance on desktop and phone, supervisors, explained decisions', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-console13-'));
  const config = join(dir, 'site.yaml');
  writeFileSync(config, SITE);
  let server: ServerChild | undefined;
  let browser: Browser | undefined;
  let gates: SimController | undefined;
  try {
    server = await startServerChild({ config, data: join(dir, 'data') });
    const base = server.url;
    gates = await SimController.connect(base, TOKENS.gates);
    assert.equal((await gates.badge(10, 'gate-in')).grant, true);
    assert.equal((await gates.badge(77, 'gate-in')).grant, true);
    assert.equal((await gates.badge(77, 'concourse-in')).grant, true);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    const ctx = await browser.newContext({ viewport: DESKTOP, timezoneId: 'UTC' });
    const page = await ctx.newPage();
    await signIn(page, base, TOKENS.operator);
    await page.waitForSelector(tid('area-lockdown-stadium'));
    assert.equal(await page.locator(tid('area-lockdown-outside')).count(), 0, 'outside cannot be locked: no button');
    assert.equal(await page.isVisible(tid('lockdown-banner')), false);
    // supervised vip: no supervisor yet
    assert.equal(await page.innerText(tid('area-supervisors-vip')), 'no supervisor');

    // lock the concourse: the name must be typed; cancelling changes nothing
    await page.click(tid('area-lockdown-concourse'));
    await page.waitForSelector(tid('action-dialog') + '[open]');
    assert.equal(await page.innerText(tid('action-typed-name')), 'concourse');
    await page.fill(tid('action-reason'), 'smoke in the concourse');
    assert.equal(await page.isEnabled(tid('action-confirm')), false);
    await page.fill(tid('action-typed'), 'concours');
    assert.equal(await page.isEnabled(tid('action-confirm')), false);
    await page.click(tid('action-cancel'));
    let areas = (await api(base, TOKENS.viewer, 'GET', '/v1/areas')).data as any[];
    assert.equal(areas.find((a) => a.id === 'concourse').lockdown, false, 'cancelled: not locked');
    await page.click(tid('area-lockdown-concourse'));
    await page.waitForSelector(tid('action-dialog') + '[open]');
    await page.fill(tid('action-reason'), 'smoke in the concourse');
    await page.fill(tid('action-typed'), 'concourse');
    await page.click(tid('action-confirm'));
    await page.waitForSelector(tid('action-dialog'), { state: 'hidden' });
    areas = (await api(base, TOKENS.viewer, 'GET', '/v1/areas')).data as any[];
    assert.equal(areas.find((a) => a.id === 'concourse').lockdown, true);
    // unmistakable: the row's tag and the banner
    await page.waitForSelector(`${tid('area-concourse')}[data-lockdown="true"]`);
    assert.equal(await page.isVisible(tid('area-locked-concourse')), true);
    assert.equal(await page.isVisible(tid('area-locked-stadium')), false);
    assert.equal(await page.isVisible(tid('lockdown-banner')), true);
    assert.match(await page.innerText(tid('lockdown-banner-title')), /LOCKDOWN: concourse/);
    assert.equal(await page.innerText(tid('area-lockdown-concourse')), 'Unlock');

    // a controller is denied; the lookup explains the decision in a sentence, with the facts beside it
    const d = await gates.badge(10, 'concourse-in');
    assert.deepEqual([d.grant, d.reason], [false, 'lockdown']);
    const ev = ((await api(base, TOKENS.viewer, 'GET', '/v1/events?cred=10&limit=1')).data.events as any[])[0];
    assert.equal(ev.reason, 'lockdown');
    await page.fill(tid('lookup-cred'), '10');
    await page.click(tid('lookup-submit'));
    const row = `${tid('lookup-events')} tr.has-detail`;
    await page.waitForSelector(row);
    await page.click(row);
    await page.waitForSelector(tid('event-sentence'), { state: 'visible' });
    assert.equal(await page.innerText(tid('event-sentence')),
      `denied: concourse is locked down; seen in stadium since ${clockIn('UTC', ev.seen.lastMoveAt)} via gate-in`);
    const facts = await page.innerText(tid('event-facts'));
    assert.ok(facts.includes('lockdown (hard) {"area":"concourse"}') && facts.includes('"location":"stadium"'), facts);
    // the supervisor state and action are in the lookup
    assert.equal(await page.innerText(tid('state-supervisor')), 'no');

    // the phone: the banner and the row's tag are on screen without scrolling sideways
    const phone = await (await browser.newContext({ viewport: PHONE, timezoneId: 'UTC', isMobile: true, hasTouch: true })).newPage();
    await signIn(phone, base, TOKENS.viewer);
    await phone.waitForSelector(tid('lockdown-banner'), { state: 'visible' });
    const box = await phone.locator(tid('lockdown-banner')).boundingBox();
    assert.ok(box && box.y < PHONE.height && box.width <= PHONE.width, JSON.stringify(box));
    assert.equal(await phone.locator(tid('area-lockdown-concourse')).count(), 0, 'a viewer gets no lockdown button');
    await phone.waitForSelector(`${tid('area-concourse')}[data-lockdown="true"]`);

    // vip lies below the locked concourse: even a supervisor is denied there
    const vipDoor = await SimController.connect(base, TOKENS.vip);
    assert.equal((await vipDoor.badge(77, 'vip-in')).reason, 'lockdown');
    areas = (await api(base, TOKENS.viewer, 'GET', '/v1/areas')).data as any[];
    assert.equal(areas.find((a) => a.id === 'vip').supervisors, 0);
    // unlock (typed again), then 77 enters and the console counts one supervisor
    await page.click(tid('area-lockdown-concourse'));
    await page.waitForSelector(tid('action-dialog') + '[open]');
    await page.fill(tid('action-reason'), 'all clear');
    await page.fill(tid('action-typed'), 'concourse');
    await page.click(tid('action-confirm'));
    await page.waitForSelector(tid('action-dialog'), { state: 'hidden' });
    await page.waitForSelector(tid('lockdown-banner'), { state: 'hidden' });
    assert.equal((await vipDoor.badge(77, 'vip-in')).grant, true);
    await page.waitForFunction(() => document.querySelector('[data-testid="area-supervisors-vip"]')?.textContent === '1 supervisor', undefined, { ...POLL, timeout: 10_000 });
    await vipDoor.close();
    await ctx.close();
  } finally {
    await gates?.close();
    await browser?.close();
    await killServerChild(server);
    rmSync(dir, { recursive: true, force: true });
  }
});
