/**
 * What happens at a door: a card read becomes a decision and the reader
 * shows it.
 *
 *   read ──▶ link up? ──yes──▶ badge to the engine ──decision within `deadline`──▶ show it
 *                 │                       └─ no answer in time, link lost, engine busy ─┐
 *                 └──no──────────────────────────────────────────────────────────────────┴─▶ reader policy
 *   policy deny | grant | local (the local core) ──▶ journal (committed) ──▶ show it ──▶ upload later
 *
 * Feedback: grant = LED green for `ledSeconds` (+ the output pulse); deny =
 * LED red + two 300 ms beeps; a decision taken offline adds one short beep
 * to a grant and a third beep to a deny (`feedback.offlineBeep`).
 * A passage input going active within the passage window after a grant at
 * that reader becomes a `passage` message (a grant taken offline needs none:
 * its upload already reports a passage).
 */
import type { Logger } from 'pino';
import { ApbError } from '../errors.js';
import { decodeCardRead } from '../adapters/osdp/replies.js';
import type { FormatTable } from '../adapters/wiegand/formats.js';
import type { Bus } from './acu/bus.js';
import type { PdLink, PlainReply } from './acu/pd-link.js';
import type { BridgeFile, ReaderConfig } from './config.js';
import type { EngineLink, Reply } from './link/engine-link.js';
import type { LocalDecider } from './offline/local.js';
import type { BridgeStore } from './offline/store.js';
import type { Uploader } from './offline/uploader.js';
import type { BridgeMetrics } from './ops/metrics.js';
import { CMD, REPLY } from './osdp/codes.js';
import { buzData, COLOR_GREEN, COLOR_RED, ledData, outPulseData, parseInputs } from './osdp/payloads.js';

/** engine refusals that say "not now" rather than "no": the door falls back on its policy */
const TRANSIENT = new Set(['rate_limited', 'storage_unavailable', 'not_ready']);
const DEFAULT_PASSAGE_WINDOW = 10_000;

export interface DoorReader {
  cfg: ReaderConfig;
  pd: PdLink;
  bus: Bus;
  port: string;
  /** the last grant shown here, waiting for its passage */
  lastGrant: { cred: string; at: number; online: boolean } | null;
  inputs: boolean[] | null;
}

export interface Shown { grant: boolean; reason: string; source: 'engine' | 'offline'; id?: number }

export class Door {
  constructor(private readonly d: {
    file: BridgeFile; store: BridgeStore; link: EngineLink; local: LocalDecider | null; uploader: Uploader;
    metrics: BridgeMetrics; log: Logger; formats: FormatTable;
  }) {}

  /** a reply from a reader that is not link bookkeeping: a card read or an input change */
  onReply(r: DoorReader, rep: PlainReply, at: number): void {
    if (rep.code === REPLY.ISTATR) { this.onInputs(r, rep.data, at); return; }
    if (rep.code !== REPLY.RAW && rep.code !== REPLY.FMT && rep.code !== REPLY.KEYPAD) {
      this.d.log.debug({ reader: r.cfg.id, code: rep.code }, 'reply ignored');
      return;
    }
    let cred: string;
    let number: number;
    try {
      const read = decodeCardRead(rep, this.d.formats);
      cred = read.cred; number = read.reader;
      this.d.metrics.reads.inc({ reader: r.cfg.id, kind: read.kind });
    } catch (e) {
      this.d.metrics.reads.inc({ reader: r.cfg.id, kind: 'bad' });
      this.d.log.warn({ reader: r.cfg.id, code: (e as ApbError).code, err: (e as Error).message }, 'unreadable card read: shown as denied');
      this.show(r, false, false, at);
      return;
    }
    if (number !== r.cfg.reader) {
      this.d.log.warn({ reader: r.cfg.id, readerNumber: number, configured: r.cfg.reader }, 'card read from another reader number of this PD: shown as denied');
      this.show(r, false, false, at);
      return;
    }
    void this.decide(r, cred, at).catch((e) => {
      // the store failed before anything was shown: the person gets a red light, never silence
      this.d.log.error({ reader: r.cfg.id, err: (e as Error).message }, 'decision failed: shown as denied');
      this.show(r, false, true, at);
    });
  }

  onInputs(r: DoorReader, data: Uint8Array, at: number, baseline = false): void {
    let inputs: boolean[];
    try { inputs = parseInputs(data); } catch (e) { this.d.log.warn({ reader: r.cfg.id, err: (e as Error).message }, 'bad input status'); return; }
    const n = r.cfg.passageInput;
    const before = r.inputs;
    r.inputs = inputs;
    if (baseline || n === undefined || !inputs[n] || (before?.[n] ?? false)) return;
    this.onPassage(r, at);
  }

  private passageWindow(reader: string): number {
    const i = this.d.local?.site.readerIndex.get(reader);
    const ms = i === undefined ? 0 : this.d.local!.site.readerPassageMs[i]!;
    return ms > 0 ? ms : DEFAULT_PASSAGE_WINDOW;
  }

  private onPassage(r: DoorReader, at: number): void {
    const g = r.lastGrant;
    if (!g || at - g.at > this.passageWindow(r.cfg.id)) {
      this.d.metrics.passages.inc({ reader: r.cfg.id, grant: 'none' });
      this.d.log.info({ reader: r.cfg.id }, 'passage with no grant waiting (tailgating or a free exit)');
      return;
    }
    r.lastGrant = null;
    this.d.metrics.passages.inc({ reader: r.cfg.id, grant: g.online ? 'engine' : 'offline' });
    this.d.local?.passage(g.cred, r.cfg.id, at);
    if (!g.online) return; // the offline upload (granted: true) reports the passage itself
    void (async () => {
      const id = await this.d.store.nextId();
      const rep = await this.d.link.send({ t: 'passage', id, cred: g.cred, reader: r.cfg.id, ts: at }, true);
      if (rep.t !== 'ack') this.d.log.warn({ reader: r.cfg.id, id, reply: rep }, 'the engine refused a passage');
    })().catch((e) => this.d.log.warn({ reader: r.cfg.id, err: (e as Error).message }, 'passage not delivered'));
  }

  /** asks the engine, falls back on the policy; resolves with what the door showed */
  async decide(r: DoorReader, cred: string, readAt: number): Promise<Shown> {
    const { link, store, log } = this.d;
    const deadline = this.d.file.engine.deadline;
    if (link.up) {
      const id = await store.nextId();
      const sent = link.send({ t: 'badge', id, cred, reader: r.cfg.id, ts: readAt });
      sent.catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        sent.then((rep) => ({ rep }), (err: Error) => ({ err })),
        new Promise<{ late: true }>((res) => { timer = setTimeout(() => res({ late: true }), Math.max(0, deadline - (Date.now() - readAt))); }),
      ]);
      clearTimeout(timer);
      if ('rep' in outcome) {
        const rep = outcome.rep;
        if (rep.t === 'decision') {
          const grant = rep.grant === true;
          this.engineDecided(r, cred, grant, Date.now());
          this.show(r, grant, false, readAt);
          this.d.metrics.decisions.inc({ source: 'engine', result: grant ? 'grant' : 'deny' });
          log.info({ reader: r.cfg.id, cred, id, grant, reason: rep.reason, ms: Date.now() - readAt }, 'decision');
          return { grant, reason: String(rep.reason), source: 'engine', id };
        }
        if (rep.t === 'error' && !TRANSIENT.has(String(rep.code))) {
          // the engine answered "no such thing" (a reader it does not give this controller, a bad credential): that is a deny
          this.show(r, false, false, readAt);
          this.d.metrics.decisions.inc({ source: 'engine', result: 'deny' });
          log.error({ reader: r.cfg.id, cred, id, code: rep.code, message: rep.message }, 'the engine refused the badge: shown as denied');
          return { grant: false, reason: String(rep.code), source: 'engine', id };
        }
        log.warn({ reader: r.cfg.id, id, reply: rep.t === 'error' ? rep.code : rep.t }, 'no usable answer from the engine: offline policy');
      } else if ('err' in outcome) {
        log.warn({ reader: r.cfg.id, id, err: outcome.err.message }, 'engine link lost during the badge: offline policy');
      } else {
        const shown = await this.offline(r, cred, readAt);
        this.watchLate(r, cred, id, sent, shown.grant);
        return shown;
      }
    }
    return this.offline(r, cred, readAt);
  }

  private engineDecided(r: DoorReader, cred: string, grant: boolean, at: number): void {
    if (!grant) return;
    r.lastGrant = { cred, at, online: true };
    this.d.local?.granted(cred, r.cfg.id, at);
  }

  /** an answer after the deadline: the door has acted already; say whether it agreed */
  private watchLate(r: DoorReader, cred: string, id: number, sent: Promise<Reply>, door: boolean): void {
    sent.then((rep) => {
      if (rep.t !== 'decision') return;
      const agreed = door === (rep.grant === true);
      this.d.metrics.late.inc({ agreed: agreed ? 'yes' : 'no' });
      this.d.log[agreed ? 'info' : 'warn']({ reader: r.cfg.id, cred, id, engine: rep.grant, door },
        agreed ? 'late engine decision agreed with the door' : 'late engine decision differs from what the door did (the offline upload tells the engine)');
    }, () => undefined);
  }

  private async offline(r: DoorReader, cred: string, readAt: number): Promise<Shown> {
    const { store, log } = this.d;
    const policy = r.cfg.policy;
    const now = Date.now();
    let grant: boolean, reason: string;
    if (policy === 'local' && this.d.local) {
      const dcs = this.d.local.decide(cred, r.cfg.id, now);
      grant = dcs.grant; reason = dcs.reason;
    } else { grant = policy === 'grant'; reason = `policy_${policy}`; }
    const id = await store.nextId();
    try {
      await store.journal({ id, cred, reader: r.cfg.id, ts: now, granted: grant, policy, reason });
    } catch (e) {
      // never let a door open that the engine will not hear about
      log.error({ reader: r.cfg.id, cred, err: (e as Error).message }, 'cannot journal an offline decision: shown as denied');
      this.show(r, false, true, readAt);
      this.d.metrics.decisions.inc({ source: 'offline', result: 'deny', policy: 'journal_failed' });
      return { grant: false, reason: 'journal_failed', source: 'offline' };
    }
    if (grant) {
      r.lastGrant = { cred, at: now, online: false };
      if (policy !== 'local') this.d.local?.granted(cred, r.cfg.id, now);
    }
    this.show(r, grant, true, readAt);
    this.d.metrics.decisions.inc({ source: 'offline', result: grant ? 'grant' : 'deny', policy });
    log.warn({ reader: r.cfg.id, cred, id, grant, policy, reason }, 'offline decision');
    this.d.uploader.kick();
    return { grant, reason, source: 'offline', id };
  }

  /** LED (+ buzzer, + output) on the reader, ahead of its next poll */
  show(r: DoorReader, grant: boolean, offline: boolean, readAt: number): void {
    const now = Date.now();
    const f = this.d.file.feedback;
    const beep = offline && f.offlineBeep;
    r.pd.enqueue(CMD.LED, ledData(r.cfg.reader, grant ? COLOR_GREEN : COLOR_RED, f.ledSeconds), now, readAt);
    if (grant) {
      if (r.cfg.output) r.pd.enqueue(CMD.OUT, outPulseData(r.cfg.output.number, r.cfg.output.pulse), now);
      if (beep) r.pd.enqueue(CMD.BUZ, buzData(r.cfg.reader, 1, 1, 1), now);
    } else r.pd.enqueue(CMD.BUZ, buzData(r.cfg.reader, 3, 2, beep ? 3 : 2), now);
    r.bus.poke();
  }
}
