/** Shared fixtures of the config tests (not a test file). */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApbError } from '../../src/errors.js';
import { loadSiteText } from '../../src/config/load.js';

/** package root, from build/test/config/ */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(ROOT, 'build', 'src', 'cli', 'main.js');
export const DEMO = join(ROOT, 'src', 'demo');

/** A small valid site as a plain object (tests mutate a copy and feed it as JSON text). */
export function baseDoc(): Record<string, any> {
  return {
    site: 'test',
    timezone: 'Europe/London',
    areas: [{ id: 'building' }, { id: 'lab', parent: 'building', entry: 'hard' }],
    readers: [
      { id: 'r1', from: 'outside', to: 'building', controller: 'c1' },
      { id: 'r2', from: 'building', to: 'lab', controller: 'c1' },
    ],
    controllers: [{ id: 'c1', token: 'tok-c1-long-test-token' }],
    users: [{ name: 'desk', token: 'tok-desk-long-test-token', role: 'operator' }],
  };
}

export const load = (doc: unknown) => loadSiteText(JSON.stringify(doc));

/** The error list of an invalid document/text (fails if it loads). */
export function errorsOf(input: unknown): { path: string; message: string }[] {
  try {
    if (typeof input === 'string') loadSiteText(input); else load(input);
  } catch (e) {
    if (e instanceof ApbError && e.code === 'invalid_config') return (e.detail as { errors: { path: string; message: string }[] }).errors;
    throw e;
  }
  throw new Error('expected invalid_config, but the site loaded');
}
