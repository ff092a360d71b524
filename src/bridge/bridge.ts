/**
 * `apb bridge`: the gate-side agent. Puts together, from a checked bridge
 * file (config.ts):
 *   store (offline journal, ids, known states) · local core (site given) ·
 *   engine link · uploader · one bus per serial port with a PdLink per
 *   reader · the door logic · /healthz and /metrics.
 * stop(): stops polling, closes the ports, the link and the store; every
 * committed journal entry is still uploaded after the next start.
 */
import type { Logger } from 'pino';
import { buildFormatTable, formatTableFor } from '../adapters/wiegand/formats.js';
import { Bus } from './acu/bus.js';
import { PdLink, type PdEvents } from './acu/pd-link.js';
import type { BridgeConfig, ReaderConfig } from './config.js';
import { Door, type DoorReader } from './door.js';
import { EngineLink } from './link/engine-link.js';
import { LocalDecider } from './offline/local.js';
import { BridgeStore } from './offline/store.js';
import { Uploader } from './offline/uploader.js';
import { startOpsServer } from './ops/http.js';
import { BridgeMetrics, renderMetrics, type Gauge } from './ops/metrics.js';
import type { Transport } from './acu/transport.js';

const PRUNE_EVERY_MS = 10 * 60_000;
/** a lost serial port is reopened after this long, doubling up to REOPEN_MAX_MS */
const REOPEN_MIN_MS = 250;
const REOPEN_MAX_MS = 5000;

export interface BridgeOptions { openPort?: (path: string, baud: number) => Promise<Transport> }

export class Bridge {
  private stopping = false;
  private pruneTimer: NodeJS.Timeout | null = null;
  private ops: { url: string; close(): Promise<void> } | null = null;

  private constructor(readonly cfg: BridgeConfig, readonly metrics: BridgeMetrics, readonly store: BridgeStore, readonly link: EngineLink,
    readonly local: LocalDecider | null, readonly uploader: Uploader, readonly buses: Bus[], readonly readers: DoorReader[]) {}

  get url(): string | null { return this.ops?.url ?? null; }

  static async start(cfg: BridgeConfig, log: Logger, o: BridgeOptions = {}): Promise<Bridge> {
    const f = cfg.file;
    const store = await BridgeStore.open(f.data);
    try {
      const metrics = new BridgeMetrics();
      const readerIds = f.ports.flatMap((p) => p.readers.map((r) => r.id));
      const local = cfg.site && cfg.controller
        ? new LocalDecider(cfg.site, cfg.controller, readerIds, new Map(store.allKnown()), f.offline.facilities ? new Set(f.offline.facilities) : null, (c, s) => store.remember(c, s))
        : null;
      const link = new EngineLink({ url: f.engine.url, token: f.engine.token, reconnectMin: f.engine.reconnectMin, reconnectMax: f.engine.reconnectMax, pingEvery: f.engine.pingEvery }, log);
      const viewer = f.engine.viewerToken ? { base: f.engine.url.replace(/^ws/, 'http').replace(/\/+$/, ''), token: f.engine.viewerToken } : null;
      const uploader = new Uploader(store, link, log, metrics, cfg.controller, viewer, (states) => local?.refresh(states));
      const door = new Door({ file: f, store, link, local, uploader, metrics, log, formats: cfg.site ? formatTableFor(cfg.site.site) : buildFormatTable() });
      const readers: DoorReader[] = [];
      /** the reader heads of each PD (one for most readers), by reader number */
      const heads = new Map<PdLink, DoorReader[]>();
      const headsOf = (pd: PdLink): DoorReader[] => heads.get(pd)!;
      /** the capabilities last logged per PD: rediscoveries with the same answer are not logged again */
      const capsLogged = new Map<PdLink, string>();
      const events: PdEvents = {
        reply: (pd, r, at) => door.onReply(headsOf(pd), r, at),
        state: (pd, online, why) => {
          for (const h of headsOf(pd)) metrics.readerTransitions.inc({ reader: h.cfg.id, to: online ? 'online' : 'offline' });
          log[online ? 'info' : 'warn']({ reader: pd.name, address: pd.address, secure: pd.secure, why }, online ? 'reader online' : 'reader offline');
        },
        acked: (pd, cmd, at) => { if (cmd.readAt !== undefined) metrics.cardToLed.observe((at - cmd.readAt) / 1000); },
        identity: (pd, id) => log.info({ reader: pd.name, ...id }, 'reader identity'),
        problem: (pd, what) => log.warn({ reader: pd.name, address: pd.address }, what),
        inputs: (pd, inputs) => { for (const h of headsOf(pd)) h.inputs = inputs; },
        keySet: (pd) => log.warn({ reader: pd.name }, 'install mode: the reader accepted the configured SCBK; set secure.install: false for this reader'),
        capabilities: (pd, caps, warnings) => {
          // asked at every (re)discovery: logged when the answer or the warnings change
          const key = JSON.stringify([caps, warnings]);
          const seen = capsLogged.get(pd) === key;
          capsLogged.set(pd, key);
          if (!seen) log[caps ? 'info' : 'warn']({ reader: pd.name, address: pd.address, capabilities: caps }, caps ? 'reader capabilities' : 'reader capabilities unknown (no osdp_PDCAP)');
          if (!seen) for (const w of warnings) log.warn({ reader: pd.name, address: pd.address }, w);
        },
        refused: (pd, why) => log.error({ reader: pd.name, address: pd.address }, `reader not used: ${why}`),
      };
      const buses = f.ports.map((p) => {
        const byAddress = new Map<number, ReaderConfig[]>();
        for (const rc of p.readers) byAddress.set(rc.address, [...(byAddress.get(rc.address) ?? []), rc]);
        const links: PdLink[] = [];
        const pdHeads: [PdLink, ReaderConfig[]][] = [];
        for (const [address, rcs] of byAddress) {
          const rc = rcs[0]!; // check and secure agree across heads (config.ts)
          const pd = new PdLink({
            address, crc: rc.check === 'crc', secure: rc.secure ? { scbk: cfg.keys.get(rc.id)!, install: rc.secure.install } : null,
            readInputs: rcs.some((x) => x.passageInput !== undefined), offlineAfter: p.offlineAfter, probeEvery: Math.min(1000, p.offlineAfter), commandTtl: 5000,
            heads: rcs.map((x) => x.reader),
          }, rcs.map((x) => x.id).join('+'), events);
          links.push(pd);
          pdHeads.push([pd, rcs]);
        }
        const bus = new Bus({ path: p.path, baud: p.baud, pollInterval: p.pollInterval, replyTimeout: p.replyTimeout, retries: p.retries, reopenMin: REOPEN_MIN_MS, reopenMax: REOPEN_MAX_MS }, links, log, o.openPort);
        for (const [pd, rcs] of pdHeads) {
          const hs = rcs.map((rc): DoorReader => ({ cfg: rc, pd, bus, port: p.path, lastGrant: null, inputs: null }));
          heads.set(pd, hs);
          readers.push(...hs);
          for (const rc of rcs) if (!rc.secure) log.warn({ reader: rc.id, port: p.path, address: rc.address }, 'reader in clear text: card numbers travel unprotected on the bus');
        }
        return bus;
      });
      const order = new Map(f.ports.flatMap((p) => p.readers).map((rc, i) => [rc, i]));
      readers.sort((a, b2) => order.get(a.cfg)! - order.get(b2.cfg)!);
      const b = new Bridge(cfg, metrics, store, link, local, uploader, buses, readers);
      link.onUp(() => uploader.kick());
      b.ops = await startOpsServer(f.http.host, f.http.port, { health: () => b.health(), metrics: () => b.metricsText() });
      link.start();
      for (const bus of buses) bus.start();
      b.pruneTimer = setInterval(() => { void store.prune(f.offline.journalKeep).catch(() => undefined); }, PRUNE_EVERY_MS);
      b.pruneTimer.unref();
      if (store.pendingCount) log.warn({ pending: store.pendingCount }, 'offline decisions waiting for the engine');
      return b;
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  health(): { ok: boolean; body: unknown } {
    const readers = this.readers.map((r) => ({
      id: r.cfg.id, port: r.port, address: r.cfg.address, reader: r.cfg.reader, online: r.pd.online, secure: r.pd.secure, policy: r.cfg.policy,
      ...(r.pd.identity ? { identity: r.pd.identity } : {}),
      capabilities: r.pd.capabilities,
      ...(r.pd.refusal ? { refused: r.pd.refusal } : {}),
      ...(r.pd.capWarnings.length ? { warnings: r.pd.capWarnings } : {}),
    }));
    const engine = this.link.state;
    const body = {
      live: !this.stopping,
      ready: engine === 'up' && readers.every((r) => r.online),
      engine,
      offlineQueue: this.store.pendingCount,
      ports: this.buses.map((b) => ({ path: b.settings.path, open: b.portOpen })),
      readers,
    };
    return { ok: !this.stopping, body };
  }

  metricsText(): string {
    const g = (name: string, help: string, samples: [string, number][], type: 'gauge' | 'counter' = 'gauge'): Gauge => ({ name, help, type, samples });
    const q = (s: string): string => s.replace(/[\\"\n]/g, '_');
    const bus = (k: keyof Bus['counters']): [string, number][] => this.buses.map((b) => [`port="${q(b.settings.path)}"`, b.counters[k]]);
    return renderMetrics(this.metrics, [
      g('apb_bridge_engine_link_up', '1 while the WebSocket to the engine is open', [['', this.link.up ? 1 : 0]]),
      g('apb_bridge_engine_reconnects_total', 'times the engine link was (re)established', [['', this.link.counters.connects]], 'counter'),
      g('apb_bridge_offline_queue', 'journal entries (offline decisions, passages) not yet acknowledged by the engine', [['', this.store.pendingCount]]),
      g('apb_bridge_link_queue', 'messages waiting on the engine link (queued or unanswered)', [['', this.link.queued]]),
      g('apb_bridge_readers_online', 'readers online', [['', this.readers.filter((r) => r.pd.online).length]]),
      g('apb_bridge_reader_online', '1 while the reader answers', this.readers.map((r) => [`reader="${q(r.cfg.id)}"`, r.pd.online ? 1 : 0])),
      g('apb_bridge_reader_secure', '1 while the reader talks over the secure channel; 0 = clear text (or not connected)', this.readers.map((r) => [`reader="${q(r.cfg.id)}",configured="${r.cfg.secure ? 'secure' : 'clear'}"`, r.pd.secure ? 1 : 0])),
      g('apb_bridge_reader_refused', '1 while the reader is not used because its capabilities refuse the configuration (secure channel asked of a reader without it)', this.readers.map((r) => [`reader="${q(r.cfg.id)}"`, r.pd.refusal ? 1 : 0])),
      g('apb_bridge_pd_capability', 'osdp_PDCAP compliance level of each function the PD reports', this.pds().flatMap(([port, pd]) => Object.entries(pd.capabilities ?? {}).map(([fn, c]): [string, number] => [`port="${q(port)}",address="${pd.address}",function="${fn}"`, c.compliance]))),
      g('apb_bridge_pd_capability_items', 'osdp_PDCAP number of items of each function (inputs, outputs, LEDs, reader heads, ...)', this.pds().flatMap(([port, pd]) => Object.entries(pd.capabilities ?? {}).map(([fn, c]): [string, number] => [`port="${q(port)}",address="${pd.address}",function="${fn}"`, c.items]))),
      g('apb_bridge_serial_port_open', '1 while the serial port is open', this.buses.map((b) => [`port="${q(b.settings.path)}"`, b.portOpen ? 1 : 0])),
      g('apb_bridge_serial_port_losses_total', 'times the serial port closed or disappeared while in use', bus('closes'), 'counter'),
      g('apb_bridge_serial_open_failures_total', 'failed attempts to open (or reopen) the serial port', bus('openFailures'), 'counter'),
      g('apb_bridge_osdp_timeouts_total', 'commands a reader did not answer in time', bus('timeouts'), 'counter'),
      g('apb_bridge_osdp_retries_total', 'commands sent again', bus('retries'), 'counter'),
      g('apb_bridge_osdp_bad_checks_total', 'frames with a wrong CRC or checksum', bus('badChecks'), 'counter'),
      g('apb_bridge_osdp_skipped_bytes_total', 'bytes that belonged to no valid frame', bus('skipped'), 'counter'),
    ]);
  }

  /** each PD once, with its port */
  private pds(): [string, PdLink][] { return this.buses.flatMap((b) => b.pds.map((pd): [string, PdLink] => [b.settings.path, pd])); }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.uploader.stop();
    await Promise.all(this.buses.map((b) => b.stop()));
    await this.link.stop();
    await this.ops?.close();
    await this.store.close();
  }
}
