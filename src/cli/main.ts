#!/usr/bin/env node
/**
 * `apb <command>`: one module per command under src/cli/, each exporting
 * `run(argv): Promise<number>` (the exit code). Unknown commands and
 * `--help` print the usage below.
 */
import { ApbError } from '../errors.js';

const COMMANDS: Record<string, { file: string; summary: string }> = {
  serve: { file: './serve.js', summary: 'serve --config F --data D [--port 8080] [--host 127.0.0.1]   run the engine' },
  replay: { file: './replay.js', summary: 'replay --config F --events E|-                                decide a recorded stream offline (SPEC 11)' },
  validate: { file: './validate.js', summary: 'validate --config F                                         check a site file; prints every error or "ok"' },
  schema: { file: './schema.js', summary: 'schema                                                      print the site file\'s JSON Schema' },
  events: { file: './events.js', summary: 'events --data D [--since T]                                 export the event log as replay input' },
  simulate: { file: './simulate.js', summary: 'simulate --scenario stadium|metro|office --url ws://…         drive a server with simulated controllers' },
};

export function usage(): string {
  return 'usage: apb <command> [options]\n\n' + Object.values(COMMANDS).map((c) => '  apb ' + c.summary).join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(usage()); return cmd ? 0 : 2; }
  const entry = COMMANDS[cmd];
  if (!entry) { process.stderr.write(`apb: unknown command "${cmd}"\n\n` + usage()); return 2; }
  const mod = (await import(entry.file)) as { run(argv: string[]): Promise<number> };
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof ApbError) process.stderr.write(`apb: ${err.code}: ${err.message}\n`);
    else process.stderr.write(`apb: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
