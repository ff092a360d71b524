/**
 * The CP's view of one PD (one reader address on a bus): what to send next,
 * and what each reply means. The bus (bus.ts) owns the wire and the timing
 * of transactions; this class owns the OSDP state of the reader.
 *
 *   down ──POLL sqn 0──▶ id ──osdp_ID──▶ cap ──osdp_CAP──▶ [chlng ─▶ scrypt ─▶ (keyset ─▶ chlng ─▶ scrypt)] ─▶ [istat] ─▶ online
 *     ▲                                                       secure readers only        install mode    passage input
 *     └── no valid reply for `offlineAfter` ms (reader offline), a failed handshake, a broken MAC chain,
 *         a configuration the reader's capabilities refuse (secure channel asked of a reader without it)
 *
 * Sequence numbers: 0 restarts the PD (and drops its secure session), then
 * 1, 2, 3, 1, … advancing on every valid reply; a retry resends the very
 * same bytes (same sequence number, same MAC), so the PD either answers it
 * for the first time or repeats its last reply.
 */
import { ApbError } from '../../errors.js';
import { CMD, NAK, REPLY, codeName } from '../osdp/codes.js';
import { CpHandshake, type SecureSession } from '../osdp/channel.js';
import { encodeFrame, nextSqn, type Frame } from '../osdp/frame.js';
import { keysetData, nakText, parseInputs, parsePdid, type PdIdentity } from '../osdp/payloads.js';
import { acceptsDefaultKey, capRequest, parsePdcap, readerHeads, supportsSecureChannel, type Capabilities } from '../osdp/capabilities.js';

export interface PdSettings {
  address: number;
  crc: boolean;
  /** null: clear text */
  secure: { scbk: Uint8Array; install: boolean } | null;
  /** ask the input states once online (a passage input is configured) */
  readInputs: boolean;
  /** no valid reply for this long: the reader is offline */
  offlineAfter: number;
  /** while offline, one probe this often */
  probeEvery: number;
  /** queued door commands older than this are dropped (the person has gone) */
  commandTtl: number;
  /** the reader numbers (heads) the configuration maps on this PD, checked against its capabilities */
  heads?: number[];
}

/** a reply's code and its data in clear (decrypted when it came under the secure channel) */
export interface PlainReply { address: number; reply: true; sqn: number; crc: boolean; code: number; data: Uint8Array }

export interface PdEvents {
  /** a reply that is not part of the link's own bookkeeping: card reads, input changes, NAKs to door commands */
  reply(pd: PdLink, r: PlainReply, at: number): void;
  /** the reader came online or went offline */
  state(pd: PdLink, online: boolean, why: string): void;
  /** a door command was acknowledged (for the card-to-LED latency) */
  acked(pd: PdLink, cmd: QueuedCommand, at: number): void;
  identity(pd: PdLink, id: PdIdentity): void;
  /** something worth a warning: handshake failures, NAKs, MAC errors */
  problem(pd: PdLink, what: string): void;
  /** the baseline of the inputs (osdp_ISTAT answered while connecting) */
  inputs(pd: PdLink, inputs: boolean[]): void;
  /** install mode: the reader accepted the configured SCBK */
  keySet(pd: PdLink): void;
  /** osdp_PDCAP parsed (null: the reader does not answer osdp_CAP); `warnings` are mismatches the link lives with */
  capabilities(pd: PdLink, caps: Capabilities | null, warnings: string[]): void;
  /** the reader's capabilities refuse the configuration: it is not used until that changes (called once per new reason) */
  refused(pd: PdLink, why: string): void;
}

export interface QueuedCommand { code: number; data: Uint8Array; queuedAt: number; /** card read instant, for the latency histogram */ readAt?: number }

export interface Tx { bytes: Uint8Array; sqn: number; code: number; probe: boolean; cmd?: QueuedCommand }

type Phase = 'down' | 'id' | 'cap' | 'chlng' | 'scrypt' | 'keyset' | 'istat' | 'online';

export class PdLink {
  phase: Phase = 'down';
  /** true once connected (and secured, if configured) until `offlineAfter` of silence */
  online = false;
  private sqn = 0;
  private session: SecureSession | null = null;
  private handshake: CpHandshake | null = null;
  /** install mode: the handshake in progress uses SCBK-D */
  private usingDefaultKey = false;
  private lastReplyAt = -Infinity;
  private nextPollAt = 0;
  private nextProbeAt = 0;
  private queue: QueuedCommand[] = [];
  identity: PdIdentity | null = null;
  /** from osdp_PDCAP at the last discovery (null: not asked yet, or not answered) */
  capabilities: Capabilities | null = null;
  /** why the configuration is refused by the reader's capabilities, or null */
  refusal: string | null = null;
  /** what the capabilities say that does not stop the reader (logged, on /healthz) */
  capWarnings: string[] = [];

  constructor(readonly settings: PdSettings, readonly name: string, private readonly ev: PdEvents) {}

  get secure(): boolean { return this.session !== null; }
  get address(): number { return this.settings.address; }
  get queued(): number { return this.queue.length; }

  /** a door command (LED, BUZ, OUT), sent before the next poll */
  enqueue(code: number, data: Uint8Array, now: number, readAt?: number): void {
    this.queue.push(readAt === undefined ? { code, data, queuedAt: now } : { code, data, queuedAt: now, readAt });
  }

  /** when this PD wants the bus next (Infinity: not before something is queued) */
  dueAt(): number {
    if (this.phase === 'down') return this.nextProbeAt;
    if (this.phase !== 'online') return 0;
    return this.queue.length ? 0 : this.nextPollAt;
  }

  hasWork(): boolean { return this.phase === 'online' && this.queue.length > 0; }

  /** the next transaction for this PD */
  next(now: number, pollInterval: number): Tx {
    if (this.phase === 'down') {
      this.sqn = 0;
      this.session = null;
      return { bytes: encodeFrame({ address: this.address, sqn: 0, crc: this.settings.crc, code: CMD.POLL }), sqn: 0, code: CMD.POLL, probe: true };
    }
    switch (this.phase) {
      case 'id': return this.clear(CMD.ID, Uint8Array.of(0));
      case 'cap': return this.clear(CMD.CAP, capRequest());
      case 'chlng': {
        const c = this.handshake!.challenge();
        return this.clear(c.code, c.data, c.scb);
      }
      case 'scrypt': {
        const s = this.pendingScrypt!;
        return this.clear(s.code, s.data, s.scb);
      }
      case 'keyset': return this.cmd(CMD.KEYSET, keysetData(this.settings.secure!.scbk));
      case 'istat': return this.cmd(CMD.ISTAT, new Uint8Array(0));
      default: break;
    }
    while (this.queue.length && now - this.queue[0]!.queuedAt > this.settings.commandTtl) {
      const gone = this.queue.shift()!;
      this.ev.problem(this, `dropped ${codeName(gone.code, false)} queued ${now - gone.queuedAt} ms ago (reader busy or reconnecting)`);
    }
    const q = this.queue[0];
    if (q) return { ...this.cmd(q.code, q.data), cmd: q }; // door commands do not move the poll schedule
    // polls keep their own beat (due + interval), so timer lateness does not add up and the
    // reader is polled `pollInterval` apart on average; a reader more than one interval late starts over
    this.nextPollAt = this.nextPollAt + pollInterval > now ? this.nextPollAt + pollInterval : now + pollInterval;
    return this.cmd(CMD.POLL, new Uint8Array(0));
  }

  private pendingScrypt: { code: number; scb: Uint8Array; data: Uint8Array } | null = null;

  private clear(code: number, data: Uint8Array, scb?: Uint8Array): Tx {
    return { bytes: encodeFrame({ address: this.address, sqn: this.sqn, crc: this.settings.crc, code, data, scb: scb ?? null }), sqn: this.sqn, code, probe: false };
  }

  private cmd(code: number, data: Uint8Array): Tx {
    if (!this.session) return this.clear(code, data);
    return { bytes: this.session.wrap({ address: this.address, sqn: this.sqn, crc: this.settings.crc, code, data }), sqn: this.sqn, code, probe: false };
  }

  /** a frame from this PD answering `tx` (the bus matched address and sequence number) */
  onReply(tx: Tx, fr: Frame, now: number): void {
    this.lastReplyAt = now;
    let data: Uint8Array;
    try {
      data = this.openReply(fr);
    } catch (e) {
      this.restart(now, (e as Error).message);
      return;
    }
    if (fr.code === REPLY.BUSY) return; // same command again, same sequence number
    this.sqn = nextSqn(tx.sqn);
    const r: PlainReply = { address: fr.address, reply: true, sqn: fr.sqn, crc: fr.crc, code: fr.code, data };
    try {
      this.step(tx, r, now);
    } catch (e) {
      this.restart(now, (e as Error).message);
    }
  }

  /** the reply's data in clear; throws when the secure channel is broken */
  private openReply(fr: Frame): Uint8Array {
    if (this.session) {
      if (fr.scb) return this.session.unwrap(fr);
      if (fr.code === REPLY.NAK) throw new ApbError('bad_osdp', `reader answered in clear text inside the secure session: ${nakText(fr.data)}`);
      throw new ApbError('bad_osdp', `reader answered ${codeName(fr.code, true)} in clear text inside the secure session`);
    }
    return fr.data;
  }

  private step(tx: Tx, r: PlainReply, now: number): void {
    switch (this.phase) {
      case 'down':
        this.phase = 'id';
        if (r.code !== REPLY.ACK) this.ev.reply(this, r, now); // a reader may answer the first poll with a buffered read
        return;
      case 'id':
        if (r.code === REPLY.PDID) { try { this.identity = parsePdid(r.data); this.ev.identity(this, this.identity); } catch { /* identity is informative only */ } }
        this.phase = 'cap';
        return;
      case 'cap': {
        let caps: Capabilities | null = null;
        if (r.code === REPLY.PDCAP) {
          try { caps = parsePdcap(r.data); } catch (e) { this.ev.problem(this, (e as Error).message); }
        } else this.ev.problem(this, `reader answered osdp_CAP with ${r.code === REPLY.NAK ? nakText(r.data) : codeName(r.code, true)}: capabilities unknown`);
        this.capabilities = caps;
        if (!this.checkCapabilities(now, caps)) return;
        this.afterConnect(now);
        return;
      }
      case 'chlng':
        if (r.code === REPLY.NAK) { this.handshakeFailed(now, `reader refused osdp_CHLNG: ${nakText(r.data)}`); return; }
        try {
          this.pendingScrypt = this.handshake!.onCcrypt({ ...r, scb: null, mac: null, macInput: new Uint8Array(0) });
        } catch (e) { this.handshakeFailed(now, (e as Error).message); return; }
        this.phase = 'scrypt';
        return;
      case 'scrypt':
        if (r.code === REPLY.NAK) { this.handshakeFailed(now, `reader refused osdp_SCRYPT: ${nakText(r.data)}`); return; }
        try {
          this.session = this.handshake!.onRmacI({ ...r, scb: null, mac: null, macInput: new Uint8Array(0) });
        } catch (e) { this.handshakeFailed(now, (e as Error).message); return; }
        this.handshake = null;
        this.pendingScrypt = null;
        if (this.usingDefaultKey) { this.phase = 'keyset'; return; }
        this.connected(now);
        return;
      case 'keyset':
        if (r.code !== REPLY.ACK) throw new ApbError('bad_osdp', `reader refused osdp_KEYSET: ${r.code === REPLY.NAK ? nakText(r.data) : codeName(r.code, true)}`);
        this.ev.keySet(this);
        // the reader now holds the configured key: a new session with it
        this.session = null;
        this.usingDefaultKey = false;
        this.handshake = new CpHandshake(this.settings.secure!.scbk, false);
        this.phase = 'chlng';
        return;
      case 'istat':
        if (r.code === REPLY.ISTATR) { try { this.ev.inputs(this, parseInputs(r.data)); } catch (e) { this.ev.problem(this, (e as Error).message); } }
        this.connected(now);
        return;
      case 'online':
        if (tx.cmd) {
          if (this.queue[0] === tx.cmd) this.queue.shift();
          if (r.code === REPLY.NAK) this.ev.problem(this, `reader refused ${codeName(tx.code, false)}: ${nakText(r.data)}`);
          else this.ev.acked(this, tx.cmd, now);
          if (r.code === REPLY.ACK || r.code === REPLY.NAK) return;
        }
        if (r.code === REPLY.NAK && r.data[0] === NAK.SEQUENCE) { this.restart(now, 'reader lost the sequence'); return; }
        if (r.code !== REPLY.ACK) this.ev.reply(this, r, now);
        return;
    }
  }

  /** false when the configuration asks what the reader says it cannot do (the reader is then not used) */
  private checkCapabilities(now: number, caps: Capabilities | null): boolean {
    const warnings: string[] = [];
    let refusal: string | null = null;
    const s = this.settings.secure;
    if (caps && s && !supportsSecureChannel(caps)) {
      refusal = 'the configuration asks for the secure channel, but the reader reports no secure channel support (osdp_PDCAP function 9): remove `secure` for this reader or replace the reader';
    }
    if (caps && s?.install && supportsSecureChannel(caps) && !acceptsDefaultKey(caps)) warnings.push('install mode is configured, but the reader reports it does not accept the default key SCBK-D');
    const heads = caps ? readerHeads(caps) : null;
    const over = heads === null ? [] : (this.settings.heads ?? []).filter((h) => h >= heads);
    if (over.length) warnings.push(`reader number${over.length > 1 ? 's' : ''} ${over.join(', ')} configured, but the PD reports ${heads} reader head${heads === 1 ? '' : 's'}`);
    this.capWarnings = warnings;
    this.ev.capabilities(this, caps, warnings);
    if (refusal) {
      if (refusal !== this.refusal) { this.refusal = refusal; this.ev.refused(this, refusal); }
      this.goDown(now, refusal, false);
      return false;
    }
    this.refusal = null;
    return true;
  }

  private afterConnect(now: number): void {
    const s = this.settings.secure;
    if (!s) { this.connected(now); return; }
    // install mode tries the configured key first: after a restart the reader may already hold it
    this.usingDefaultKey = false;
    this.handshake = new CpHandshake(s.scbk, false);
    this.phase = 'chlng';
  }

  /** connected (and secured): read the input baseline first when a passage input is configured */
  private connected(now: number): void {
    if (this.settings.readInputs && this.phase !== 'istat') { this.phase = 'istat'; return; }
    this.phase = 'online';
    this.nextPollAt = now;
    if (!this.online) {
      this.online = true;
      this.ev.state(this, true, this.session ? 'connected over the secure channel' : 'connected in clear text');
    }
  }

  private handshakeFailed(now: number, why: string): void {
    const s = this.settings.secure!;
    if (s.install && !this.usingDefaultKey) {
      // not the configured key: in install mode the reader should still accept SCBK-D
      this.usingDefaultKey = true;
      this.handshake = new CpHandshake(s.scbk, true);
      this.phase = 'chlng';
      return;
    }
    this.ev.problem(this, `secure channel handshake failed: ${why}`);
    // a reader configured for the secure channel is never used in clear text (no downgrade)
    this.goDown(now, `secure channel handshake failed: ${why}`);
  }

  /** no reply after every retry */
  onSilence(tx: Tx, now: number): void {
    if (tx.probe || this.phase === 'down') {
      this.nextProbeAt = now + this.settings.probeEvery;
      if (this.online && now - this.lastReplyAt >= this.settings.offlineAfter) this.goDown(now, `no reply for ${Math.round(now - this.lastReplyAt)} ms`);
      return;
    }
    if (now - this.lastReplyAt >= this.settings.offlineAfter) { this.goDown(now, `no reply for ${Math.round(now - this.lastReplyAt)} ms`); return; }
    // the reader may or may not have seen the command: restart the sequence (and the secure session)
    this.restart(now, `no reply to ${codeName(tx.code, false)}`);
  }

  /** start over from POLL sequence 0, at once; the reader stays online unless silent for offlineAfter */
  private restart(now: number, why: string): void {
    this.ev.problem(this, `reconnecting: ${why}`);
    this.phase = 'down';
    this.session = null;
    this.handshake = null;
    this.pendingScrypt = null;
    // at once, unless it keeps failing: then at the probe pace, so a faulty reader cannot hog the bus or the log
    this.nextProbeAt = now - this.lastRestartAt < this.settings.probeEvery ? now + this.settings.probeEvery : now;
    this.lastRestartAt = now;
  }
  private lastRestartAt = -Infinity;

  private goDown(now: number, why: string, report = true): void {
    if (report) this.restart(now, why);
    else { this.phase = 'down'; this.session = null; this.handshake = null; this.pendingScrypt = null; }
    this.nextProbeAt = now + this.settings.probeEvery;
    this.queue = [];
    if (this.online) { this.online = false; this.ev.state(this, false, why); }
  }

  /** the bus closed (port gone): everything starts over */
  portLost(now: number): void { this.goDown(now, 'serial port closed'); }
}
