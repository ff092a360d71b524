/**
 * Conformance: golden replay cases written from SPEC.md alone (issue 2, "Done
 * when": `apb replay` matches SPEC on cases written independently of the
 * project). Each test/conformance/cases/<name>.yaml holds a site (SPEC 10), the
 * input lines (SPEC 11) and, paired with each, the expected reply line.
 *
 * Every case runs through the real CLI in a child process, once on the
 * default core and once on `--core reference`, and is compared line by line.
 * Decisions and acks must match exactly (as JSON values, key order free);
 * for an error only `t` and `code` are compared, and `message` must be a
 * non-empty string (its wording is not part of the contract).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = dirname(fileURLToPath(import.meta.url)); // build/test/conformance
const MAIN = resolve(here, '../../src/cli/main.js');
const CASES = resolve(here, '../../../test/conformance/cases'); // the YAML stays in the source tree

interface Step { in: string; out: string; note?: string }
/** `explain: true`: the case runs with --explain (SPEC 13.3) */
interface Case { file: string; name: string; spec: string; site: unknown; steps: Step[]; explain?: boolean }

function loadCases(): Case[] {
  return readdirSync(CASES).filter((f) => f.endsWith('.yaml')).sort().map((file) => {
    const doc = YAML.parse(readFileSync(join(CASES, file), 'utf8')) as Case;
    assert.ok(doc && typeof doc.name === 'string' && doc.site && Array.isArray(doc.steps) && doc.steps.length > 0, `${file}: malformed case`);
    for (const [i, s] of doc.steps.entries()) {
      assert.equal(typeof s.in, 'string', `${file} step ${i + 1}: "in" must be a string`);
      assert.equal(typeof s.out, 'string', `${file} step ${i + 1}: "out" must be a string`);
      JSON.parse(s.out); // the expectation itself must be JSON
    }
    return { ...doc, file };
  });
}

interface Run { code: number | null; stdout: string; stderr: string }

function replay(sitePath: string, eventsPath: string, core: string[]): Promise<Run> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [MAIN, 'replay', '--config', sitePath, '--events', eventsPath, ...core], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000); // bounded: never hang the suite
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); rej(e); });
    child.on('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

/** Why `actual` does not match `expected` (one reply line), or null when it does. */
function mismatch(expected: Record<string, unknown>, actualText: string | undefined): string | null {
  if (actualText === undefined) return 'no output line';
  let actual: unknown;
  try { actual = JSON.parse(actualText); } catch { return 'output line is not JSON'; }
  if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return 'output line is not a JSON object';
  const a = actual as Record<string, unknown>;
  if (expected.t === 'error') {
    if (a.t !== 'error' || a.code !== expected.code) return 'different reply';
    if (typeof a.message !== 'string' || a.message.length === 0) return 'error without a message';
    return null;
  }
  try { assert.deepStrictEqual(a, expected); return null; } catch { return 'different reply'; }
}

const cases = loadCases();
test('the conformance cases are present', () => { assert.ok(cases.length >= 40, `${cases.length} cases in ${CASES}`); });
let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'apb-conformance-')); });
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

for (const [label, coreArgs] of [['default core', []], ['reference core', ['--core', 'reference']]] as const) {
  describe(`conformance: apb replay (${label})`, { concurrency: 2 }, () => {
    for (const c of cases) {
      test(c.name, async () => {
        const tag = `${c.name}-${coreArgs.length ? 'ref' : 'def'}`;
        const sitePath = join(dir, `${tag}.yaml`);
        const eventsPath = join(dir, `${tag}.jsonl`);
        writeFileSync(sitePath, YAML.stringify(c.site));
        writeFileSync(eventsPath, c.steps.map((s) => s.in).join('\n') + '\n');
        const run = await replay(sitePath, eventsPath, [...coreArgs, ...(c.explain ? ['--explain'] : [])]);
        assert.equal(run.code, 0, `${c.file}: apb replay exited ${run.code}\n${run.stderr}`);
        const lines = run.stdout.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        const problems: string[] = [];
        c.steps.forEach((s, i) => {
          const why = mismatch(JSON.parse(s.out) as Record<string, unknown>, lines[i]);
          if (why) {
            problems.push(`  line ${i + 1} (${why})${s.note ? ` [${s.note}]` : ''}\n    in:       ${s.in}\n    expected: ${s.out}\n    actual:   ${lines[i] ?? '(none)'}`);
          }
        });
        if (lines.length !== c.steps.length) problems.push(`  ${lines.length} output lines for ${c.steps.length} input lines`);
        assert.ok(problems.length === 0, `${c.file} (${c.spec}) on the ${label}:\n${problems.join('\n')}`);
      });
    }
  });
}
