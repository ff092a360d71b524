/**
 * OSDP command (CP → PD) and reply (PD → CP) codes the bridge uses
 * (SIA OSDP 2.2, sections 6 and 7), and the security block types of the
 * Secure Channel (section D).
 */
export const CMD = {
  POLL: 0x60, ID: 0x61, CAP: 0x62, ISTAT: 0x65, OUT: 0x68, LED: 0x69, BUZ: 0x6a,
  KEYSET: 0x75, CHLNG: 0x76, SCRYPT: 0x77,
} as const;

export const REPLY = {
  ACK: 0x40, NAK: 0x41, PDID: 0x45, PDCAP: 0x46, LSTATR: 0x48, ISTATR: 0x49, OSTATR: 0x4a,
  RAW: 0x50, FMT: 0x51, KEYPAD: 0x53, CCRYPT: 0x76, RMAC_I: 0x78, BUSY: 0x79,
} as const;

/**
 * Security block types (SEC_BLK_TYPE):
 *   0x11 SCS_11  osdp_CHLNG            CP → PD  handshake step 1
 *   0x12 SCS_12  osdp_CCRYPT           PD → CP  handshake step 2
 *   0x13 SCS_13  osdp_SCRYPT           CP → PD  handshake step 3
 *   0x14 SCS_14  osdp_RMAC_I           PD → CP  handshake step 4
 *   0x15 SCS_15  command, MAC, no data         0x16 SCS_16  reply, MAC, no data
 *   0x17 SCS_17  command, MAC, data encrypted  0x18 SCS_18  reply, MAC, data encrypted
 */
export const SCS = { CHLNG: 0x11, CCRYPT: 0x12, SCRYPT: 0x13, RMAC_I: 0x14, CMD_MAC: 0x15, REPLY_MAC: 0x16, CMD_ENC: 0x17, REPLY_ENC: 0x18 } as const;

/** osdp_NAK error codes (reply data byte 0) */
export const NAK = { CHECK: 0x01, LENGTH: 0x02, UNKNOWN_CMD: 0x03, SEQUENCE: 0x04, SC_UNSUPPORTED: 0x05, SC_CONDITION: 0x06 } as const;

const NAMES: Record<number, string> = {
  0x60: 'osdp_POLL', 0x61: 'osdp_ID', 0x62: 'osdp_CAP', 0x65: 'osdp_ISTAT', 0x68: 'osdp_OUT', 0x69: 'osdp_LED', 0x6a: 'osdp_BUZ',
  0x75: 'osdp_KEYSET', 0x77: 'osdp_SCRYPT',
};
const REPLY_NAMES: Record<number, string> = {
  0x40: 'osdp_ACK', 0x41: 'osdp_NAK', 0x45: 'osdp_PDID', 0x46: 'osdp_PDCAP', 0x48: 'osdp_LSTATR', 0x49: 'osdp_ISTATR',
  0x4a: 'osdp_OSTATR', 0x50: 'osdp_RAW', 0x51: 'osdp_FMT', 0x53: 'osdp_KEYPAD', 0x76: 'osdp_CCRYPT', 0x78: 'osdp_RMAC_I', 0x79: 'osdp_BUSY',
};

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0').toUpperCase();

/** "0x60 (osdp_POLL)": commands and replies share some values (0x76), so the direction picks the table */
export function codeName(code: number, reply: boolean): string {
  const n = reply ? REPLY_NAMES[code] : code === 0x76 ? 'osdp_CHLNG' : NAMES[code];
  return n ? `${hex2(code)} (${n})` : hex2(code);
}
