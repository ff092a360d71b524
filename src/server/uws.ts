/**
 * Loads uWebSockets.js' native addon ourselves.
 *
 * The package we depend on (npm alias `uWebSockets.js` →
 * @trufflesuite/uws-js-unofficial) silently falls back to a pure-JS
 * implementation in its src/uws.js when the binary does not load
 * (DESIGN.md). That fallback is an order of magnitude slower and behaves
 * differently under backpressure, so we load
 * binaries/uws_<platform>_<arch>_<ABI>.node directly and refuse to start
 * unless the operator explicitly allows the fallback.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ApbError } from '../errors.js';
import type * as UWS from 'uWebSockets.js';

export type Uws = typeof UWS;

export interface LoadedUws { uws: Uws; native: boolean; file: string }

const require = createRequire(import.meta.url);
let cached: LoadedUws | undefined;

export function nativeBinaryPath(): string {
  const pkg = require.resolve('uWebSockets.js/package.json');
  return join(dirname(pkg), 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
}

/**
 * Returns the native module, or (only with allowJsFallback) the package's
 * JS fallback after calling `warn`. Throws ApbError('native_unavailable').
 */
export function loadUws(opts: { allowJsFallback?: boolean; warn?: (msg: string) => void } = {}): LoadedUws {
  if (cached && (cached.native || opts.allowJsFallback)) return cached;
  let file = '';
  try {
    file = nativeBinaryPath();
    if (process.env.APB_FORCE_UWS_FALLBACK === '1') throw new Error('APB_FORCE_UWS_FALLBACK=1');
    cached = { uws: require(file) as Uws, native: true, file };
    return cached;
  } catch (e) {
    const why = `uWebSockets.js native binary ${file || '(unresolved)'} could not be loaded: ${(e as Error).message}`;
    if (!opts.allowJsFallback) {
      throw new ApbError('native_unavailable', `${why}; refusing the slow JS fallback (start with --allow-js-fallback to accept it)`);
    }
    opts.warn?.(`${why}; running on the pure-JS fallback because --allow-js-fallback was given: performance will be degraded`);
    const fallback = join(dirname(require.resolve('uWebSockets.js/package.json')), 'dist', 'index.js');
    cached = { uws: require(fallback) as Uws, native: false, file: fallback };
    return cached;
  }
}
