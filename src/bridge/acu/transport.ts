/**
 * The byte pipe under one OSDP bus: a serial port (an RS-485 adapter, or a
 * pseudo-terminal in the tests) through `serialport`. 8 data bits, no
 * parity, 1 stop bit, as OSDP prescribes; only the baud rate varies.
 */
import { SerialPort } from 'serialport';
import { ApbError } from '../../errors.js';

export interface Transport {
  /**
   * Resolves once the bytes are handed to the OS (not when they have left the
   * UART: the bus adds their transmit time at the baud rate to its reply
   * timeout instead of waiting in tcdrain, which would hold one of libuv's
   * few worker threads per port, forever if the device hangs). Rejects on a
   * write error, and when the port closes first.
   */
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
      // writes not called back yet: a port that closes under them never calls back, so they are failed here
      const pending = new Set<(e: Error) => void>();
      port.on('close', (e: Error | null) => {
        closed = true;
        const gone = new Error(`serial port ${path} closed${e ? `: ${e.message}` : ''}`);
        for (const fail of pending) fail(gone);
        pending.clear();
        for (const c of closers) c(e ?? null);
      });
      port.on('error', () => undefined); // surfaced through 'close' or the write callbacks
      resolve({
        write: (bytes) => new Promise<void>((res, rej) => {
          if (closed) { rej(new Error(`serial port ${path} is closed`)); return; }
          let done = false;
          const fail = (e: Error): void => { if (!done) { done = true; rej(e); } };
          pending.add(fail);
          port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (e) => {
            pending.delete(fail);
            if (done) return;
            done = true;
            if (e) rej(e); else res();
          });
        }),
        onData: (cb) => { port.on('data', (d: Buffer) => cb(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))); },
        onClose: (cb) => { closers.push(cb); },
        close: () => new Promise<void>((res) => { if (closed || !port.isOpen) { res(); return; } port.close(() => res()); }),
      });
    });
  });
}
