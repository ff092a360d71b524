/**
 * The byte pipe under one OSDP bus: a serial port (an RS-485 adapter, or a
 * pseudo-terminal in the tests) through `serialport`. 8 data bits, no
 * parity, 1 stop bit, as OSDP prescribes; only the baud rate varies.
 */
import { SerialPort } from 'serialport';
import { ApbError } from '../../errors.js';

export interface Transport {
  /** resolves once the bytes have left the UART (tcdrain), so a reply timeout starts at the right instant */
  write(bytes: Uint8Array): Promise<void>;
  onData(cb: (chunk: Uint8Array) => void): void;
  /** the port failed or disappeared (USB adapter unplugged); it is closed */
  onClose(cb: (err: Error | null) => void): void;
  close(): Promise<void>;
}

export function openSerial(path: string, baudRate: number): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate, dataBits: 8, parity: 'none', stopBits: 1, autoOpen: false, lock: true });
    port.open((err) => {
      if (err) { reject(new ApbError('not_ready', `serial port ${path}: ${err.message}`)); return; }
      let closed = false;
      const closers: ((e: Error | null) => void)[] = [];
      port.on('close', (e: Error | null) => { closed = true; for (const c of closers) c(e ?? null); });
      port.on('error', () => undefined); // surfaced through 'close' or the write callbacks
      resolve({
        write: (bytes) => new Promise<void>((res, rej) => {
          if (closed) { rej(new Error(`serial port ${path} is closed`)); return; }
          port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (e) => {
            if (e) { rej(e); return; }
            port.drain((e2) => (e2 ? rej(e2) : res()));
          });
        }),
        onData: (cb) => { port.on('data', (d: Buffer) => cb(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))); },
        onClose: (cb) => { closers.push(cb); },
        close: () => new Promise<void>((res) => { if (closed || !port.isOpen) { res(); return; } port.close(() => res()); }),
      });
    });
  });
}
