/** Shared pieces of the console browser tests (console.test.ts). */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const skip: string | false = existsSync(CHROMIUM) ? false : `Debian's chromium is not installed at ${CHROMIUM} (apt-get install chromium); browser tests not run`;
export const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const tid = (id: string): string => `[data-testid="${id}"]`;
/** poll predicates every 100 ms, not every animation frame: the page is what is being measured */
export const POLL = { polling: 100 } as const;
export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

export async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; data: any; text: string; type: string }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data: any = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return { status: res.status, data, text, type: res.headers.get('content-type') ?? '' };
}

/** Every record of the event log with at >= since (all pages of GET /v1/events). */
export async function allEvents(base: string, token: string, since: number): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const q = new URLSearchParams({ since: String(since), limit: '10000', order: 'asc' });
    if (cursor) q.set('cursor', cursor);
    const r = await api(base, token, 'GET', `/v1/events?${q}`);
    assert.equal(r.status, 200, r.text);
    const page: any[] = Array.isArray(r.data) ? r.data : r.data.events;
    out.push(...page);
    cursor = Array.isArray(r.data) ? null : r.data.next;
    if (page.length === 0 || !cursor) break;
  }
  return out;
}

/** Feed items a list of log records makes: one per violation, one per operator action. */
export function feedItemsOf(records: any[]): { kind: string; code: string; area: string | null; cred: string; at: number }[] {
  const out: { kind: string; code: string; area: string | null; cred: string; at: number }[] = [];
  for (const r of records) {
    if ((r.kind === 'badge' || r.kind === 'offline') && Array.isArray(r.violations)) {
      for (const v of r.violations) out.push({ kind: 'violation', code: v.code, area: v.area ?? null, cred: r.cred, at: r.at });
    } else if (r.kind === 'action' && r.who !== undefined) out.push({ kind: 'action', code: r.action, area: r.area ?? null, cred: r.cred ?? '', at: r.at });
  }
  return out;
}

export async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(base + '/');
  await page.fill(tid('signin-token'), token);
  await page.click(tid('signin-submit'));
  await page.waitForSelector(tid('console'), { state: 'visible' });
  await page.waitForSelector(`${tid('stream-status')}[data-state="live"]`);
}

export async function waitText(page: Page, id: string, text: string, timeout?: number): Promise<void> {
  await page.waitForFunction(([i, t]) => document.querySelector(`[data-testid="${i}"]`)?.textContent === t, [id, text] as const, { ...POLL, ...(timeout ? { timeout } : {}) });
}

/** "HH:MM:SS" (and ".mmm") of `at` in `zone`. */
export function clockIn(zone: string, at: number, ms = false): string {
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(at));
  return ms ? `${f}.${String(at % 1000).padStart(3, '0')}` : f;
}

/** The console's table time of `at` in `zone` as seen on `today` (a date when not the same day there). */
export function stampIn(zone: string, at: number, now: number, ms = true): string {
  const d = (t: number) => new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(t));
  if (d(at) === d(now)) return clockIn(zone, at, ms);
  const [y, m, day] = d(at).split('-');
  const [ny] = d(now).split('-');
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return y === ny ? `${Number(day)} ${MONTHS[Number(m) - 1]} ${clockIn(zone, at)}` : `${y}-${m}-${day} ${clockIn(zone, at)}`;
}

/** Seconds of a day of "HH:MM:SS". */
export const daySeconds = (hms: string): number => { const [h, m, s] = hms.split(':').map(Number); return h! * 3600 + m! * 60 + s!; };
