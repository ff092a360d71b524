/**
 * The dashboard (src/dashboard/) served at `/`. The directory is listed
 * once at start-up and only those files are served: a request path is a map
 * key, never joined onto the file system, so no traversal is possible.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
  '.json': 'application/json', '.woff2': 'font/woff2', '.txt': 'text/plain; charset=utf-8',
};

/** The directory holding package.json (works from src/ under ts-node and from build/src/). */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let d = from;
  for (;;) {
    if (existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) return from;
    d = up;
  }
}

export interface StaticFile { path: string; type: string }

export class StaticFiles {
  readonly files = new Map<string, StaticFile>();
  constructor(readonly dir: string = join(packageRoot(), 'src', 'dashboard')) {
    if (existsSync(dir)) this.scan(dir);
  }

  private scan(d: string): void {
    for (const name of readdirSync(d)) {
      if (name.startsWith('.')) continue;
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) { this.scan(p); continue; }
      const type = TYPES[extname(name).toLowerCase()];
      if (!type || name.endsWith('.ts')) continue;
      this.files.set('/' + relative(this.dir, p).split(sep).join('/'), { path: p, type });
    }
  }

  /** The file for a URL path ("/" → /index.html), read fresh so edits show without a restart. */
  lookup(url: string): { data: Buffer; type: string } | undefined {
    const key = url === '/' || url === '' ? '/index.html' : url;
    const f = this.files.get(key);
    if (!f) return undefined;
    try { return { data: readFileSync(f.path), type: f.type }; } catch { return undefined; }
  }
}
