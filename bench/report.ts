/**
 * Bench results: the per-section store (bench/results.json) and its
 * renderings: aligned text tables for the terminal and bench/RESULTS.md.
 *
 * Running one section (`bench:http`) replaces only that section in
 * results.json; RESULTS.md is always regenerated from the whole file, so the
 * other sections' last results stay. SVG text is written next to RESULTS.md
 * as files and only their names are kept in results.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchSection, BenchTable } from './types.js';

export const SECTION_ORDER = ['core', 'store', 'snapshot', 'adapters', 'http', 'ws', 'scenarios', 'bridge'] as const;

export interface EnvInfo {
  date: string; node: string; platform: string; cpu: string; cores: number;
  memoryGiB: number; uwsNative: boolean | null; uwsDetail: string;
}

export interface SectionResult {
  name: string;
  ranAt: string;
  quick: boolean;
  durationMs: number;
  env: EnvInfo;
  tables: BenchTable[];
  notes: string[];
  svgs: { file: string; caption: string }[];
  /** set when the module threw (or its checks failed): the message shown in its section */
  error?: string;
}

export interface ResultsFile { version: 1; updatedAt: string; env: EnvInfo | null; sections: Record<string, SectionResult> }

/**
 * A benchmark whose own checks failed (e.g. scenario violations that do not
 * match the injected ones). It carries the section measured so far, so the
 * report still shows the tables next to the failure.
 */
export class BenchFailure extends Error {
  readonly section: BenchSection;
  constructor(message: string, section: BenchSection) { super(message); this.name = 'BenchFailure'; this.section = section; }
}

export function emptyResults(): ResultsFile { return { version: 1, updatedAt: '', env: null, sections: {} }; }

export function loadResults(file: string): ResultsFile {
  if (!existsSync(file)) return emptyResults();
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
    if (r && r.version === 1 && r.sections && typeof r.sections === 'object') return r;
  } catch { /* a damaged file is replaced */ }
  return emptyResults();
}

/** Folds one section's outcome into the results (replacing an older run of it). */
export function mergeSection(results: ResultsFile, r: SectionResult): ResultsFile {
  return { version: 1, updatedAt: r.ranAt, env: r.env, sections: { ...results.sections, [r.name]: r } };
}

export function sectionResult(name: string, env: EnvInfo, quick: boolean, durationMs: number,
  section: BenchSection | null, error?: string): SectionResult {
  const out: SectionResult = {
    name, ranAt: env.date, quick, durationMs, env,
    tables: section?.tables ?? [], notes: section?.notes ?? [],
    svgs: (section?.svgs ?? []).map((s) => ({ file: s.file, caption: s.caption })),
  };
  if (error !== undefined) out.error = error;
  return out;
}

/** Numbers as the tables show them: integers grouped, fractions to 3 significant digits. */
export function fmtCell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function isNumericCol(t: BenchTable, c: number): boolean {
  return t.rows.length > 0 && t.rows.every((r) => typeof r[c] === 'number' || r[c] === '' || r[c] === '-');
}

export function renderTextTable(t: BenchTable): string {
  const cells = [t.headers, ...t.rows.map((r) => t.headers.map((_, c) => fmtCell(r[c] ?? '')))];
  const widths = t.headers.map((_, c) => Math.max(...cells.map((r) => String(r[c] ?? '').length)));
  const num = t.headers.map((_, c) => isNumericCol(t, c));
  const line = (r: (string | number)[]) => r.map((v, c) => num[c] ? String(v).padStart(widths[c]!) : String(v).padEnd(widths[c]!)).join('  ').trimEnd();
  return [t.title, line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function mdEsc(s: string): string { return s.replace(/\|/g, '\\|'); }

export function renderMarkdownTable(t: BenchTable): string {
  const num = t.headers.map((_, c) => isNumericCol(t, c));
  return [
    `| ${t.headers.map(mdEsc).join(' | ')} |`,
    `|${num.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${t.headers.map((_, c) => mdEsc(fmtCell(r[c] ?? ''))).join(' | ')} |`),
  ].join('\n');
}

export function envLine(e: EnvInfo): string {
  const uws = e.uwsNative === null ? 'unknown' : e.uwsNative ? 'native' : 'JS fallback';
  return `Node ${e.node} on ${e.platform}, ${e.cpu} × ${e.cores} cores, ${e.memoryGiB.toFixed(1)} GiB RAM, uWebSockets.js ${uws}`;
}

export function renderText(r: SectionResult): string {
  const out = [`== ${r.name} ==`];
  if (r.error) out.push(`FAILED: ${r.error}`);
  for (const t of r.tables) out.push('', renderTextTable(t));
  if (r.notes.length) out.push('', ...r.notes.map((n) => `* ${n}`));
  return out.join('\n') + '\n';
}

export function renderMarkdown(results: ResultsFile): string {
  const out: string[] = ['# Benchmark results', ''];
  out.push('Generated by `npm run bench` (`node build/bench/run.js all`); each section also runs alone',
    '(`npm run bench:core`, `bench:store`, `bench:adapters`, `bench:http`, `bench:ws`, `bench:scenarios`).',
    'Absolute figures drift by tens of percent between runs on a shared 2-core machine, so every table',
    'carries a baseline measured in the same run and the ratio to it.', '');
  if (results.env) out.push(`Last updated ${results.updatedAt}: ${envLine(results.env)}.`, '');
  const names = [...SECTION_ORDER.filter((n) => results.sections[n]), ...Object.keys(results.sections).filter((n) => !(SECTION_ORDER as readonly string[]).includes(n)).sort()];
  if (names.length) {
    out.push('| section | ran at | mode | took | status |', '|---|---|---|---:|---|');
    for (const n of names) {
      const s = results.sections[n]!;
      out.push(`| [${n}](#${n}) | ${s.ranAt} | ${s.quick ? 'quick' : 'full'} | ${(s.durationMs / 1000).toFixed(1)} s | ${s.error ? '**FAILED**' : 'ok'} |`);
    }
    out.push('');
  }
  // where each target stands: the sections' notes that judge a target (MET / NOT MET)
  const judged = names.flatMap((n) => results.sections[n]!.notes.filter((x) => /target/i.test(x) && /\bmet\b/i.test(x)).map((x) => `- **${n}**: ${x}`));
  if (judged.length) out.push('## Targets (DESIGN.md "Figures to reach")', '', ...judged, '');
  for (const n of names) {
    const s = results.sections[n]!;
    out.push(`## ${n}`, '');
    const sameEnv = results.env && envLine(results.env) === envLine(s.env);
    out.push(`Ran ${s.ranAt}${s.quick ? ' with `--quick` (smaller sizes, shorter runs)' : ''}${sameEnv ? '' : ` on ${envLine(s.env)}`}.`, '');
    if (s.error) out.push('**FAILED:**', '', '```', s.error, '```', '');
    for (const t of s.tables) out.push(`### ${t.title}`, '', renderMarkdownTable(t), '');
    if (s.notes.length) out.push(...s.notes.map((x) => `- ${x}`), '');
    for (const g of s.svgs) out.push(`![${g.caption}](${g.file})`, '', `*${g.caption}*`, '');
  }
  return out.join('\n');
}

/** Writes the section's SVGs into dir, folds it into dir/results.json and rewrites dir/RESULTS.md. */
export function writeSection(dir: string, r: SectionResult, section: BenchSection | null): ResultsFile {
  mkdirSync(dir, { recursive: true });
  for (const g of section?.svgs ?? []) writeFileSync(join(dir, g.file), g.svg);
  const file = join(dir, 'results.json');
  const merged = mergeSection(loadResults(file), r);
  writeFileSync(file, JSON.stringify(merged, null, 1) + '\n');
  writeFileSync(join(dir, 'RESULTS.md'), renderMarkdown(merged));
  return merged;
}
