/**
 * Reads a site file (YAML; JSON is YAML) into a validated SiteConfig with
 * every default filled in, and its compiled tables. Every problem is
 * collected with its path (`areas[2].parent: unknown area "lobby"`); any
 * problem throws ApbError('invalid_config', <first line>, { errors }).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-thread.js';
import { ApbError, type ErrorCode } from '../errors.js';
import { checkWiegandFormats } from '../adapters/wiegand/formats.js';
import { compileSite } from './compile.js';
import { crossCheck } from './crossref.js';
import { INVALID, type Issue } from './schema-kit.js';
import { siteSchema } from './schema.js';
import type { CompiledSite, SiteConfig } from './types.js';

export { compileSite } from './compile.js';
export type { Issue } from './schema-kit.js';

export interface LoadedSite { config: SiteConfig; site: CompiledSite; text: string }

/** One line per problem: `path: message` (just the message for whole-file problems). */
export function formatIssue(i: Issue): string {
  return i.path ? `${i.path}: ${i.message}` : i.message;
}

function fail(errors: Issue[]): never {
  throw new ApbError('invalid_config', formatIssue(errors[0]!), { errors });
}

/** Checks a parsed document (e.g. from JSON.parse or yaml); returns the problems, or the config. */
export function checkSiteDocument(doc: unknown): { config: SiteConfig; issues: [] } | { config: null; issues: Issue[] } {
  const issues: Issue[] = [];
  const config = siteSchema.check(doc, '', issues);
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) crossCheck(doc as Record<string, unknown>, issues);
  if (issues.length || config === INVALID) return { config: null, issues: issues.length ? issues : [{ path: '', message: 'invalid site file' }] };
  // The Wiegand adapter's own geometry rules (built-in name clashes, overlapping bits), on the typed formats.
  const wiegand = checkWiegandFormats(config.wiegandFormats);
  if (wiegand.length) return { config: null, issues: wiegand };
  return { config, issues: [] };
}

export function loadSiteText(text: string, name = 'site file'): LoadedSite {
  if (text.trim() === '') fail([{ path: '', message: `${name} is empty` }]);
  const doc = parseDocument(text, { intAsBigInt: true, uniqueKeys: true, prettyErrors: true, strict: true });
  if (doc.errors.length) {
    // prettyErrors messages read "<what> at line L, column C:" followed by an excerpt
    fail(doc.errors.map((e) => ({ path: '', message: `${name} is not valid YAML or JSON: ${e.message.split('\n')[0]!.replace(/:$/, '')}` })));
  }
  let value: unknown;
  try { value = doc.toJS({ maxAliasCount: 1000 }); } catch (e) { fail([{ path: '', message: `${name}: ${(e as Error).message}` }]); }
  if (value === null || value === undefined) fail([{ path: '', message: `${name} is empty (only comments or null)` }]);
  if (typeof value !== 'object' || Array.isArray(value)) {
    fail([{ path: '', message: `${name} must be a map of settings (site, timezone, areas, ...), got ${Array.isArray(value) ? 'a list' : typeof value === 'bigint' || typeof value === 'number' ? 'a number' : 'a ' + typeof value}` }]);
  }
  const r = checkSiteDocument(value);
  if (!r.config) fail(r.issues);
  return { config: r.config, site: compileSite(r.config), text };
}

/** Texts up to this size are loaded on the calling thread: a worker's start-up would cost more than it saves. */
export const OFF_THREAD_BYTES = 64 * 1024;
let lastAsync: Promise<unknown> = Promise.resolve();

/**
 * loadSiteText for a running server's reload: a large site (20,000 readers
 * take over a second to parse) is parsed, checked and compiled in a worker
 * thread so decisions keep flowing meanwhile. Calls resolve in call order,
 * so two reloads apply in the order they were asked for.
 */
export function loadSiteTextAsync(text: string, name = 'site file'): Promise<LoadedSite> {
  const run = text.length <= OFF_THREAD_BYTES ? Promise.resolve().then(() => loadSiteText(text, name)) : inWorker(text, name);
  run.catch(() => undefined); // handled through `ordered`, possibly later than this tick
  const ordered = lastAsync.then(() => run, () => run);
  lastAsync = ordered.catch(() => undefined);
  return ordered;
}

function inWorker(text: string, name: string): Promise<LoadedSite> {
  return new Promise<LoadedSite>((resolve, reject) => {
    let worker: Worker;
    try {
      worker = startWorker(new URL('./load-worker.js', import.meta.url), { workerData: { text, name } });
    } catch {
      resolve(loadSiteText(text, name)); // no worker threads here: load in place
      return;
    }
    let done = false;
    worker.once('message', (m: { ok: true; site: CompiledSite } | { ok: false; code: ErrorCode; message: string; detail?: unknown }) => {
      done = true;
      if (m.ok) resolve({ config: m.site.config, site: m.site, text });
      else reject(new ApbError(m.code, m.message, m.detail));
      void worker.terminate();
    });
    worker.once('error', (e) => { if (!done) { done = true; reject(new ApbError('internal', `site loader worker failed: ${e.message}`)); } });
    worker.once('exit', (code) => { if (!done) { done = true; reject(new ApbError('internal', `site loader worker exited with code ${code}`)); } });
  });
}

/** The text of a site file, or invalid_config saying why it cannot be read. */
export function readSiteFile(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    fail([{ path: '', message: `cannot read site file "${path}": ${why}` }]);
  }
}

export function loadSiteFile(path: string): LoadedSite {
  return loadSiteText(readSiteFile(path), path);
}
