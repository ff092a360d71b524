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
 * that reader becomes a `passage` message, journaled first and sent by the
 * uploader (a grant taken offline needs none: its upload already reports a
 * passage).
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

  /**
   * A reply from a PD that is not link bookkeeping: a card read or an input
   * change. `heads` are the configured reader heads of that PD (most PDs
   * have one); a read goes to the head whose reader number it carries, an
   * input change to every head (each watches its own passage input).
   */
  onReply(heads: DoorReader[], rep: PlainReply, at: number): void {
    if (rep.code === REPLY.ISTATR) { for (const h of heads) this.onInputs(h, rep.data, at); return; }
    const first = heads[0]!;
    if (rep.code !== REPLY.RAW && rep.code !== REPLY.FMT && rep.code !== REPLY.KEYPAD) {
      this.d.log.debug({ reader: first.cfg.id, code: rep.code }, 'reply ignored');
      return;
    }
    const number = rep.data[0] ?? 0;
    const r = heads.find((h) => h.cfg.reader === number);
    if (!r) {
      this.d.metrics.reads.inc({ reader: first.cfg.id, kind: 'unknown_head' });
      this.d.log.warn({ reader: first.cfg.id, address: first.cfg.address, readerNumber: number, configured: heads.map((h) => h.cfg.reader) }, 'card read from a reader number of this PD that the bridge file does not map: shown as denied');
      this.showAt(first.pd, first.bus, number, false, false, at, undefined);
      return;
    }
    let cred: string;
    try {
      const read = decodeCardRead(rep, this.d.formats);
      cred = read.cred;
      this.d.metrics.reads.inc({ reader: r.cfg.id, kind: read.kind });
    } catch (e) {
      this.d.metrics.reads.inc({ reader: r.cfg.id, kind: 'bad' });
      this.d.log.warn({ reader: r.cfg.id, code: (e as ApbError).code, err: (e as Error).message }, 'unreadable card read: shown as denied');
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
    // journaled (committed) before it is sent, and sent by the uploader in id order with the offline
    // decisions: a passage survives an engine outage and a bridge crash, and reaches the engine once
    void (async () => {
      const id = await this.d.store.nextId();
      await this.d.store.journal({ id, kind: 'passage', cred: g.cred, reader: r.cfg.id, ts: at, granted: true, policy: r.cfg.policy, reason: 'passage' });
      this.d.uploader.kick();
    })().catch((e) => this.d.log.error({ reader: r.cfg.id, cred: g.cred, err: (e as Error).message }, 'cannot journal a passage: the engine will not hear of it'));
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

  /** LED (+ buzzer, + output) on the reader head, ahead of its next poll */
  show(r: DoorReader, grant: boolean, offline: boolean, readAt: number): void {
    this.showAt(r.pd, r.bus, r.cfg.reader, grant, offline, readAt, r.cfg.output);
  }

  private showAt(pd: PdLink, bus: Bus, head: number, grant: boolean, offline: boolean, readAt: number, output: ReaderConfig['output']): void {
    const now = Date.now();
    const f = this.d.file.feedback;
    const beep = offline && f.offlineBeep;
    pd.enqueue(CMD.LED, ledData(head, grant ? COLOR_GREEN : COLOR_RED, f.ledSeconds), now, readAt);
    if (grant) {
      if (output) pd.enqueue(CMD.OUT, outPulseData(output.number, output.pulse), now);
      if (beep) pd.enqueue(CMD.BUZ, buzData(head, 1, 1, 1), now);
    } else pd.enqueue(CMD.BUZ, buzData(head, 3, 2, beep ? 3 : 2), now);
    bus.poke();
  }
}
