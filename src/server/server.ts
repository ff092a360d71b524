/**
 * `startServer(opts)`: the engine behind uWebSockets.js on one port:
 *   /v1/controller  controller WebSocket (controller-socket.ts)
 *   /v1/stream      live stream for the dashboard (stream.ts)
 *   /v1/*, /healthz, /metrics   HTTP API (http-api.ts)
 *   /               the dashboard's static files (static.ts)
 * plus the UHPPOTE UDP listener when the site has `uhppote: {host, port}`
 * and outbound webhooks (webhooks.ts). The decision pipeline is hub.ts.
 *
 * Start-up order: native uWS (refuse the JS fallback) → validate the
 * configuration → open the store → recover the engine (newest snapshot +
 * journal) → listen. close() is the graceful shutdown: stop accepting,
 * answer every frame already being decided, flush the store, close.
 */
import { areaRows } from './areas.js';
import { ApbError } from '../errors.js';
import { loadSiteText, readSiteFile } from '../config/load.js';
import type { CompiledSite } from '../config/types.js';
import type { Engine, ReloadReport } from '../engine/types.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { openDurableEngine, startSnapshotter } from '../store/recovery.js';
import { UhppoteService } from './uhppote-service.js';
import { loadUws } from './uws.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { LoopDelay } from './loop-delay.js';
import { Auth } from './auth.js';
import { Hub, type HubEvent } from './hub.js';
import { ControllerSocket, frameMessages, frameReply } from './controller-socket.js';
import { Stream } from './stream.js';
import { Webhooks, type WebhookOptions } from './webhooks.js';
import { registerHttpApi } from './http-api.js';
import { StaticFiles } from './static.js';
import { listenExclusive } from './listen.js';
import { AuthThrottle, type AuthThrottleOptions } from './auth-throttle.js';

export interface ServerOptions {
  configPath?: string;
  configText?: string;
  data: string;               // a directory, or ':memory:'
  host?: string;              // default 127.0.0.1
  port?: number;              // default 8080; 0 = any free port
  logLevel?: string;
  allowJsFallback?: boolean;
  /** engine core (default wasm; 'reference' for tests and comparisons) */
  core?: 'wasm' | 'reference';
  /** when a reply may go (store/wal.ts): 'commit' (default) once the WAL write reaches the OS, 'flush' once fsynced */
  durability?: 'commit' | 'flush';
  /** test knobs */
  webhooks?: WebhookOptions;
  /** work per slice of a muster page's scan, ms (default 1: wasm-core.ts SLICE_MS; tests make it smaller to slice small tables) */
  musterSliceMs?: number;
  dashboardDir?: string;
  /** failed-token throttling (defaults in auth-throttle.ts) */
  authThrottle?: AuthThrottleOptions;
  logger?: Logger;
  /** ms between storage recovery attempts (default 1000) */
  retryMs?: number;
  /** an already-open store (tests inject failures through it); `data` is then only reported */
  store?: Store;
  /** an engine already up to date with `store`, running configText (a cluster follower's hot engine): no recovery */
  engine?: Engine;
  /** cluster mode (src/cluster): `cluster` in /healthz, and lines appended to /metrics */
  cluster?: { health(): Record<string, unknown>; metrics(): string };
}

export interface RunningServer {
  port: number;
  url: string;
  native: boolean;
  /** re-reads the configuration file (SIGHUP); resolves with what changed */
  reload(who?: string): Promise<ReloadReport>;
  /** the UHPPOTE listener's UDP port, undefined when not listening */
  uhppotePort(): number | undefined;
  /** cluster mode: one frame of `controller` forwarded by a follower node, answered as if it came on its socket */
  forward(controller: string, frame: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export const OCCUPANCY_INTERVAL_MS = 250;
export const STATS_INTERVAL_MS = 1000;
export const SHUTDOWN_GRACE_MS = 50;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.logger ?? createLogger(opts.logLevel);
  const { uws, native } = loadUws({ allowJsFallback: opts.allowJsFallback ?? false, warn: (m) => log.warn(m) });
  if (opts.configText === undefined && opts.configPath === undefined) throw new ApbError('bad_message', 'startServer: configPath or configText is required');
  const text = opts.configText ?? readSiteFile(opts.configPath!);
  loadSiteText(text, opts.configPath ?? 'site file'); // refuse to start on an invalid file, before touching the store

  // openStore takes the data directory's lock (data_locked if another apb holds it); close() releases it.
  // lmdb-js' console errors (a failed commit) go into the JSON log instead of raw stderr lines.
  const store: Store = opts.store ?? await openStore(opts.data, {
    durability: opts.durability ?? 'commit',
    onLibraryOutput: (level, text, err) => log[level]({ err: err ? { message: err.message, code: (err as { code?: unknown }).code } : undefined }, `lmdb: ${text}`),
  });
  let engine: Engine;
  try {
    engine = opts.engine ?? (await openDurableEngine({ store, configText: text, core: opts.core ?? 'wasm', log })).engine;
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }

  const metrics = new Metrics();
  const webhooks = new Webhooks(metrics, log, opts.webhooks);
  webhooks.setTargets(engine.site.config.webhooks ?? []);
  const app = uws.App();
  let auth = new Auth(engine.site);
  let accepting = true;
  let occupancyDirty = true;

  const throttle = new AuthThrottle(opts.authThrottle);
  const stream = new Stream(app, { auth: () => auth, site: () => hub.site, metrics, accepting: () => accepting, throttle });
  const sink = {
    active: (): boolean => stream.wants('decision') || stream.wants('violation') || webhooks.wants('violation') || webhooks.wants('decision'),
    emit: (ev: HubEvent): void => { stream.publish(ev); webhooks.enqueue(ev); },
    changed: (): void => { occupancyDirty = true; },
  };

  const wireEngine = (e: Engine): void => {
    e.onPeriodicReset = (area, at, changed) => {
      occupancyDirty = true;
      const ev: HubEvent = { kind: 'action', at, who: 'schedule', why: 'resetAt', action: 'resetArea', area: e.site.areaIds[area]!, changed };
      setImmediate(() => sink.emit(ev));
    };
  };
  wireEngine(engine);

  const hub: Hub = new Hub({
    store, engine, configText: text, log, metrics, sink,
    retryMs: opts.retryMs ?? 1000,
    rebuild: async (t) => {
      const e = (await openDurableEngine({ store, configText: t, core: opts.core ?? 'wasm', log })).engine;
      wireEngine(e);
      snapshotter.setEngine(e);
      return e;
    },
    onSite: (site: CompiledSite) => {
      auth = new Auth(site);
      webhooks.setTargets(site.config.webhooks ?? []);
      controllers.revalidate(auth);
      void uhppote.reconfigure(site.config.uhppote);
      stream.revalidate(auth);
    },
  });
  const unsubscribeHealth = store.onHealthChange((healthy) => { if (healthy) hub.retryNow(); });

  const controllers = new ControllerSocket(app, { hub, auth: () => auth, metrics, log, accepting: () => accepting, throttle });
  const statics = new StaticFiles(opts.dashboardDir);

  const health = (): { ready: boolean; body: Record<string, unknown> } => {
    const ready = hub.ready && !hub.draining && store.healthy;
    return {
      ready,
      body: {
        live: true, ready, native, storage: store.healthy ? 'ok' : 'unavailable', draining: hub.draining,
        reason: hub.reason || undefined, core: hub.engine.core.kind, site: hub.site.config.site,
        controllers: controllers.controllers().length, uptimeS: Math.round(process.uptime()),
        cluster: opts.cluster?.health(),
      },
    };
  };
  const metricsText = (): string => metrics.render({
    native, ready: hub.ready && store.healthy, connected: controllers.count, backpressure: controllers.backpressure(),
    streamClients: stream.clients, engineKind: hub.engine.core.kind, credentials: safeSize(hub.engine), webhookQueue: webhooks.size,
    indexSkipped: store.indexSkipped ?? 0, indexLag: store.indexLag ?? 0, syncs: store.syncs ?? 0,
  }) + (opts.cluster?.metrics() ?? '');
  registerHttpApi(app, { hub, auth: () => auth, metrics, log, statics, throttle, health, metricsText, connected: (id) => controllers.connected(id), musterSliceMs: opts.musterSliceMs });

  // ── occupancy (coalesced, ≤ 4/s, on change) and stats (1/s) for the stream ──
  let lastOcc = '';
  const occTimer = setInterval(() => {
    if (!occupancyDirty || !hub.ready) return;
    occupancyDirty = false;
    const site = hub.site;
    try { hub.engine.tick(Date.now()); } catch (e) { log.warn({ err: e }, 'tick failed'); return; }
    const areas = areaRows(hub.engine, site);
    const key = JSON.stringify(areas);
    if (key === lastOcc) return;
    lastOcc = key;
    const ev: HubEvent = { kind: 'occupancy', at: Date.now(), areas };
    stream.setOccupancy(ev);
    stream.publish(ev);
  }, OCCUPANCY_INTERVAL_MS);
  occTimer.unref();
  let lastStats = performance.now();
  const statsTimer = setInterval(() => {
    const now = performance.now();
    const dt = (now - lastStats) / 1000;
    lastStats = now;
    const n = metrics.recentDecisions;
    metrics.recentDecisions = 0;
    if (!stream.wants('stats')) { metrics.dropRecent(); return; } // nobody to tell: no sort on the event loop
    const lat = metrics.takeRecent();
    stream.publish({ kind: 'stats', at: Date.now(), decisionsPerSec: Math.round(n / dt), latencyUs: { p50: lat.p50, p99: lat.p99 }, controllers: controllers.controllers() });
  }, STATS_INTERVAL_MS);
  statsTimer.unref();
  // presence timeouts and resetAt change occupancy without any event: recheck now and then
  const expiryTimer = setInterval(() => { occupancyDirty = true; }, 5000);
  expiryTimer.unref();

  // ── snapshots off the main thread: a replica engine in a worker writes them (LMDB; recovery.ts) ──
  const snapshotter = startSnapshotter(store, () => hub.engine, { log });

  // ── UHPPOTE events arrive as that controller's offline messages (restarted by reloads) ──
  const uhppote = new UhppoteService({ hub: () => hub, metrics, log });
  await uhppote.start(engine.site.config.uhppote).catch(async (e) => { await snapshotter.stop(); await store.close().catch(() => undefined); throw e; });

  // ── listen ──
  const host = opts.host ?? '127.0.0.1';
  // exclusive: a port held by another process is address_in_use, never shared (listen.ts)
  const listenSocket = await listenExclusive(app, host, opts.port ?? 8080).catch(async (e) => { await uhppote.close(); await snapshotter.stop(); await store.close().catch(() => undefined); throw e; });
  metrics.loopDelay = new LoopDelay();
  const port = uws.us_socket_local_port(listenSocket as unknown as import('uWebSockets.js').us_socket);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, native, core: hub.engine.core.kind, site: hub.site.config.site, data: opts.data }, 'apb serving');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info('shutting down: no new connections, finishing in-flight frames');
      accepting = false;
      uws.us_listen_socket_close(listenSocket);
      await hub.drain();                        // every frame already decided gets its reply
      // frames already read from the sockets in the meantime are answered not_ready
      await new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS));
      await hub.drain();
      await new Promise((r) => setImmediate(r)); // replies released by the last commits go out
      controllers.closeAll();
      stream.closeAll();
      clearInterval(occTimer); clearInterval(statsTimer); clearInterval(expiryTimer);
      metrics.loopDelay?.stop();
      webhooks.close();
      await uhppote.close();
      await snapshotter.stop();
      unsubscribeHealth();
      await store.close();
      try { (app as unknown as { close?: () => void }).close?.(); } catch { /* older uWS */ }
      log.info('shut down');
    })();
    return closing;
  };

  const reload = async (who = 'sighup'): Promise<ReloadReport> => {
    if (!opts.configPath) throw new ApbError('bad_message', 'reload: the server was started from text, not a file');
    // read here, checked by hub.reconfigure (off the main thread for a large site): invalid_config before anything changes
    const report = await hub.reconfigure(readSiteFile(opts.configPath), who);
    await uhppote.reconfigure(hub.site.config.uhppote); // the listener is on its new address when reload() resolves
    return report;
  };

  const forward = async (controller: string, frame: Uint8Array): Promise<Uint8Array> => {
    const ctrl = hub.controller(controller);
    if (!ctrl || !accepting) throw new ApbError('not_ready', 'this server does not take frames of that controller now');
    if (!hub.admit(ctrl, frameMessages(frame))) return hub.limitedReply(ctrl);
    return frameReply(hub, metrics, ctrl, frame);
  };

  return { port, url, native, reload, close, uhppotePort: () => uhppote.port, forward };
}

function safeSize(e: Engine): number {
  try { return e.core.size(); } catch { return 0; }
}
