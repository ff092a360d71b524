#!/usr/bin/env -S node --initial-old-space-size=128
/**
 * `apb <command>`: one module per command under src/cli/, each exporting
 * `run(argv): Promise<number>` (the exit code). Commands and flags are
 * listed in usage.ts. Exit codes: 0 done, 1 failed, 2 wrong command line
 * (ApbError 'usage', printed as `apb <command>: <message>`, one line).
 *
 * The first line passes node-flags.ts NODE_FLAGS (`env -S` splits it into words).
 */
import { readFileSync } from 'node:fs';
import { ApbError } from '../errors.js';
import { formatIssue, type Issue } from '../config/load.js';
import { COMMANDS, commandUsage, usage } from './usage.js';

export { usage };

function version(): string {
  // build/src/cli/main.js → package.json at the package root
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const isHelp = (a: string) => a === '--help' || a === '-h';

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd) { process.stderr.write(usage()); return 2; }
  if (isHelp(cmd) || cmd === 'help') {
    const topic = rest[0];
    process.stdout.write(topic && COMMANDS[topic] ? commandUsage(topic) : usage());
    return 0;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') { process.stdout.write(`apb ${version()}\n`); return 0; }
  const entry = COMMANDS[cmd];
  if (!entry) { process.stderr.write(`apb: unknown command "${cmd}" (commands: ${Object.keys(COMMANDS).join(', ')}; apb --help lists their options)\n`); return 2; }
  if (rest.some(isHelp)) { process.stdout.write(commandUsage(cmd)); return 0; }
  const mod = (await import(entry.file)) as { run(argv: string[]): Promise<number> };
  try {
    return await mod.run(rest);
  } catch (err) {
    return report(cmd, err);
  }
}

function report(cmd: string, err: unknown): number {
  const prefix = cmd ? `apb ${cmd}: ` : 'apb: ';
  if (err instanceof ApbError) {
    if (err.code === 'usage') { process.stderr.write(prefix + err.message + '\n'); return 2; }
    const errors = err.code === 'invalid_config' ? (err.detail as { errors?: Issue[] } | undefined)?.errors : undefined;
    if (errors && errors.length > 1) process.stderr.write(`${prefix}invalid_config: ${errors.length} errors\n` + errors.map((i) => '  ' + formatIssue(i) + '\n').join(''));
    else process.stderr.write(`${prefix}${err.code}: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(prefix + (err instanceof Error ? err.stack ?? err.message : String(err)) + '\n');
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = report('', err); },
);
