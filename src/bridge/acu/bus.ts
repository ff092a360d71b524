/**
 * One RS-485 bus: the serial port, and the CP's transaction loop over the
 * PDs on it. OSDP is half duplex and the CP speaks first: one command, one
 * reply (or a timeout), then the next command. Each turn goes to:
 *   1. a reader with a door command queued (LED, buzzer, output): feedback first;
 *   2. else the next reader (round robin) whose poll is due (each reader
 *      keeps a beat of one poll per `pollInterval`) or, if offline, whose
 *      probe is due.
 * A command unanswered after `replyTimeout` ms (counted from when its last
 * byte has left at the baud rate) is resent as is, `retries` times; a probe
 * of an offline reader is sent once. A write the OS has not taken within
 * WRITE_STUCK_MS means a hung device: the port is dropped and reopened.
 * Frames without the reply bit (the adapter echoing our own commands, or a
 * second CP on the bus) and replies that match no command are counted and
 * dropped.
 * If the port fails or disappears (USB adapter unplugged, device gone) its
 * readers go offline at once, one error is logged, and the port is reopened
 * after reopenMin ms, doubling up to reopenMax (with jitter), quietly, until
 * it is back; other buses are not affected.
 */
import type { Logger } from 'pino';
import { Deframer, decodeFrame, type Frame } from '../osdp/frame.js';
import { openSerial, type Transport } from './transport.js';
import type { PdLink, Tx } from './pd-link.js';

/** a write not handed to the OS after this long: the device hangs */
const WRITE_STUCK_MS = 2000;
/** Bus.stop() waits this long for the port to close */
const CLOSE_WAIT_MS = 2000;

/** ms the bytes take on the line: 10 bits per byte (start, 8 data, stop), rounded up */
export const wireMs = (bytes: number, baud: number): number => Math.ceil((bytes * 10 * 1000) / baud);

export interface BusSettings { path: string; baud: number; pollInterval: number; replyTimeout: number; retries: number; reopenMin: number; reopenMax: number }

export interface BusCounters { tx: number; rx: number; timeouts: number; retries: number; echoes: number; stray: number; badChecks: number; skipped: number; malformed: number; opens: number; closes: number; openFailures: number }

export class Bus {
  readonly counters: BusCounters = { tx: 0, rx: 0, timeouts: 0, retries: 0, echoes: 0, stray: 0, badChecks: 0, skipped: 0, malformed: 0, opens: 0, closes: 0, openFailures: 0 };
  private transport: Transport | null = null;
  private readonly deframer = new Deframer();
  private waiter: { address: number; sqn: number; resolve(f: Frame | null): void } | null = null;
  private wake: (() => void) | null = null;
  private stopping = false;
  private loopDone: Promise<void> | null = null;
  private rr = 0;
  portOpen = false;

  constructor(readonly settings: BusSettings, readonly pds: PdLink[], private readonly log: Logger,
    private readonly open: (path: string, baud: number) => Promise<Transport> = openSerial) {}

  start(): void { this.loopDone = this.loop(); }

  /** a door command was queued: end an idle wait at once */
  poke(): void { const w = this.wake; this.wake = null; w?.(); }

  async stop(): Promise<void> {
    this.stopping = true;
    this.poke();
    this.waiter?.resolve(null);
    await this.loopDone;
    const t = this.transport;
    this.transport = null;
    this.portOpen = false;
    if (t) await Promise.race([t.close(), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (!this.transport && !(await this.openPort())) { await this.idle(this.reopenDelay()); continue; }
      const now = Date.now();
      const pd = this.pick(now);
      if (!pd) {
        let due = Infinity;
        for (const p of this.pds) due = Math.min(due, p.dueAt());
        await this.idle(Math.max(1, Math.min(due - now, 1000)));
        continue;
      }
      const tx = pd.next(now, this.settings.pollInterval);
      const fr = await this.transact(pd, tx);
      if (this.stopping) break;
      if (!this.transport) continue; // the port went away mid-transaction
      if (fr) pd.onReply(tx, fr, Date.now()); else pd.onSilence(tx, Date.now());
    }
  }

  /** reopenMin·2^n ms, capped at reopenMax, drawn from the upper half (jitter) */
  private reopenDelay(): number {
    const cap = Math.min(this.settings.reopenMax, this.settings.reopenMin * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(cap / 2 + Math.random() * (cap / 2));
  }
  /** consecutive failed opens */
  private failures = 0;
  /** when the port was lost (for the log line of its return) */
  private lostAt: number | null = null;

  private async openPort(): Promise<boolean> {
    try {
      const t = await this.open(this.settings.path, this.settings.baud);
      t.onData((chunk) => this.onData(chunk));
      t.onClose((err) => this.lose(t, err?.message ?? null));
      this.transport = t;
      this.portOpen = true;
      this.counters.opens++;
      this.failures = 0;
      if (this.lostAt !== null) this.log.warn({ port: this.settings.path, afterMs: Date.now() - this.lostAt }, 'serial port back');
      else this.log.info({ port: this.settings.path, baud: this.settings.baud }, 'serial port open');
      this.lostAt = null;
      return true;
    } catch (e) {
      this.counters.openFailures++;
      // once per outage at error level (unless the loss itself was logged), then quietly
      this.log[this.failures === 0 ? 'error' : 'debug']({ port: this.settings.path, err: (e as Error).message }, 'cannot open serial port; retrying');
      if (this.lostAt === null) this.lostAt = Date.now();
      this.failures++;
      return false;
    }
  }

  /** the port closed or hangs: its readers go offline, it is reopened (one error line per outage) */
  private lose(t: Transport, why: string | null): void {
    if (this.transport !== t) return;
    this.transport = null;
    this.portOpen = false;
    this.counters.closes++;
    this.waiter?.resolve(null);
    this.deframer.reset();
    void t.close().catch(() => undefined);
    if (this.stopping) return;
    this.log.error({ port: this.settings.path, err: why }, 'serial port lost; its readers are offline, reopening');
    this.lostAt = Date.now();
    this.failures = 1;
    for (const p of this.pds) p.portLost(Date.now());
  }

  /** door commands first, then the round robin of due polls and probes */
  private pick(now: number): PdLink | null {
    const n = this.pds.length;
    for (let k = 0; k < n; k++) {
      const p = this.pds[(this.rr + k) % n]!;
      if (p.hasWork()) { this.rr = (this.rr + k + 1) % n; return p; }
    }
    for (let k = 0; k < n; k++) {
      const p = this.pds[(this.rr + k) % n]!;
      if (p.dueAt() <= now) { this.rr = (this.rr + k + 1) % n; return p; }
    }
    return null;
  }

  private idle(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve(); // stop() may have poked while no wait was armed
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); resolve(); };
    });
  }

  private async transact(pd: PdLink, tx: Tx): Promise<Frame | null> {
    const attempts = tx.probe ? 1 : 1 + this.settings.retries;
    for (let a = 0; a < attempts && !this.stopping; a++) {
      if (a > 0) this.counters.retries++;
      const t = this.transport;
      if (!t) return null;
      const reply = new Promise<Frame | null>((resolve) => { this.waiter = { address: pd.address, sqn: tx.sqn, resolve }; });
      let stuck: NodeJS.Timeout | undefined;
      const written = await Promise.race([
        t.write(tx.bytes).then(() => 'ok' as const, (e: Error) => e),
        new Promise<'stuck'>((r) => { stuck = setTimeout(() => r('stuck'), WRITE_STUCK_MS); }),
      ]);
      clearTimeout(stuck);
      if (written !== 'ok') {
        this.waiter = null;
        if (written === 'stuck') this.lose(t, `a write was not taken within ${WRITE_STUCK_MS} ms (device hangs)`);
        // a vanished device fails the write and then closes: that close is logged, not each write
        else if (this.transport === t) this.log.debug({ port: this.settings.path, err: written.message }, 'serial write failed');
        return null;
      }
      this.counters.tx++;
      let timer: NodeJS.Timeout | undefined;
      const wait = this.settings.replyTimeout + wireMs(tx.bytes.length, this.settings.baud); // counted from the last byte on the line
      const fr = await Promise.race([reply, new Promise<null>((r) => { timer = setTimeout(() => r(null), wait); })]);
      clearTimeout(timer);
      this.waiter = null;
      if (fr) return fr;
      this.counters.timeouts++;
      this.deframer.reset(); // a partial frame left now can never complete
    }
    return null;
  }

  private onData(chunk: Uint8Array): void {
    for (const raw of this.deframer.push(chunk)) {
      let fr: Frame;
      try { fr = decodeFrame(raw); } catch { this.counters.malformed++; continue; }
      if (!fr.reply) { this.counters.echoes++; continue; }
      this.counters.rx++;
      const w = this.waiter;
      if (w && fr.address === w.address && fr.sqn === w.sqn) { this.waiter = null; w.resolve(fr); } else this.counters.stray++;
    }
    this.counters.badChecks = this.deframer.badChecks;
    this.counters.skipped = this.deframer.skipped;
  }
}
