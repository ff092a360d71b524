/** Helpers for the adapter tests (not a test file). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApbError } from '../../src/errors.js';
import type { CompiledSite, SiteConfig } from '../../src/config/types.js';

const here = dirname(fileURLToPath(import.meta.url));
/** package root: build/test/adapters → ../../.. */
export const ROOT = join(here, '..', '..', '..');

/** The public vectors: the repo copy, else the shared contract folder beside the repo. */
export function loadVectors(name: 'wiegand' | 'osdp'): any {
  for (const p of [join(ROOT, 'test', 'adapters', 'vectors', `${name}.json`), join(ROOT, '..', 'shared', 'vectors', `${name}.json`)]) {
    if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8'));
  }
  throw new Error(`vectors ${name}.json not found`);
}

export const hexBytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * A CompiledSite carrying only `config`, which is all the adapters read;
 * tables the adapters never touch are left empty.
 */
export function adapterSite(config: Partial<SiteConfig>): CompiledSite {
  const full: SiteConfig = {
    site: 'test', timezone: 'UTC', forgetAfter: 0, maxClockSkew: 300, areas: [], readers: [], controllers: [], credentials: [], users: [],
    wiegandFormats: [], webhooks: [], ...config,
  };
  return { config: full } as unknown as CompiledSite;
}

/** Runs f; returns the ApbError it throws, or fails if it throws anything else or nothing. */
export function apbError(f: () => unknown): ApbError {
  try { f(); } catch (e) {
    if (e instanceof ApbError) return e;
    throw new Error(`expected an ApbError, got ${e instanceof Error ? e.stack : String(e)}`);
  }
  throw new Error('expected an ApbError, nothing was thrown');
}
