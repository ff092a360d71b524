/**
 * Secure Channel cryptography against published known values: the SIA OSDP
 * Annex E example (session keys, both cryptograms, R-MAC-I) as libosdp
 * checks it, and libosdp's MAC and data-encryption vectors (built on NIST
 * SP 800-38A). Then a CP and a PD session talk to each other, and every
 * kind of tampering is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aesCbcEncrypt, cpCryptogram, decryptData, encryptData, mac, pdCryptogram, rmacI, sessionKeys, SCBK_D, type SessionKeys,
} from '../../src/bridge/osdp/secure.js';
import { CpHandshake, PdHandshake } from '../../src/bridge/osdp/channel.js';
import { decodeFrame, encodeFrame } from '../../src/bridge/osdp/frame.js';
import { CMD, REPLY } from '../../src/bridge/osdp/codes.js';
import { crc16AugCcitt, checksum8 } from '../../src/adapters/osdp/crc.js';
import { ApbError } from '../../src/errors.js';
import { hex, loadVectors, toHex } from './util.js';

const V = loadVectors('osdp-sc');
const not = (b: Uint8Array): Uint8Array => b.map((x) => ~x & 0xff);

test('Annex E: SCBK-D, session keys, cryptograms and R-MAC-I', () => {
  const e = V.annexE;
  assert.equal(toHex(SCBK_D), e.scbk, 'SCBK-D is 0x30..0x3F');
  const k = sessionKeys(SCBK_D, hex(e.cpRandom));
  assert.equal(toHex(k.mac1), e.sMac1);
  assert.equal(toHex(k.mac2), e.sMac2);
  assert.equal(toHex(k.enc), e.sEnc);
  const cp = cpCryptogram(k, hex(e.cpRandom), hex(e.pdRandom));
  assert.equal(toHex(cp), e.cpCryptogram);
  assert.equal(toHex(pdCryptogram(k, hex(e.cpRandom), hex(e.pdRandom))), e.pdCryptogram);
  assert.equal(toHex(rmacI(k, cp)), e.rmacI);
});

test('AES-128-CBC through node:crypto matches NIST SP 800-38A F.2.1', () => {
  assert.equal(toHex(aesCbcEncrypt(hex(V.nist.key), hex(V.nist.iv), hex(V.nist.pt4))), V.nist.ct4.toUpperCase());
});

test('MAC chaining: full blocks unpadded, a partial block padded with 0x80 (libosdp vectors)', () => {
  const key = hex(V.nist.key);
  const k: SessionKeys = { enc: key, mac1: key, mac2: key };
  for (const m of V.mac) assert.equal(toHex(mac(k, hex(V.nist.iv), hex(m.msg))), m.mac.toUpperCase(), m.why);
  // a different chain value gives a different MAC: the chain is really used
  assert.notEqual(toHex(mac(k, new Uint8Array(16), hex(V.mac[0].msg))), V.mac[0].mac.toUpperCase());
});

test('data blocks: DATA ‖ 0x80 ‖ zeros, AES-CBC with the inverted MAC as IV, and back', () => {
  const key = hex(V.nist.key);
  const k: SessionKeys = { enc: key, mac1: key, mac2: key };
  const chain = not(hex(V.nist.iv)); // libosdp keeps NOT(iv) as the chained MAC in these vectors
  for (const d of V.data) {
    const ct = encryptData(k, chain, hex(d.pt));
    assert.equal(toHex(ct), d.ct.toUpperCase(), `${d.pt.length / 2} bytes`);
    assert.equal(toHex(decryptData(k, chain, ct)), d.pt.toUpperCase());
  }
  assert.throws(() => decryptData(k, chain, hex('00'.repeat(15))), (e: ApbError) => e.code === 'bad_osdp' && /multiple of 16/.test(e.message));
  // the wrong chain (or key) leaves no 0x80 end marker
  assert.throws(() => decryptData(k, new Uint8Array(16), hex(V.data[0].ct)), (e: ApbError) => e.code === 'bad_osdp' && /end marker/.test(e.message));
});

test('Annex E CRC and checksum examples', () => {
  for (const c of V.check) {
    const b = hex(c.hex);
    if (c.crc) { const v = crc16AugCcitt(b); assert.equal(toHex(Uint8Array.of(v & 0xff, v >> 8)), c.crc); }
    else assert.equal(checksum8(b).toString(16).toUpperCase().padStart(2, '0'), c.checksum);
  }
});

test('handshake and a session between a CP and a PD; tampering is refused', () => {
  const scbk = hex('00112233445566778899AABBCCDDEEFF');
  const cp = new CpHandshake(scbk, false);
  const pd = new PdHandshake(hex('0102030405060708'), (flag) => (flag === 1 ? scbk : null));
  const frame = (code: number, data: Uint8Array, scb: Uint8Array, reply: boolean) => decodeFrame(encodeFrame({ address: 1, reply, sqn: 1, crc: true, code, data, scb }));
  const ch = cp.challenge();
  const cc = pd.onChallenge(frame(ch.code, ch.data, ch.scb, false))!;
  const sc = cp.onCcrypt(frame(REPLY.CCRYPT, cc.data, cc.scb, true));
  const rm = pd.onScrypt(frame(sc.code, sc.data, sc.scb, false))!;
  const cpSession = cp.onRmacI(frame(REPLY.RMAC_I, rm.data, rm.scb, true));
  const pdSession = rm.session;
  // several round trips keep both chains in step, with and without data
  for (let i = 0; i < 4; i++) {
    const data = i % 2 ? new Uint8Array(0) : Uint8Array.from({ length: 5 + i * 7 }, (_, j) => j * i);
    const cmd = decodeFrame(cpSession.wrap({ address: 1, sqn: (i % 3) + 1, crc: true, code: CMD.LED, data }));
    assert.equal(cmd.scb![1], data.length ? 0x17 : 0x15);
    if (data.length) assert.notDeepEqual([...cmd.data.subarray(0, data.length)], [...data], 'data is encrypted');
    assert.deepEqual([...pdSession.unwrap(cmd)], [...data]);
    const rep = decodeFrame(pdSession.wrap({ address: 1, sqn: (i % 3) + 1, crc: true, code: REPLY.ACK, data }));
    assert.equal(rep.scb![1], data.length ? 0x18 : 0x16);
    assert.deepEqual([...cpSession.unwrap(rep)], [...data]);
  }
  // an altered data byte (CRC recomputed by the attacker) fails the MAC
  const good = cpSession.wrap({ address: 1, sqn: 1, crc: true, code: CMD.OUT, data: Uint8Array.of(0, 5, 30, 0) });
  const evil = encodeFrame({ address: 1, sqn: 1, crc: true, code: CMD.OUT, scb: Uint8Array.of(2, 0x17), data: decodeFrame(good).data.map((b, i) => (i === 0 ? b ^ 1 : b)), mac: () => decodeFrame(good).mac! });
  assert.throws(() => pdSession.unwrap(decodeFrame(evil)), (e: ApbError) => e.code === 'bad_osdp' && /MAC/.test(e.message));
  // a command replayed after the PD has answered it fails: the chain has moved on
  const cp2 = cpSession.wrap({ address: 1, sqn: 2, crc: true, code: CMD.POLL });
  pdSession.unwrap(decodeFrame(cp2));
  cpSession.unwrap(decodeFrame(pdSession.wrap({ address: 1, sqn: 2, crc: true, code: REPLY.ACK })));
  assert.throws(() => pdSession.unwrap(decodeFrame(cp2)), /MAC does not match/);
  // a wrong key is caught at the PD's cryptogram
  const bad = new CpHandshake(hex('FF'.repeat(16)), false);
  const c2 = bad.challenge();
  const pd2 = new PdHandshake(hex('0102030405060708'), () => scbk);
  const cc2 = pd2.onChallenge(frame(c2.code, c2.data, c2.scb, false))!;
  assert.throws(() => bad.onCcrypt(frame(REPLY.CCRYPT, cc2.data, cc2.scb, true)), /cryptogram does not match: it does not hold the configured SCBK/);
});
