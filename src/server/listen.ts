/**
 * Listening without sharing the port. uWebSockets.js sets
 * SO_REUSEPORT by default, so a second server on the same host:port starts
 * and the kernel splits connections between the two engines. We listen with
 * LIBUS_LISTEN_EXCLUSIVE_PORT (no SO_REUSEPORT): the bind fails as it does
 * for any other server. uWS only reports "false", not why: one plain bind
 * with node:net tells an address in use from the other causes.
 */
import { createServer } from 'node:net';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { ApbError } from '../errors.js';

/** uWS ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT (a const enum in its typings) */
export const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

type ListenWithOptions = (host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void) => unknown;

export function listenExclusive(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    (app.listen as unknown as ListenWithOptions).call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (s) => {
      if (s) resolve(s);
      else void whyNot(host, port).then(reject);
    });
  });
}

async function whyNot(host: string, port: number): Promise<ApbError> {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const code = await new Promise<string | undefined>((resolve) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
  if (code === 'EADDRINUSE') return new ApbError('address_in_use', `cannot listen on ${where}: the address is already in use (another apb or another server holds it)`, { host, port });
  return new ApbError('internal', `cannot listen on ${where}${code ? `: ${code}` : ''}`, { host, port });
}
