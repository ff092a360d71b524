/**
 * One Secure Channel session between the CP and one PD: the handshake
 * messages and, once established, wrapping of outgoing and unwrapping of
 * incoming messages (MAC chaining, data encryption). The same class serves
 * both ends (the bridge is the CP; the tests' simulated reader the PD).
 *
 *   CP                                     PD
 *   osdp_CHLNG   SCB 03 11 k, cpRandom[8] ──▶
 *            ◀── osdp_CCRYPT SCB 03 12 k, uid[8] pdRandom[8] pdCryptogram[16]
 *   osdp_SCRYPT  SCB 03 13 k, cpCryptogram[16] ──▶
 *            ◀── osdp_RMAC_I SCB 03 14 01, R-MAC-I[16]
 *   then every frame: SCB 02 15|16|17|18, MAC[4] before the check
 *   (k: 0x00 = SCBK-D, install mode; 0x01 = the reader's own SCBK)
 *
 * Chaining: each direction keeps its last MAC; a message's MAC and its data
 * IV start from the other direction's last MAC (secure.ts).
 */
import { ApbError } from '../../errors.js';
import { CMD, REPLY, SCS } from './codes.js';
import { encodeFrame, type Frame } from './frame.js';
import {
  cpCryptogram, decryptData, encryptData, mac, pdCryptogram, randomBlock8, rmacI, sameBytes, sessionKeys, SCBK_D,
  type SessionKeys,
} from './secure.js';

const bad = (m: string): ApbError => new ApbError('bad_osdp', `secure channel: ${m}`);

export class SecureSession {
  /** last MAC this end sent / received (16 bytes each) */
  private lastOut: Uint8Array;
  private lastIn: Uint8Array;
  constructor(private readonly keys: SessionKeys, readonly role: 'cp' | 'pd', rmacInitial: Uint8Array) {
    // the first command chains from R-MAC-I: for the CP it is the last MAC received, for the PD the last sent
    this.lastIn = role === 'cp' ? rmacInitial : new Uint8Array(16);
    this.lastOut = role === 'pd' ? rmacInitial : new Uint8Array(16);
  }

  /** A complete frame carrying `code`/`data` under the session (SCS_15/17 from the CP, SCS_16/18 from the PD). */
  wrap(f: { address: number; sqn: number; crc: boolean; code: number; data?: Uint8Array }): Uint8Array {
    const data = f.data ?? new Uint8Array(0);
    const enc = data.length > 0;
    const type = this.role === 'cp' ? (enc ? SCS.CMD_ENC : SCS.CMD_MAC) : (enc ? SCS.REPLY_ENC : SCS.REPLY_MAC);
    const chain = this.lastIn;
    return encodeFrame({
      address: f.address, reply: this.role === 'pd', sqn: f.sqn, crc: f.crc, code: f.code,
      scb: Uint8Array.of(2, type), data: enc ? encryptData(this.keys, chain, data) : data,
      mac: (covered) => (this.lastOut = mac(this.keys, chain, covered)),
    });
  }

  /** The plain data of a received frame; bad_osdp when its MAC, type or padding is wrong (the caller drops the session). */
  unwrap(fr: Frame): Uint8Array {
    if (!fr.scb) throw bad(`${fr.reply ? 'reply' : 'command'} 0x${fr.code.toString(16)} arrived in clear text inside a session`);
    const type = fr.scb[1]!;
    const [plain, encrypted] = this.role === 'cp' ? [SCS.REPLY_MAC, SCS.REPLY_ENC] : [SCS.CMD_MAC, SCS.CMD_ENC];
    if (type !== plain && type !== encrypted) throw bad(`security block type 0x${type.toString(16)} where 0x${plain.toString(16)} or 0x${encrypted.toString(16)} belongs`);
    const m = mac(this.keys, this.lastOut, fr.macInput);
    if (!fr.mac || !sameBytes(m.subarray(0, 4), fr.mac)) throw bad('MAC does not match (wrong key, lost message or altered frame)');
    const chain = this.lastOut;
    this.lastIn = m;
    return type === encrypted ? decryptData(this.keys, chain, fr.data) : fr.data;
  }
}

/** The CP's side of the handshake with one PD. */
export class CpHandshake {
  readonly cpRandom: Uint8Array;
  private keys: SessionKeys | null = null;
  private cpCrypt: Uint8Array | null = null;
  /** the PD's 8-byte client UID from osdp_CCRYPT */
  uid: Uint8Array | null = null;
  constructor(readonly scbk: Uint8Array, readonly useDefaultKey: boolean, cpRandom?: Uint8Array) {
    this.cpRandom = cpRandom ?? randomBlock8();
  }
  private get keyFlag(): number { return this.useDefaultKey ? 0 : 1; }

  /** osdp_CHLNG: code, SCB, data */
  challenge(): { code: number; scb: Uint8Array; data: Uint8Array } {
    return { code: CMD.CHLNG, scb: Uint8Array.of(3, SCS.CHLNG, this.keyFlag), data: this.cpRandom };
  }

  /** checks osdp_CCRYPT and returns osdp_SCRYPT */
  onCcrypt(fr: Frame): { code: number; scb: Uint8Array; data: Uint8Array } {
    if (fr.code !== REPLY.CCRYPT) throw bad(`expected osdp_CCRYPT (0x76) after osdp_CHLNG, got reply 0x${fr.code.toString(16)}`);
    if (fr.data.length !== 32) throw bad(`osdp_CCRYPT carries ${fr.data.length} bytes, expected 32`);
    this.uid = fr.data.slice(0, 8);
    const pdRandom = fr.data.slice(8, 16);
    this.keys = sessionKeys(this.useDefaultKey ? SCBK_D : this.scbk, this.cpRandom);
    if (!sameBytes(pdCryptogram(this.keys, this.cpRandom, pdRandom), fr.data.subarray(16, 32))) {
      throw bad(`the reader's cryptogram does not match: it does not hold ${this.useDefaultKey ? 'the default key SCBK-D (is it in install mode?)' : 'the configured SCBK'}`);
    }
    this.cpCrypt = cpCryptogram(this.keys, this.cpRandom, pdRandom);
    return { code: CMD.SCRYPT, scb: Uint8Array.of(3, SCS.SCRYPT, this.keyFlag), data: this.cpCrypt };
  }

  /** checks osdp_RMAC_I; the session is established */
  onRmacI(fr: Frame): SecureSession {
    if (fr.code !== REPLY.RMAC_I) throw bad(`expected osdp_RMAC_I (0x78) after osdp_SCRYPT, got reply 0x${fr.code.toString(16)}`);
    if (!this.keys || !this.cpCrypt) throw bad('osdp_RMAC_I before osdp_CCRYPT');
    if (fr.data.length !== 16) throw bad(`osdp_RMAC_I carries ${fr.data.length} bytes, expected 16`);
    const want = rmacI(this.keys, this.cpCrypt);
    if (!sameBytes(want, fr.data)) throw bad('osdp_RMAC_I does not match the session keys');
    return new SecureSession(this.keys, 'cp', want);
  }
}

/** The PD's side (the tests' simulated reader): answers CHLNG and SCRYPT. */
export class PdHandshake {
  private keys: SessionKeys | null = null;
  private cpRandom: Uint8Array | null = null;
  private pdRandom: Uint8Array | null = null;
  constructor(readonly uid: Uint8Array, private readonly keyFor: (keyFlag: number) => Uint8Array | null, pdRandom?: Uint8Array) {
    this.pdRandom = pdRandom ?? null;
  }

  /** osdp_CCRYPT data for a CHLNG, or null when the asked key is not available (the PD NAKs) */
  onChallenge(fr: Frame): { scb: Uint8Array; data: Uint8Array } | null {
    const flag = fr.scb?.[2] ?? 1;
    const key = this.keyFor(flag);
    if (!key || fr.data.length !== 8) return null;
    this.cpRandom = fr.data.slice();
    this.pdRandom ??= randomBlock8();
    this.keys = sessionKeys(key, this.cpRandom);
    const out = new Uint8Array(32);
    out.set(this.uid.subarray(0, 8)); out.set(this.pdRandom, 8); out.set(pdCryptogram(this.keys, this.cpRandom, this.pdRandom), 16);
    return { scb: Uint8Array.of(3, SCS.CCRYPT, flag), data: out };
  }

  /** osdp_RMAC_I data and the session, or null when the CP's cryptogram is wrong */
  onScrypt(fr: Frame): { scb: Uint8Array; data: Uint8Array; session: SecureSession } | null {
    if (!this.keys || !this.cpRandom || !this.pdRandom || fr.data.length !== 16) return null;
    const want = cpCryptogram(this.keys, this.cpRandom, this.pdRandom);
    if (!sameBytes(want, fr.data)) return null;
    const r = rmacI(this.keys, want);
    return { scb: Uint8Array.of(3, SCS.RMAC_I, 1), data: r, session: new SecureSession(this.keys, 'pd', r) };
  }
}
