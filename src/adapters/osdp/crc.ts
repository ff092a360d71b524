/**
 * OSDP's two packet checks (SIA OSDP 2.2, "Message check"):
 * - CRC-16/AUG-CCITT: polynomial 0x1021, initial value 0x1D0F, no
 *   reflection, no final XOR; check value of ASCII "123456789" = 0xE5CC.
 *   Sent low byte first after the data.
 * - 8-bit checksum: the two's complement of the byte sum, so that the sum of
 *   every byte of the packet, checksum included, is 0 mod 256.
 * Both run over SOM through the last data byte (mark bytes excluded).
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function crc16AugCcitt(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0x1d0f;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

export function checksum8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += bytes[i]!;
  return -sum & 0xff;
}
