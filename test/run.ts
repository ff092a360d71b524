/**
 * `npm test`: runs every build/test/**\/*.test.js with node's test runner.
 * Node 20's `--test` takes no globs, and in directory mode it would also run
 * every helper module under test/, so the file list is collected here.
 * Extra arguments filter by substring: `node build/test/run.js store server`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));

function collect(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect(root, []).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  process.stderr.write(`no test files under ${root}${filters.length ? ' matching ' + filters.join(', ') : ''}; run "npm run build" first\n`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
