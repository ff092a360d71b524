/**
 * OSDP Secure Channel cryptography (SIA OSDP 2.2 Annex D), AES-128 through
 * node:crypto. Checked against the published Annex E example values and
 * libosdp's unit-test vectors (test/bridge/secure.test.ts).
 *
 *   session keys (SCBK = the reader's key, or SCBK-D 0x30..0x3F in install mode):
 *     S-ENC  = AES-ECB(SCBK, 01 82 cpRandom[0..5] 00×8)
 *     S-MAC1 = AES-ECB(SCBK, 01 01 cpRandom[0..5] 00×8)
 *     S-MAC2 = AES-ECB(SCBK, 01 02 cpRandom[0..5] 00×8)
 *   PD cryptogram ("client") = AES-ECB(S-ENC, cpRandom ‖ pdRandom)
 *   CP cryptogram ("server") = AES-ECB(S-ENC, pdRandom ‖ cpRandom)
 *   R-MAC-I = AES-ECB(S-MAC2, AES-ECB(S-MAC1, CP cryptogram)): the first reply MAC
 *
 *   MAC of a message M (SOM..last data byte), chained: IV = the last MAC of
 *   the other direction (a command uses the last reply MAC, a reply the MAC
 *   of its command):
 *     M padded with 0x80 00… to 16 bytes only when not already a multiple of 16;
 *     blocks 1..N-1 AES-CBC with S-MAC1 from IV; block N AES-ECB with S-MAC2 → MAC (16 bytes, 4 sent)
 *   Data (SCS_17/SCS_18): DATA ‖ 0x80 ‖ 00… to a multiple of 16,
 *     AES-CBC with S-ENC, IV = bitwise NOT of that same chained MAC.
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApbError } from '../../errors.js';

/** SCBK-D, the default key a reader in install mode accepts */
export const SCBK_D = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);

function ecb(key: Uint8Array, block: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(block), c.final()]));
}

export function aesEcb(key: Uint8Array, block: Uint8Array): Uint8Array { return ecb(key, block); }

export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-128-cbc', key, iv);
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const d = createDecipheriv('aes-128-cbc', key, iv);
  d.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([d.update(data), d.final()]));
}

export interface SessionKeys { enc: Uint8Array; mac1: Uint8Array; mac2: Uint8Array }

export function sessionKeys(scbk: Uint8Array, cpRandom: Uint8Array): SessionKeys {
  const derive = (a: number, b: number): Uint8Array => {
    const blk = new Uint8Array(16);
    blk[0] = a; blk[1] = b;
    blk.set(cpRandom.subarray(0, 6), 2);
    return ecb(scbk, blk);
  };
  return { enc: derive(0x01, 0x82), mac1: derive(0x01, 0x01), mac2: derive(0x01, 0x02) };
}

const cat = (a: Uint8Array, b: Uint8Array): Uint8Array => { const o = new Uint8Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; };

/** the PD's ("client") cryptogram, sent in osdp_CCRYPT */
export const pdCryptogram = (k: SessionKeys, cpRandom: Uint8Array, pdRandom: Uint8Array): Uint8Array => ecb(k.enc, cat(cpRandom, pdRandom));
/** the CP's ("server") cryptogram, sent in osdp_SCRYPT */
export const cpCryptogram = (k: SessionKeys, cpRandom: Uint8Array, pdRandom: Uint8Array): Uint8Array => ecb(k.enc, cat(pdRandom, cpRandom));
/** the initial reply MAC, sent in osdp_RMAC_I */
export const rmacI = (k: SessionKeys, cpCrypt: Uint8Array): Uint8Array => ecb(k.mac2, ecb(k.mac1, cpCrypt));

/** The 16-byte MAC of `msg` chained from `iv` (see the header). */
export function mac(k: SessionKeys, iv: Uint8Array, msg: Uint8Array): Uint8Array {
  const rem = msg.length % 16;
  const n = msg.length === 0 ? 1 : Math.ceil(msg.length / 16);
  let chain = iv;
  if (n > 1) {
    const head = aesCbcEncrypt(k.mac1, iv, msg.subarray(0, (n - 1) * 16));
    chain = head.subarray(head.length - 16);
  }
  const last = new Uint8Array(16);
  if (rem === 0 && msg.length > 0) last.set(msg.subarray((n - 1) * 16));
  else { last.set(msg.subarray((n - 1) * 16)); last[rem] = 0x80; }
  for (let i = 0; i < 16; i++) last[i]! ^= chain[i]!;
  return ecb(k.mac2, last);
}

const inverted = (iv: Uint8Array): Uint8Array => iv.map((b) => ~b & 0xff);

/** DATA ‖ 0x80 ‖ 00… encrypted; `chain` is the MAC the IV is the NOT of */
export function encryptData(k: SessionKeys, chain: Uint8Array, data: Uint8Array): Uint8Array {
  const padded = new Uint8Array((Math.floor(data.length / 16) + 1) * 16);
  padded.set(data);
  padded[data.length] = 0x80;
  return aesCbcEncrypt(k.enc, inverted(chain), padded);
}

/** Inverse of encryptData; bad_osdp when the length or the 0x80 padding is wrong (wrong key or tampering). */
export function decryptData(k: SessionKeys, chain: Uint8Array, ct: Uint8Array): Uint8Array {
  if (ct.length === 0 || ct.length % 16 !== 0) throw new ApbError('bad_osdp', `secure channel: encrypted data of ${ct.length} bytes is not a non-empty multiple of 16`);
  const pt = aesCbcDecrypt(k.enc, inverted(chain), ct);
  let end = pt.length - 1;
  while (end > 0 && pt[end] === 0) end--;
  if (pt[end] !== 0x80) throw new ApbError('bad_osdp', 'secure channel: decrypted data has no 0x80 end marker (wrong key or altered data)');
  return pt.subarray(0, end);
}

export const randomBlock8 = (): Uint8Array => new Uint8Array(randomBytes(8));

/** constant-time comparison of two byte strings of the same length */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
