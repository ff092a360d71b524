/**
 * Worker-thread entry of loadSiteTextAsync (load.ts): parses, checks and
 * compiles one site text off the main thread and posts back the
 * LoadedSite's config and tables (structured clone: Maps, typed arrays and
 * bigints survive), or the ApbError's code, message and detail.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isApbError } from '../errors.js';
import { loadSiteText } from './load.js';

const { text, name } = workerData as { text: string; name: string };
try {
  const { site } = loadSiteText(text, name);
  parentPort!.postMessage({ ok: true, site });
} catch (e) {
  parentPort!.postMessage(isApbError(e)
    ? { ok: false, code: e.code, message: e.message, detail: e.detail }
    : { ok: false, code: 'internal', message: (e as Error).message ?? String(e) });
}
