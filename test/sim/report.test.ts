/**
 * The bench report: runBench with fake modules writes results.json,
 * RESULTS.md and SVGs, keeps other sections when one is re-run, shows a
 * failing module's error in its section and exits non-zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench } from '../../bench/run.js';
import { BenchFailure, fmtCell, loadResults, renderMarkdownTable, renderTextTable } from '../../bench/report.js';
import { barChart, lineChart } from '../../bench/svg.js';
import type { BenchSection } from '../../bench/types.js';

const fake = (n: number): BenchSection => ({
  name: 'http',
  tables: [{ title: 'fake table', headers: ['target', 'req/s', 'ratio'], rows: [['bare', 1000 * n, 1], ['apb', 900 * n, 0.9]] }],
  notes: [`note ${n}`, `req/s ${n} (target ≥ 0.8×): ${n > 1 ? 'MET' : 'NOT MET'}.`],
  svgs: [{ file: 'fake.svg', caption: 'fake chart', svg: lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[1, 2], [2, 3]] }] }) }],
});

test('tables render aligned (text) and as Markdown', () => {
  const t = fake(1).tables[0]!;
  const text = renderTextTable(t).split('\n');
  assert.equal(text[0], 'fake table');
  assert.match(text[1]!, /^target\s+req\/s\s+ratio$/);
  assert.equal(new Set(text.slice(1).map((l) => l.length)).size, 1, 'every line has the same width');
  const md = renderMarkdownTable(t).split('\n');
  assert.deepEqual(md.slice(0, 3), ['| target | req/s | ratio |', '|---|---:|---:|', '| bare | 1,000 | 1 |']);
  assert.equal(fmtCell(0.912), '0.91');
  assert.equal(fmtCell(12345.6), '12,346');
});

test('runBench writes RESULTS.md, keeps other sections, and a failing module fails the run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apb-report-'));
  const out: string[] = [];
  try {
    const modules = {
      http: async () => ({ bench: async () => fake(1) }),
      ws: async () => ({ bench: async (): Promise<BenchSection> => { throw new Error('boom from ws'); } }),
      scenarios: async () => ({ bench: async (): Promise<BenchSection> => { throw new BenchFailure('violations differ: 3 vs 4', { name: 'scenarios', tables: [{ title: 'check', headers: ['a'], rows: [['x']] }], notes: [] }); } }),
    };
    const code = await runBench(['http', 'ws', 'scenarios'], { quick: true, dir, modules, out: (s) => out.push(s), log: () => {} });
    assert.equal(code, 1);
    const md = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    assert.match(md, /## http/);
    assert.match(md, /\| apb \| 900 \| 0\.90 \|/);
    assert.match(md, /!\[fake chart\]\(fake\.svg\)/);
    assert.match(md, /## ws[\s\S]*FAILED[\s\S]*boom from ws/);
    assert.match(md, /## scenarios[\s\S]*violations differ: 3 vs 4[\s\S]*### check/);
    assert.match(readFileSync(join(dir, 'fake.svg'), 'utf8'), /^<svg[\s\S]*<\/svg>\n$/);
    assert.ok(out.some((s) => s.includes('FAILED: boom from ws')));
    // re-running one section replaces it and keeps the others
    modules.http = async () => ({ bench: async () => fake(2) });
    assert.equal(await runBench(['http'], { quick: true, dir, modules, out: () => {}, log: () => {} }), 0);
    const r = loadResults(join(dir, 'results.json'));
    assert.deepEqual(Object.keys(r.sections).sort(), ['http', 'scenarios', 'ws']);
    assert.equal(r.sections.http!.tables[0]!.rows[0]![1], 2000);
    assert.equal(r.sections.http!.error, undefined);
    assert.match(r.sections.ws!.error!, /boom from ws/);
    const md2 = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    assert.match(md2, /\| bare \| 2,000 \|/);
    assert.match(md2, /boom from ws/);
    assert.match(md2, /## Targets[^]*- \*\*http\*\*: req\/s 2 \(target ≥ 0\.8×\): MET\./);
    assert.match(md, /- \*\*http\*\*: req\/s 1 \(target ≥ 0\.8×\): NOT MET\./);
    // an unknown section is an error in its own section
    assert.equal(await runBench(['nope'], { quick: true, dir, modules, out: () => {}, log: () => {} }), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(existsSync(dir), false);
});

test('charts: one polyline per series, one rect per bar', () => {
  const l = lineChart({ title: 'a <b>', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 'p50', points: [[1, 10], [2, 100]] }, { name: 'p99', points: [[1, 1000], [2, 5000]] }] });
  assert.equal((l.match(/<polyline/g) ?? []).length, 2);
  assert.ok(l.includes('a &lt;b&gt;'));
  const b = barChart({ title: 't', yLabel: 'y', categories: ['1', '16', '64'], series: [{ name: 'echo', values: [1, 2, 3] }, { name: 'apb', values: [1, null, 2] }] });
  assert.equal((b.match(/<title>/g) ?? []).length, 5, 'a null value draws no bar');
});
