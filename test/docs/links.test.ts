/**
 * Every relative link of the manual (README.md and src/docs/*.md) points at a
 * file that exists and, when it names an #anchor, at a heading of that page.
 * The manual is self-contained: it never cites documents users of the
 * repository do not have (the team's private contract).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { ROOT, anchors, links, pages, prose, readPage } from './markdown.js';

test('every relative link and anchor of the manual resolves', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const page of pages()) {
    const text = readPage(page);
    for (const { target, line } of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      checked++;
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const file = path === '' ? page : normalize(join(dirname(page), decodeURIComponent(path)));
      if (file.startsWith('..')) { problems.push(`${page}:${line}: ${target} leaves the repository`); continue; }
      const abs = join(ROOT, file);
      if (!existsSync(abs)) { problems.push(`${page}:${line}: ${target}: no file ${file}`); continue; }
      if (anchor === undefined) continue;
      if (!file.endsWith('.md') || statSync(abs).isDirectory()) { problems.push(`${page}:${line}: ${target}: an anchor into a file that is not Markdown`); continue; }
      if (!anchors(readPage(file)).has(anchor)) problems.push(`${page}:${line}: ${target}: ${file} has no heading #${anchor}`);
    }
  }
  assert.ok(checked > 50, `only ${checked} relative links found: is the parser broken?`);
  assert.deepEqual(problems, []);
});

test('the manual cites no document outside the repository', () => {
  const problems: string[] = [];
  for (const page of pages()) {
    readPage(page).split('\n').forEach((line, i) => {
      const m = /SPEC\.md|PROTOCOL\.md|DESIGN\.md|\.\.\/shared|\/work\/|\bSPEC \d/.exec(line);
      if (m) problems.push(`${page}:${i + 1}: ${m[0]}`);
    });
  }
  assert.deepEqual(problems, []);
});

test('every page of src/docs is linked from README.md', () => {
  const readme = prose(readPage('README.md'));
  for (const page of pages().filter((p) => p !== 'README.md')) {
    assert.ok(readme.includes(`](${page})`) || readme.includes(`](${page}#`), `README.md links to ${page}`);
  }
});
