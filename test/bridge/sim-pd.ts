/**
 * A simulated OSDP bus of readers (PDs) for the bridge tests, on the far end
 * of a socat pseudo-terminal pair: it answers the bridge's polls like a
 * reader would, queues card reads and input changes as poll replies, records
 * every command it receives (decrypted when under the secure channel), and
 * runs the PD side of the Secure Channel (install mode with SCBK-D, or a set
 * SCBK; osdp_KEYSET changes it). Not a test file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { CMD, NAK, REPLY } from '../../src/bridge/osdp/codes.js';
import { PdHandshake, type SecureSession } from '../../src/bridge/osdp/channel.js';
import { Deframer, decodeFrame, encodeFrame, type Frame } from '../../src/bridge/osdp/frame.js';
import { SCBK_D } from '../../src/bridge/osdp/secure.js';
import { parseKeyset } from '../../src/bridge/osdp/payloads.js';
import { encodePdcap, type Capability } from '../../src/bridge/osdp/capabilities.js';
import { BUILTIN_FORMATS } from '../../src/adapters/wiegand/formats.js';
import { encodeRead } from '../../src/adapters/wiegand/encode.js';

export const hasSocat = (): boolean => spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
export const SKIP_NO_SOCAT = hasSocat() ? false : 'socat is not installed (Debian package socat): no pseudo-terminal pair for the serial tests';

/** A pseudo-terminal pair: the bridge opens `a`, the simulated readers `b`. unplug() kills socat (both devices vanish), replug() makes new ones on the same paths. */
export class PtyPair {
  private constructor(readonly dir: string, readonly a: string, readonly b: string, private child: ChildProcess) {}
  private static async spawn(a: string, b: string): Promise<ChildProcess> {
    const child = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
    const end = Date.now() + 5000;
    while (!(existsSync(a) && existsSync(b))) {
      if (Date.now() > end || child.exitCode !== null) { child.kill(); throw new Error('socat did not create the pty pair'); }
      await new Promise((r) => setTimeout(r, 10));
    }
    return child;
  }
  static async open(): Promise<PtyPair> {
    const dir = mkdtempSync(join(tmpdir(), 'apb-pty-'));
    const a = join(dir, 'acu'), b = join(dir, 'pd');
    return new PtyPair(dir, a, b, await PtyPair.spawn(a, b));
  }
  /** the serial device disappears (like a USB adapter pulled out) */
  async unplug(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await gone;
    await waitFor(() => !existsSync(this.a) && !existsSync(this.b), 3000, 'socat links removed').catch(() => {
      rmSync(this.a, { force: true }); rmSync(this.b, { force: true });
    });
  }
  /** a new device on the same paths (the adapter plugged back in) */
  async replug(): Promise<void> { this.child = await PtyPair.spawn(this.a, this.b); }
  async close(): Promise<void> {
    await this.unplug();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Received { code: number; data: Uint8Array; secure: boolean; at: number; sqn: number; /** the frame as it came off the wire (without the mark byte) */ raw: Uint8Array }

/** timing hooks for the benchmark (bench/bridge.ts): performance.now() when a card read leaves and a command arrives */
export interface SimHooks { cardSent?(at: number): void; command?(code: number, at: number): void }

export interface SimReaderOptions {
  /** the reader's own key (null: none set yet) */
  scbk?: Uint8Array | null;
  /** install mode: accepts SCBK-D */
  install?: boolean;
  /** answers the secure channel at all */
  secureCapable?: boolean;
  inputs?: number;
  /** the osdp_PDCAP entries it reports (default: defaultCaps of its options) */
  caps?: Capability[];
  /** reader heads on this PD (function 13 of its capabilities), default 1 */
  heads?: number;
}

/** what a typical single-head reader with a relay reports */
export function defaultCaps(o: { secureCapable?: boolean; inputs?: number; heads?: number } = {}): Capability[] {
  const sc = o.secureCapable ?? true;
  return [
    { code: 1, compliance: 1, items: o.inputs ?? 2 },    // contact status monitoring: inputs
    { code: 2, compliance: 1, items: 1 },                // output control: one relay
    { code: 3, compliance: 1, items: 0 },                // card data format: bits
    { code: 4, compliance: 2, items: 1 },                // reader LED: timed, bi-colour, one LED
    { code: 5, compliance: 2, items: 1 },                // audible: timed, one buzzer
    { code: 8, compliance: 1, items: 0 },                // check character: CRC-16
    { code: 9, compliance: sc ? 1 : 0, items: sc ? 1 : 0 }, // communication security: AES-128, SCBK-D accepted
    { code: 10, compliance: 0xa0, items: 0x05 },         // receive buffer: 1440 bytes
    { code: 13, compliance: 0, items: o.heads ?? 1 },    // readers
    { code: 16, compliance: 2, items: 0 },               // SIA OSDP 2.2
  ];
}

export class SimReader {
  readonly received: Received[] = [];
  readonly pending: { code: number; data: Uint8Array }[] = [];
  silent = false;
  polls = 0;
  scbk: Uint8Array | null;
  install: boolean;
  inputs: boolean[];
  session: SecureSession | null = null;
  private handshake: PdHandshake | null = null;
  private lastSqn = -1;
  private lastReply: Uint8Array | null = null;
  readonly uid = Uint8Array.of(0x5a, 0x31, 0, 0, 1, 2, 3, 4);
  hooks: SimHooks = {};
  /** the next n replies carrying a card read leave with a broken CRC (a repeat of the command gets the good one) */
  corruptReads = 0;
  /** set by answer(): SimBus sends this reply damaged */
  corruptOut = false;
  /** answer the next command (not sequence 0) with NAK "unexpected sequence number", as a reader that restarted */
  nakSequenceNext = false;
  /** keep every received command in `received` (the benchmark turns it off) */
  record = true;
  /** handshakes completed, and with which key flag (0 = SCBK-D) */
  readonly sessions: number[] = [];

  readonly caps: Uint8Array;
  constructor(readonly address: number, o: SimReaderOptions = {}) {
    this.caps = encodePdcap(o.caps ?? defaultCaps(o));
    this.scbk = o.scbk ?? null;
    this.install = o.install ?? false;
    this.secureCapable = o.secureCapable ?? true;
    this.inputs = new Array(o.inputs ?? 2).fill(false);
  }
  readonly secureCapable: boolean;

  /** an H10301 26-bit card read as osdp_RAW (format 1 = Wiegand) */
  card(facility: number, card: number, reader = 0): void {
    const { raw, bits } = encodeRead(BUILTIN_FORMATS.find((f) => f.name === 'H10301')!, facility, card);
    this.pending.push({ code: REPLY.RAW, data: Uint8Array.from([reader, 1, bits & 0xff, bits >> 8, ...raw]) });
  }
  fmt(text: string, reader = 0): void {
    this.pending.push({ code: REPLY.FMT, data: Uint8Array.from([reader, 0, text.length, ...Buffer.from(text, 'ascii')]) });
  }
  keypad(keys: string, reader = 0): void {
    this.pending.push({ code: REPLY.KEYPAD, data: Uint8Array.from([reader, keys.length, ...Buffer.from(keys, 'ascii')]) });
  }
  setInput(n: number, on: boolean): void {
    this.inputs[n] = on;
    this.pending.push({ code: REPLY.ISTATR, data: Uint8Array.from(this.inputs.map((x) => (x ? 1 : 0))) });
  }

  commands(code: number): Received[] { return this.received.filter((r) => r.code === code); }

  /** the reply frame to one command frame addressed to this reader, or null (silent) */
  answer(fr: Frame & { raw: Uint8Array }): Uint8Array | null {
    this.corruptOut = false;
    if (this.silent) return null;
    if (this.nakSequenceNext && fr.sqn !== 0) {
      // as a reader that restarted would: it expects sequence 0 and remembers nothing
      this.nakSequenceNext = false;
      this.lastSqn = -1; this.lastReply = null; this.session = null;
      return this.clear(fr, REPLY.NAK, Uint8Array.of(NAK.SEQUENCE));
    }
    if (fr.sqn === 0) { this.session = null; this.lastSqn = -1; }
    else if (fr.sqn === this.lastSqn && this.lastReply) return this.lastReply; // a repeat: the same reply, bit for bit
    let data = fr.data;
    let secure = false;
    if (this.session && fr.scb && fr.scb[1]! >= 0x15) {
      try { data = this.session.unwrap(fr); secure = true; } catch { this.session = null; return this.remember(fr, this.clear(fr, REPLY.NAK, Uint8Array.of(NAK.SC_CONDITION))); }
    } else if (this.session && fr.code !== CMD.CHLNG) {
      this.session = null;
      return this.remember(fr, this.clear(fr, REPLY.NAK, Uint8Array.of(NAK.SC_CONDITION)));
    }
    if (this.record) this.received.push({ code: fr.code, data: data.slice(), secure, at: Date.now(), sqn: fr.sqn, raw: fr.raw.slice() });
    this.hooks.command?.(fr.code, performance.now());
    const reply = (code: number, d: Uint8Array = new Uint8Array(0)): Uint8Array =>
      this.remember(fr, this.session ? this.session.wrap({ address: this.address, sqn: fr.sqn, crc: fr.crc, code, data: d }) : this.clear(fr, code, d));
    switch (fr.code) {
      case CMD.POLL: {
        this.polls++;
        const p = this.pending.shift();
        if (!p) return reply(REPLY.ACK);
        const out = reply(p.code, p.data);
        if (p.code !== REPLY.ISTATR) {
          this.hooks.cardSent?.(performance.now());
          if (this.corruptReads > 0) { this.corruptReads--; this.corruptOut = true; }
        }
        return out;
      }
      case CMD.ID: return reply(REPLY.PDID, Uint8Array.of(0x5a, 0x31, 0x00, 7, 1, 0x04, 0x03, 0x02, 0x01, 1, 2, 3));
      case CMD.CAP: return reply(REPLY.PDCAP, this.caps);
      case CMD.ISTAT: return reply(REPLY.ISTATR, Uint8Array.from(this.inputs.map((x) => (x ? 1 : 0))));
      case CMD.LED: case CMD.BUZ: case CMD.OUT: return reply(REPLY.ACK);
      case CMD.CHLNG: {
        if (!this.secureCapable) return reply(REPLY.NAK, Uint8Array.of(NAK.SC_UNSUPPORTED));
        this.session = null;
        this.handshake = new PdHandshake(this.uid, (flag) => (flag === 0 ? (this.install ? SCBK_D : null) : this.scbk));
        const c = this.handshake.onChallenge(fr);
        if (!c) return reply(REPLY.NAK, Uint8Array.of(NAK.SC_CONDITION));
        return this.remember(fr, this.clear(fr, REPLY.CCRYPT, c.data, c.scb));
      }
      case CMD.SCRYPT: {
        const r = this.handshake?.onScrypt(fr) ?? null;
        if (!r) return reply(REPLY.NAK, Uint8Array.of(NAK.SC_CONDITION));
        const out = this.remember(fr, this.clear(fr, REPLY.RMAC_I, r.data, r.scb));
        this.session = r.session;
        this.sessions.push(fr.scb?.[2] ?? 1);
        return out;
      }
      case CMD.KEYSET: {
        if (!secure) return reply(REPLY.NAK, Uint8Array.of(NAK.SC_CONDITION));
        this.scbk = parseKeyset(data);
        this.install = false;
        return reply(REPLY.ACK);
      }
      default: return reply(REPLY.NAK, Uint8Array.of(NAK.UNKNOWN_CMD));
    }
  }

  private clear(fr: Frame, code: number, data: Uint8Array, scb?: Uint8Array): Uint8Array {
    return encodeFrame({ address: this.address, reply: true, sqn: fr.sqn, crc: fr.crc, code, data, scb: scb ?? null });
  }
  private remember(fr: Frame, bytes: Uint8Array): Uint8Array { this.lastSqn = fr.sqn; this.lastReply = bytes; return bytes; }
}

/** The readers on one bus, answering through one serial port. */
export class SimBus {
  readonly readers = new Map<number, SimReader>();
  private readonly deframer = new Deframer();
  /** command frames seen for any address (also unanswered ones) */
  frames = 0;
  private constructor(private readonly port: SerialPort) {
    port.on('error', () => undefined); // the device vanished (PtyPair.unplug): the port closes
    port.on('data', (d: Buffer) => {
      for (const raw of this.deframer.push(new Uint8Array(d))) {
        let fr: Frame;
        try { fr = decodeFrame(raw); } catch { continue; }
        if (fr.reply) continue;
        this.frames++;
        const r = this.readers.get(fr.address);
        const out = r?.answer({ ...fr, raw });
        if (out) {
          const wire = Buffer.concat([Buffer.of(0xff), Buffer.from(out)]);
          if (r!.corruptOut) wire[wire.length - 1]! ^= 0xff;
          port.write(wire);
        }
      }
    });
  }
  static open(path: string): Promise<SimBus> {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
      port.open((e) => (e ? reject(e) : resolve(new SimBus(port))));
    });
  }
  add(address: number, o: SimReaderOptions = {}): SimReader {
    const r = new SimReader(address, o);
    this.readers.set(address, r);
    return r;
  }
  close(): Promise<void> { return new Promise((r) => (this.port.isOpen ? this.port.close(() => r()) : r())); }
}

export async function waitFor<T>(f: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
