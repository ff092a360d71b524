/**
 * apb runs from a production install (`npm ci --omit=dev`): every module a
 * command loads, followed import by import from the compiled command, is
 * node's own, ours, or a package listed under `dependencies` (never one only
 * under `devDependencies`, such as fast-check or playwright-core). The bridge
 * is checked on its own too: it does not even use the simulator's `ws`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { COMMANDS } from '../../src/cli/usage.js';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { ROOT } from './util.js';

const IMPORT = /(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[;\s])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function graph(entries: string[]): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>(); // package → first file importing it
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) { todo.push(resolve(dirname(f), spec)); continue; }
      if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!packages.has(name)) packages.set(name, f.slice(ROOT.length + 1));
    }
  }
  return { files, packages };
}

test('apb bridge loads only production dependencies', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const { files, packages } = graph([join(ROOT, 'build', 'src', 'bridge', 'cli.js'), join(ROOT, 'build', 'src', 'bridge', 'bridge.js')]);
  assert.ok(files.size > 20, `${files.size} modules followed`);
  assert.ok(packages.has('serialport') && packages.has('lmdb') && packages.has('msgpackr'), [...packages.keys()].join(', '));
  const notProd = [...packages].filter(([name]) => !(name in pkg.dependencies)).map(([n, f]) => `${n} (imported by ${f})`);
  assert.deepEqual(notProd, [], 'packages outside `dependencies`');
  assert.ok(!packages.has('ws'), 'the WebSocket client is the bridge\'s own');
});

test('every apb command loads only production dependencies, and the build needs only them', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
  const cli = join(ROOT, 'build', 'src', 'cli');
  const entries = [join(cli, 'main.js'), ...Object.values(COMMANDS).map((c) => resolve(cli, c.file))];
  const { files, packages } = graph(entries);
  assert.ok(files.size > 100, `${files.size} modules followed`);
  for (const p of ['lmdb', 'msgpackr', 'yaml', 'pino', 'ws']) assert.ok(packages.has(p), `${p} is among ${[...packages.keys()].join(', ')}`);
  const notProd = [...packages].filter(([name]) => !(name in pkg.dependencies)).map(([n, f]) => `${n} (imported by ${f})`);
  assert.deepEqual(notProd, [], 'packages outside `dependencies`');
  // `prepare` builds on install: the compilers and the types of the src-only build are dependencies too
  for (const p of ['typescript', 'assemblyscript', '@types/node', '@types/ws']) assert.ok(p in pkg.dependencies, `${p} is a dependency`);
  const src = JSON.parse(readFileSync(join(ROOT, 'src', 'tsconfig.json'), 'utf8')) as { include: string[] };
  assert.deepEqual(src.include, ['./**/*.ts']);
  assert.match(pkg.scripts.tsbuild!, /src\/tsconfig\.json/);
});
