/**
 * The server's UHPPOTE UDP listener across configuration swaps: started from
 * the site's `uhppote: {host, port}`, restarted when a reload changes them,
 * stopped when a reload removes the section. Datagrams become the
 * controller's offline messages through the hub (replies are discarded:
 * UHPPOTE does not expect one).
 */
import { ApbError } from '../errors.js';
import type { SiteConfig } from '../config/types.js';
import { startUhppoteListener, type UhppoteListener } from '../adapters/uhppote-listener.js';
import type { Hub } from './hub.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

type Bind = NonNullable<SiteConfig['uhppote']>;

export class UhppoteService {
  private listener: UhppoteListener | undefined;
  private bound: Bind | undefined;
  /** swaps run one after another, in the order the reloads happened */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly deps: { hub: () => Hub; metrics: Metrics; log: Logger }) {}

  /** The UDP port bound (for tests and logs), undefined when not listening. */
  get port(): number | undefined { return this.listener?.port; }

  /** Start-up: a port that cannot be bound refuses the start (address_in_use). */
  async start(want: Bind | undefined): Promise<void> {
    if (!want) return;
    this.listener = await this.bind(want);
    this.bound = want;
  }

  /** After a configuration swap: restart only if host or port changed. Resolves when done. */
  reconfigure(want: Bind | undefined): Promise<void> {
    this.queue = this.queue.then(() => this.swap(want));
    return this.queue;
  }

  private async swap(want: Bind | undefined): Promise<void> {
    if (this.closed || (want?.host === this.bound?.host && want?.port === this.bound?.port)) return;
    const { log } = this.deps;
    const previous = this.bound;
    await this.listener?.close();
    this.listener = undefined; this.bound = undefined;
    if (!want) { log.info({ previous }, 'UHPPOTE listener stopped (removed from the configuration)'); return; }
    try {
      this.listener = await this.bind(want);
      this.bound = want;
      log.info({ host: want.host, port: this.listener.port, previous }, 'UHPPOTE listener restarted');
    } catch (e) {
      // the new configuration is in force; keep receiving on the old address rather than on none
      log.error({ err: (e as Error).message, host: want.host, port: want.port }, 'UHPPOTE listener cannot bind the new address; keeping the previous one');
      if (previous) {
        try { this.listener = await this.bind(previous); this.bound = previous; } catch (e2) {
          log.error({ err: (e2 as Error).message }, 'UHPPOTE listener cannot bind the previous address either: no UHPPOTE events are received');
        }
      }
    }
  }

  private async bind(b: Bind): Promise<UhppoteListener> {
    const { hub, metrics, log } = this.deps;
    try {
      return await startUhppoteListener({
        host: b.host, port: b.port, site: () => hub().site,
        onEvent: (controller, msg) => {
          metrics.uhppoteEvents++;
          const h = hub();
          const ctx = h.controller(controller);
          if (!ctx) { log.warn({ controller }, 'UHPPOTE event for an unknown controller'); return; }
          const r = h.handle(ctx, msg);
          if (!Array.isArray(r)) r.catch((e) => log.warn({ err: e }, 'UHPPOTE event failed'));
        },
        onMalformed: (err, from) => { metrics.uhppoteMalformed++; log.debug({ from, code: err.code, msg: err.message }, 'malformed UHPPOTE packet'); },
        // debug, not warn: a flood of spoofed packets must not flood the log; the metric counts them
        onRejected: (serial, from) => { metrics.uhppoteRejected++; log.debug({ serial, from }, 'UHPPOTE packet from a source other than the controller\'s address: dropped'); },
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ApbError(code === 'EADDRINUSE' ? 'address_in_use' : 'internal', `UHPPOTE listener: cannot bind udp ${b.host}:${b.port}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
    await this.listener?.close();
    this.listener = undefined;
  }
}
