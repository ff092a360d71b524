/**
 * Just enough Markdown for the documentation tests: the pages of the manual,
 * their fenced code blocks (with info string and line number), their links
 * and their headings' anchors as GitHub computes them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** the repository (this file runs from build/test/docs/) */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** README.md and every src/docs/*.md, as paths relative to the repository */
export function pages(): string[] {
  const docs = readdirSync(join(ROOT, 'src', 'docs')).filter((f) => f.endsWith('.md')).sort();
  return ['README.md', ...docs.map((f) => `src/docs/${f}`)];
}

export function readPage(page: string): string {
  return readFileSync(join(ROOT, page), 'utf8');
}

export interface Block {
  /** the info string's words: ```sh norun → ['sh', 'norun'] */
  info: string[];
  /** the lines between the fences, the fence's indentation removed */
  lines: string[];
  /** 1-based line of the opening fence */
  line: number;
}

/** The fenced code blocks of a page (``` or ~~~ fences, possibly indented in a list item). */
export function blocks(text: string): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length, fence = open[2]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.slice(Math.min(indent, l.length - l.trimStart().length)));
    }
    out.push({ info: open[3]!.trim().split(/\s+/).filter(Boolean), lines: body, line: i + 1 });
    i = j;
  }
  return out;
}

/** The page's text outside fenced code blocks (blocks become blank lines, so line numbers stay). */
export function prose(text: string): string {
  const lines = text.split('\n');
  for (const b of blocks(text)) for (let k = b.line - 1; k <= b.line + b.lines.length && k < lines.length; k++) lines[k] = '';
  return lines.join('\n');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** Every anchor a page offers: its headings' slugs, repeated ones numbered -1, -2... as GitHub does. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const s = slug(m[1]!);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n === 0 ? s : `${s}-${n}`);
  }
  return out;
}

export interface Link { target: string; line: number }

/** The link and image targets of a page (Markdown, and HTML <img src> / <a href>), outside code blocks and code spans. */
export function links(text: string): Link[] {
  const out: Link[] = [];
  prose(text).split('\n').forEach((line, i) => {
    const bare = line.replace(/(`+)[^`]*?\1/g, '');
    for (const m of bare.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ target: m[1]!, line: i + 1 });
    for (const m of bare.matchAll(/<(?:img|a)\b[^>]*?\b(?:src|href)="([^"]+)"/g)) out.push({ target: m[1]!, line: i + 1 });
  });
  return out;
}
