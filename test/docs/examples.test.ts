/**
 * Every example of the manual runs as written. The convention (also in
 * README "The documentation and its tests"), by the fenced block's info string:
 *
 *   ```sh          a bash script (set -e -o pipefail); must exit 0.
 *   ```console     a transcript: `$ cmd` lines (continued by a trailing `\`, `|`
 *                  or `&&`, by `> ` lines, or by a here-document) each followed by their expected output,
 *                  stdout and stderr together. In expected lines `…` matches
 *                  any text, a line holding only `…` any number of lines, and
 *                  a 13-digit number (epoch ms) any 13-digit number. A command
 *                  must exit 0 unless the next command is `echo $?`.
 *   ```sh norun    shown only (npm start, hardware...).
 *   ```sh server   one `npx apb serve ...`: started on a free port and a fresh
 *                  data directory, must print "apb serving", then SIGTERM → exit 0.
 *   ```msgpack     annotated hex bytes (`84  map of 4` per line), directly after
 *                  a ```json block holding the value they must decode to.
 *                  `msgpack send` is sent as one WebSocket frame by controller
 *                  gate-north; the next `msgpack reply` must be the exact reply
 *                  (`??` stands for any byte).
 *   ```python      run with python3 when it can import msgpack (else skipped, said so).
 *
 * Each page with runnable blocks gets a fresh demo server (src/demo/stadium.yaml)
 * and runs its blocks in page order. Commands run in a scratch directory under
 * build/ that links src/, with the server's data in ./data; `8080` in
 * `127.0.0.1:8080` / `localhost:8080` is rewritten to the server's port; `npx`
 * is a shim that runs `npx apb` as `node build/src/cli/main.js` (the real npx
 * costs half a second a call; one test below checks it finds the same file).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { unpackr, toJson } from '../../src/server/codec.js';
import { ROOT, blocks, pages, readPage, type Block } from './markdown.js';

const CLI = join(ROOT, 'build', 'src', 'cli', 'main.js');
const SCRATCH = join(ROOT, 'build', 'docs-examples');
const BLOCK_TIMEOUT_MS = 60_000;

// ── the scratch directory and the npx shim ──

function scratch(name: string): string {
  const dir = join(SCRATCH, `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, '.bin'), { recursive: true });
  symlinkSync(join(ROOT, 'src'), join(dir, 'src'));
  const realNpx = spawnSync('bash', ['-c', 'command -v npx'], { encoding: 'utf8' }).stdout.trim() || 'npx';
  writeFileSync(join(dir, '.bin', 'npx'), `#!/usr/bin/env bash\nif [ "$1" = apb ]; then shift; exec "${process.execPath}" "${CLI}" "$@"; fi\nexec "${realNpx}" "$@"\n`);
  chmodSync(join(dir, '.bin', 'npx'), 0o755);
  return dir;
}

function env(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(dir, '.bin')}:${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`, APB_LOG_LEVEL: 'warn', NO_COLOR: '1' };
}

// ── the demo server of a page ──

interface Server { proc: ChildProcess; port: number; stderr: () => string }

async function startServer(args: string[], cwd: string, e: NodeJS.ProcessEnv): Promise<Server> {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "apb serving" within 15 s: ${out}${err}`)), 15_000);
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /apb serving http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) before serving: ${out}${err}`)); });
  });
  return { proc, port, stderr: () => err };
}

/** SIGTERM, then the exit code, or the signal's name when it died of one */
async function stopServer(s: Server): Promise<number | string | null> {
  if (s.proc.exitCode !== null) return s.proc.exitCode;
  if (s.proc.signalCode !== null) return s.proc.signalCode;
  const done = new Promise<number | string | null>((r) => s.proc.once('exit', (code, signal) => r(code ?? signal)));
  s.proc.kill('SIGTERM');
  const t = setTimeout(() => s.proc.kill('SIGKILL'), 15_000);
  const code = await done;
  clearTimeout(t);
  return code;
}

/** the test server's address written back as the examples write it */
function unrewrite(text: string, port: number): string {
  return text.replaceAll(`127.0.0.1:${port}`, '127.0.0.1:8080');
}

function rewrite(text: string, port: number): string {
  return text.replace(/\b(127\.0\.0\.1|localhost):8080\b/g, `127.0.0.1:${port}`);
}

interface Run { status: number | null; stdout: string; stderr: string; error?: string }

/** Runs a program in its own process group, so that a timeout also ends whatever it started. */
function run(cmd: string, args: string[], cwd: string, e: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, env: e, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', error: string | undefined;
    p.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    p.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => { error = `timed out after ${BLOCK_TIMEOUT_MS / 1000} s`; try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } }, BLOCK_TIMEOUT_MS);
    p.on('error', (err) => { error = err.message; });
    p.on('close', (status) => {
      clearTimeout(timer);
      try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* the group is gone: nothing left behind */ }
      resolve(error === undefined ? { status, stdout, stderr } : { status, stdout, stderr, error });
    });
    // a block that exits without reading its input: EPIPE on stdin is not a failure (seen under load)
    p.stdin!.on('error', () => undefined);
    p.stdin!.end(input ?? '');
  });
}

function where(page: string, b: Block): string { return `${page}:${b.line} (\`\`\`${b.info.join(' ')})`; }

// ── ```console transcripts ──

interface Step { cmd: string; expected: string[]; line: number }

export function transcript(b: Block): Step[] {
  const steps: Step[] = [];
  const L = b.lines;
  for (let i = 0; i < L.length;) {
    const l = L[i]!;
    if (!l.startsWith('$ ')) {
      if (steps.length === 0) throw new Error(`line ${b.line + 1 + i}: a console block starts with "$ "`);
      steps[steps.length - 1]!.expected.push(l);
      i++;
      continue;
    }
    const cmd = [l.slice(2)];
    const line = b.line + 1 + i;
    i++;
    let heredoc = /<<-?\s*(['"]?)(\w+)\1/.exec(l)?.[2];
    for (;;) {
      const last = cmd[cmd.length - 1]!;
      if (heredoc !== undefined) {
        while (i < L.length && L[i] !== heredoc) cmd.push(L[i++]!);
        if (i < L.length) cmd.push(L[i++]!);
        heredoc = undefined;
      } else if (i < L.length && L[i]!.startsWith('> ')) {
        cmd.push(L[i++]!.slice(2)); // a continuation line, as the shell's PS2 prompt shows it
        heredoc = /<<-?\s*(['"]?)(\w+)\1/.exec(cmd[cmd.length - 1]!)?.[2];
      } else if (/(\\|\||&&)$/.test(last) && i < L.length) {
        cmd.push(L[i++]!);
        heredoc = /<<-?\s*(['"]?)(\w+)\1/.exec(cmd[cmd.length - 1]!)?.[2];
      } else break;
    }
    steps.push({ cmd: cmd.join('\n'), expected: [], line });
  }
  return steps;
}

const MS = /\b\d{13}\b/g;

function normalize(lines: string[]): string[] {
  const out = lines.map((l) => l.replace(/\s+$/, ''));
  while (out.length && out[out.length - 1] === '') out.pop();
  while (out.length && out[0] === '') out.shift();
  return out;
}

/** expected (with … wildcards) against actual, line by line */
export function matches(expected: string[], actual: string[]): boolean {
  const pat = expected.map((l) => l.replace(MS, '0000000000000'));
  const act = actual.map((l) => l.replace(MS, '0000000000000'));
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const k = `${i},${j}`;
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    let r: boolean;
    if (i === pat.length) r = j === act.length;
    else if (pat[i]!.trim() === '…') r = go(i + 1, j) || (j < act.length && go(i, j + 1));
    else {
      const re = new RegExp('^' + pat[i]!.split('…').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
      r = j < act.length && re.test(act[j]!) && go(i + 1, j + 1);
    }
    memo.set(k, r);
    return r;
  };
  return go(0, 0);
}

async function runConsole(page: string, b: Block, cwd: string, e: NodeJS.ProcessEnv, port: number): Promise<string[]> {
  const steps = transcript(b);
  // the marker lines are printed around each command; `(exit $__rc)` hands the previous status to `echo $?`
  let script = 'exec 2>&1\n__rc=0\n';
  steps.forEach((s, i) => {
    script += `printf '\\036CMD ${i}\\n'; (exit "$__rc")\n${rewrite(s.cmd, port)}\n__rc=$?; printf '\\n\\036RC ${i} %d\\n' "$__rc"\n`;
  });
  const r = await run('bash', ['-c', script], cwd, e);
  const problems: string[] = [];
  if (r.error) return [`${where(page, b)}: ${r.error}\n${r.stdout}`];
  const out = r.stdout;
  steps.forEach((s, i) => {
    const start = out.indexOf(`\x1eCMD ${i}\n`);
    const rcAt = out.indexOf(`\x1eRC ${i} `, start);
    if (start < 0 || rcAt < 0) { problems.push(`${page}:${s.line}: \`${s.cmd}\` did not finish:\n${out}`); return; }
    const actual = normalize(out.slice(start + `\x1eCMD ${i}\n`.length, rcAt).split('\n').map((l) => unrewrite(l, port)));
    const rc = Number(/^\x1eRC \d+ (\d+)/.exec(out.slice(rcAt))![1]);
    const next = steps[i + 1];
    if (rc !== 0 && !(next && next.cmd.trim() === 'echo $?')) problems.push(`${page}:${s.line}: \`${s.cmd}\` exited ${rc}:\n${actual.join('\n')}`);
    const expected = normalize(s.expected);
    if (!matches(expected, actual)) {
      problems.push(`${page}:${s.line}: \`${s.cmd}\`\n--- expected\n${expected.join('\n')}\n--- actual\n${actual.join('\n')}`);
    }
  });
  return problems;
}

async function runSh(page: string, b: Block, cwd: string, e: NodeJS.ProcessEnv, port: number): Promise<string[]> {
  const r = await run('bash', ['-c', 'set -e -o pipefail\n' + rewrite(b.lines.join('\n'), port)], cwd, e);
  if (r.error) return [`${where(page, b)}: ${r.error}\n${r.stdout}${r.stderr}`];
  return r.status === 0 ? [] : [`${where(page, b)}: exit ${r.status}\n${r.stdout}${r.stderr}`];
}

async function runServerBlock(page: string, b: Block, cwd: string, e: NodeJS.ProcessEnv): Promise<string[]> {
  const cmd = b.lines.join(' ').replace(/\\\s*/g, ' ').trim();
  const m = /^npx apb (serve\b.*)$/.exec(cmd);
  if (!m) return [`${where(page, b)}: a "sh server" block holds one "npx apb serve ..." command`];
  const args = m[1]!.split(/\s+/).filter(Boolean);
  const dataAt = args.indexOf('--data');
  if (dataAt >= 0) args[dataAt + 1] = join(cwd, `server-data-${b.line}`);
  const portAt = args.indexOf('--port');
  if (portAt >= 0) args[portAt + 1] = '0'; else args.push('--port', '0');
  try {
    const s = await startServer(args, cwd, e);
    // apb serve prints "apb serving" just before it installs its SIGTERM handler: a signal within that
    // instant kills it outright (reported), so give it a moment, as a person at a terminal would
    await new Promise((r) => setTimeout(r, 300));
    const code = await stopServer(s);
    return code === 0 ? [] : [`${where(page, b)}: exited ${code} on SIGTERM\n${s.stderr()}`];
  } catch (err) {
    return [`${where(page, b)}: ${(err as Error).message}`];
  }
}

// ── ```msgpack dumps ──

/** the bytes of an annotated dump; null stands for `??` */
export function dumpBytes(b: Block): (number | null)[] {
  const out: (number | null)[] = [];
  b.lines.forEach((l, i) => {
    if (l.trim() === '') return;
    const m = /^\s*((?:[0-9a-f]{2}|\?\?)(?: (?:[0-9a-f]{2}|\?\?))*)(?:\s{2,}.*|\s*)$/.exec(l);
    if (!m) throw new Error(`line ${b.line + 1 + i}: a dump line starts with hex bytes ("84 a1 74"), then two spaces and a note: ${l}`);
    for (const h of m[1]!.split(' ')) out.push(h === '??' ? null : parseInt(h, 16));
  });
  return out;
}

/** JSON text without the whitespace outside strings (numbers keep all their digits) */
function compactJson(text: string): string {
  let out = '', inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inStr) { out += c; if (c === '\\') out += text[++i] ?? ''; else if (c === '"') inStr = false; }
    else if (c === '"') { inStr = true; out += c; }
    else if (!/\s/.test(c)) out += c;
  }
  return out;
}

function checkDecodes(bytes: Uint8Array, json: Block | undefined): string | null {
  if (!json || json.info[0] !== 'json') return 'a ```msgpack block follows the ```json block of its value';
  let v: unknown;
  try { v = unpackr.unpack(bytes); } catch (e) { return `does not decode: ${(e as Error).message}`; }
  const got = toJson(v).replace(MS, '0'), want = compactJson(json.lines.join('\n')).replace(MS, '0');
  return got === want ? null : `decodes to ${toJson(v)}, the json block says ${compactJson(json.lines.join('\n'))}`;
}

class Controller {
  private ws: WebSocket;
  private queue: Buffer[] = [];
  private waiting: ((b: Buffer) => void) | null = null;
  readonly open: Promise<void>;
  constructor(port: number, token: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/v1/controller`, { headers: { authorization: `Bearer ${token}` } });
    this.ws.on('message', (d: Buffer) => { if (this.waiting) { const w = this.waiting; this.waiting = null; w(d); } else this.queue.push(d); });
    this.open = new Promise((resolve, reject) => { this.ws.once('open', () => resolve()); this.ws.once('error', reject); });
  }
  async roundTrip(frame: Uint8Array): Promise<Buffer> {
    await this.open;
    this.ws.send(frame, { binary: true });
    const q = this.queue.shift();
    if (q) return q;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply within 10 s')), 10_000);
      this.waiting = (b) => { clearTimeout(t); resolve(b); };
    });
  }
  close(): void { this.ws.close(); }
}

async function runDumps(page: string, all: Block[], i: number, ctl: () => Controller): Promise<{ problems: string[]; next: number }> {
  const b = all[i]!;
  const problems: string[] = [];
  let bytes: (number | null)[];
  try { bytes = dumpBytes(b); } catch (e) { return { problems: [`${where(page, b)}: ${(e as Error).message}`], next: i + 1 }; }
  if (b.info[1] !== 'send') {
    if (bytes.includes(null)) problems.push(`${where(page, b)}: ?? only in a reply the test receives`);
    else { const p = checkDecodes(Uint8Array.from(bytes as number[]), all[i - 1]); if (p) problems.push(`${where(page, b)}: ${p}`); }
    return { problems, next: i + 1 };
  }
  const sent = Uint8Array.from(bytes.map((x) => x ?? 0));
  const p = checkDecodes(sent, all[i - 1]);
  if (p) problems.push(`${where(page, b)}: ${p}`);
  // the reply block: the next msgpack block after its own json block
  let j = i + 1;
  while (j < all.length && all[j]!.info[0] !== 'msgpack') j++;
  const rb = all[j];
  if (!rb || rb.info[1] !== 'reply') return { problems: [...problems, `${where(page, b)}: a "msgpack send" is followed by its "msgpack reply"`], next: j };
  const got = await ctl().roundTrip(sent);
  const want = dumpBytes(rb);
  const same = got.length === want.length && want.every((x, k) => x === null || x === got[k]);
  if (!same) {
    let decoded = '';
    try { decoded = toJson(unpackr.unpack(got)); } catch { /* shown as hex */ }
    problems.push(`${where(page, rb)}: the server replied\n${[...got].map((x) => x.toString(16).padStart(2, '0')).join(' ')}\n${decoded}`);
  } else {
    const q = checkDecodes(got, all[j - 1]);
    if (q) problems.push(`${where(page, rb)}: ${q}`);
  }
  return { problems, next: j + 1 };
}

// ── python ──

const python = spawnSync('python3', ['-c', 'import msgpack'], { encoding: 'utf8' });
const hasPython = python.status === 0;

async function runPython(page: string, b: Block, cwd: string, e: NodeJS.ProcessEnv, port: number): Promise<string[]> {
  const r = await run('python3', ['-'], cwd, e, rewrite(b.lines.join('\n'), port));
  if (r.error) return [`${where(page, b)}: ${r.error}`];
  return r.status === 0 ? [] : [`${where(page, b)}: exit ${r.status}\n${r.stdout}${r.stderr}`];
}

// ── the pages ──

const runnable = (b: Block): boolean => {
  const [lang, mode] = b.info;
  if (mode === 'norun') return false;
  return lang === 'sh' || lang === 'console' || lang === 'msgpack' || lang === 'python';
};

for (const page of pages()) {
  const all = blocks(readPage(page));
  if (!all.some(runnable)) continue;
  test(`the examples of ${page} run as written`, async (t) => {
    const dir = scratch(page.replace(/\W+/g, '-'));
    const e = env(dir);
    const server = await startServer(['serve', '--config', 'src/demo/stadium.yaml', '--data', join(dir, 'data'), '--port', '0', '--host', '127.0.0.1'], dir, e);
    let controller = null as Controller | null;
    const ctl = (): Controller => (controller ??= new Controller(server.port, 'demo-gate-north-token'));
    const problems: string[] = [];
    let ran = 0;
    try {
      for (let i = 0; i < all.length;) {
        const b = all[i]!;
        const [lang, mode] = b.info;
        if (mode === 'norun') { i++; continue; }
        if (lang === 'msgpack') { const r = await runDumps(page, all, i, ctl); problems.push(...r.problems); i = r.next; ran++; continue; }
        if (lang === 'console') { problems.push(...await runConsole(page, b, dir, e, server.port)); ran++; }
        else if (lang === 'sh' && mode === 'server') { problems.push(...await runServerBlock(page, b, dir, e)); ran++; }
        else if (lang === 'sh') { problems.push(...await runSh(page, b, dir, e, server.port)); ran++; }
        else if (lang === 'python') {
          if (hasPython) { problems.push(...await runPython(page, b, dir, e, server.port)); ran++; }
          else t.diagnostic(`${where(page, b)} skipped: python3 cannot import msgpack (pip install msgpack)`);
        }
        i++;
      }
    } finally {
      controller?.close();
      const code = await stopServer(server);
      if (code !== 0) problems.push(`${page}: the demo server exited ${code} on SIGTERM\n${server.stderr()}`);
      rmSync(dir, { recursive: true, force: true });
    }
    t.diagnostic(`${ran} blocks run`);
    assert.equal(problems.join('\n\n'), '');
  });
}

test('npx apb finds the repository\'s own command', () => {
  const dir = scratch('npx');
  try {
    const r = spawnSync('npx', ['--no-install', 'apb', '--version'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    const pkg = JSON.parse(readPage('package.json')) as { version: string };
    assert.equal(r.stdout.trim(), `apb ${pkg.version}`, r.stderr);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the transcript matcher', () => {
  assert.ok(matches(['a…c', '…', 'z'], ['abc', 'x', 'y', 'z']));
  assert.ok(matches(['{"at":1796610470291}'], ['{"at":1800000000000}']));
  assert.ok(!matches(['abc'], ['abd']));
  assert.ok(!matches(['a', 'b'], ['a']));
  const steps = transcript({ info: ['console'], line: 1, lines: ['$ cat <<\'EOF\'', 'x', 'EOF', 'x', '$ echo a \\', '  b', 'a b'] });
  assert.deepEqual(steps.map((s) => [s.cmd, s.expected]), [['cat <<\'EOF\'\nx\nEOF', ['x']], ['echo a \\\n  b', ['a b']]]);
});
