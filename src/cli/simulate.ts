/**
 * `apb simulate --scenario stadium|metro|office --url ws://127.0.0.1:8080
 *   [--config site.yaml] [--rate N] [--speed X] [--limit N] [--size N] [--seed N]
 *   [--tokens ctl=TOKEN,…] [--frame N] [--print-site]`
 *
 * Drives a running server with simulated controllers (src/sim/) and prints
 * a summary: sent, granted, denied, violations by code (found and
 * expected), p50/p99 latency. Without --config the server must run the
 * scenario's own site (`--print-site` writes it as YAML); with --config (the
 * site file the server runs, e.g. src/demo/stadium.yaml for `npm start`) the
 * stream is built from that site's readers and tokens. Credentials are a
 * fresh range on every run, so a persistent server's old state does not
 * change the expected outcomes. Exit code 1 when replies were errors or
 * (for a site the ground truth fully models) differ from what was expected.
 * A server restart mid-run is survived: connections are opened again and
 * unanswered frames resent with their ids (src/sim/wsdriver.ts), so the
 * check stays exact.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ApbError } from '../errors.js';
import { describeMismatch, total } from '../sim/check.js';
import type { Scenario } from '../sim/scenario.js';
import { SCENARIOS, isScenarioName } from '../sim/scenarios.js';
import { siteScenario } from '../sim/sitewalk.js';
import { siteYaml } from '../sim/sites.js';
import type { LooseSite } from '../sim/truth.js';
import { driveServer } from '../sim/wsdriver.js';
import { parseArgs } from './args.js';
import { specOf } from './usage.js';


function num(args: Record<string, string | boolean | undefined>, name: string, min: number, integer = true): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new ApbError('usage', `--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${String(v)}"`);
  }
  return n;
}

function bar(done: number, totalN: number, t0: number): string {
  const w = 30, f = totalN ? done / totalN : 1;
  const fill = Math.round(f * w);
  const rate = done / Math.max(0.001, (performance.now() - t0) / 1000);
  return `\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${(f * 100).toFixed(0).padStart(3)}% ${done}/${totalN} events ${Math.round(rate)}/s `;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf('simulate'));
  const name = args.scenario;
  if (typeof name !== 'string' || !isScenarioName(name)) throw new ApbError('usage', `--scenario must be stadium, metro or office${typeof name === 'string' ? `, got "${name}"` : ''}`);
  const limit = num(args, 'limit', 1), seed = num(args, 'seed', 0) ?? 1, frame = num(args, 'frame', 1) ?? 64;
  let rate = num(args, 'rate', 0, false) ?? 0;
  const speed = num(args, 'speed', 0, false) ?? 0;
  const credBase = num(args, 'cred-base', 0) ?? 10_000_000_000_000 + (Math.floor(Date.now() / 1000) % 10_000_000) * 10_000_000;
  const FULL = { stadium: 60_000, metro: 400_000, office: 3000 } as const;
  const size = num(args, 'size', 1) ?? (limit ? Math.min(FULL[name], Math.max(200, limit)) : FULL[name]);

  let sc: Scenario;
  let cfg: LooseSite;
  if (typeof args.config === 'string') {
    let text: string;
    try { text = readFileSync(args.config, 'utf8'); } catch (e) { throw new ApbError('not_found', `cannot read --config ${args.config}: ${(e as Error).message}`); }
    // the site loader validates the file exactly as the server does
    const { loadSiteText } = await import('../config/load.js');
    loadSiteText(text, args.config);
    cfg = parse(text) as LooseSite;
    sc = siteScenario(cfg, { seed, size, credBase, name: `${name} on ${cfg.site ?? args.config}` });
  } else {
    sc = SCENARIOS[name]({ seed, size, credBase });
    cfg = sc.config;
  }
  if (args['print-site']) { process.stdout.write(siteYaml(cfg)); return 0; }
  if (typeof args.url !== 'string') throw new ApbError('usage', '--url is required (e.g. ws://127.0.0.1:8080)');
  try { const u = new URL(args.url); if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(); } catch {
    throw new ApbError('usage', `--url must be a ws:// or wss:// URL, got "${args.url}"`);
  }
  const tokens: Record<string, string> = Object.fromEntries(cfg.controllers.map((c) => [c.id, c.token]));
  if (typeof args.tokens === 'string') {
    let tokensSeen = 0;
    for (const pair of args.tokens.split(',')) {
      const i = pair.indexOf('=');
      if (i <= 0 || i === pair.length - 1) throw new ApbError('usage', `--tokens expects controller=token pairs separated by commas (pair ${tokensSeen + 1} is not one)`);
      tokens[pair.slice(0, i)] = pair.slice(i + 1);
      tokensSeen++;
    }
  }
  // the server's clock is wall time: leave out people whose outcomes depend on elapsed time
  let events = sc.events.filter((e) => !e.timing);
  if (limit) events = events.slice(0, limit);
  if (args.rate === undefined && !speed) {
    // as fast as the server's per-controller rate limits allow (default 10 000/s), with a margin
    const used = new Set(events.map((e) => sc.truth.readers[e.reader]!.controller));
    const limits = cfg.controllers.filter((c) => used.has(c.id)).map((c) => c.rateLimit ?? 10_000);
    rate = Math.floor(0.8 * Math.min(...limits, Number.MAX_SAFE_INTEGER));
  }
  const tty = process.stderr.isTTY === true;
  process.stderr.write(`apb simulate: ${sc.name}, ${events.length} events of ${sc.persons} people` +
    `${sc.timingPersons ? ` (${sc.timingPersons} timing-dependent people left out)` : ''} → ${args.url}` +
    `${speed ? `, ${speed}× simulated time` : ''}${rate && rate < 1e7 ? `, ≤ ${rate} events/s` : ''}\n`);
  const t0 = performance.now();
  let r;
  try {
    r = await driveServer({
      url: args.url, site: sc.truth, tokens, events, frame, speed, rate,
      onProgress: tty ? (d, n) => process.stderr.write(bar(d, n, t0)) : undefined,
      // a restarted server: reconnect and resend the unanswered frames (same ids: its idempotency answers them)
      onConnection: (e) => process.stderr.write(`${tty ? '\n' : ''}apb simulate: controller ${e.controller}: ${e.state === 'lost'
        ? `connection lost (${e.why}), reconnecting…` : `reconnected after ${e.downMs} ms, ${e.resent} unanswered frame(s) sent again`}\n`),
    });
  } catch (e) {
    const m = (e as Error).message;
    const hint = /HTTP 401/.test(m) && typeof args.config !== 'string'
      ? `\n  the server does not know the scenario's controller tokens: run it on the scenario's site (apb simulate --scenario ${name} --print-site > site.yaml; apb serve --config site.yaml …) or pass --config <the server's site file>`
      : '';
    throw new ApbError(/HTTP 401/.test(m) ? 'unauthorized' : 'internal', `${m}${hint}`);
  }
  if (tty) process.stderr.write('\n');
  const s = r.summary;
  const codes = [...new Set([...Object.keys(s.found), ...Object.keys(s.injected)])].sort();
  const lines = [
    `scenario   ${sc.name}`,
    `sent       ${s.sent} events (${s.badges} badges, ${s.passages} passages) in ${r.seconds.toFixed(2)} s, ${Math.round(r.eventsPerSec)} events/s`,
    `granted    ${s.granted}`,
    `denied     ${s.denied}`,
    `violations ${codes.length ? codes.map((c) => `${c} ${s.found[c] ?? 0} (expected ${s.injected[c] ?? 0})`).join(', ') : 'none'}`,
    `latency    p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms (frame round trip)`,
  ];
  if (total(s.errors)) lines.push(`errors     ${Object.entries(s.errors).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (r.reconnects) lines.push(`reconnects ${r.reconnects} (${r.resent} unanswered frames sent again with the same message ids)`);
  const exact = sc.exact;
  lines.push(`check      ${s.mismatches === 0 ? 'violations found == violations expected, badge by badge' : `${s.mismatches} badge(s) differ from the ground truth`}` +
    `${exact ? '' : ` (not exact: the site uses ${sc.truth.unsupported.join(', ')}, which the ground truth does not model)`}`);
  process.stdout.write(lines.join('\n') + '\n');
  if (s.mismatches && exact) process.stderr.write(describeMismatch('apb simulate', s) + '\n');
  return total(s.errors) > 0 || (exact && s.mismatches > 0) ? 1 : 0;
}
