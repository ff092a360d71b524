/**
 * Every command and flag of `apb`, in one table: parseArgs() accepts exactly
 * these flags and `--help` prints exactly these lines, so the two cannot
 * drift. A flag with a `value` takes one; one without is a switch.
 */
import type { ArgSpec } from './args.js';

export interface Flag { name: string; value?: string; desc: string; required?: boolean }
export interface Command { file: string; summary: string; flags: Flag[] }

export const COMMANDS: Record<string, Command> = {
  serve: {
    file: './serve.js', summary: 'run the engine (SIGHUP reloads the site file, SIGTERM stops)',
    flags: [
      { name: 'config', value: 'F', desc: 'site file (YAML or JSON); cluster mode: repeatable, or a directory of site files', required: true },
      { name: 'data', value: 'D', desc: 'data directory (created if missing)', required: true },
      { name: 'port', value: 'N', desc: 'HTTP and WebSocket port, 0 = any free port (default 8080)' },
      { name: 'host', value: 'H', desc: 'address to listen on (default 127.0.0.1)' },
      { name: 'log-level', value: 'L', desc: 'fatal|error|warn|info|debug|trace|silent (default info or $APB_LOG_LEVEL)' },
      { name: 'core', value: 'C', desc: 'engine core: wasm|reference (default wasm or $APB_CORE)' },
      { name: 'durability', value: 'M', desc: 'commit|flush: reply once the write-ahead log reaches the OS, or once fsynced (default commit)' },
      { name: 'allow-js-fallback', desc: 'run on uWebSockets.js\'s JS fallback when the native binary is missing' },
      { name: 'cluster', value: 'URLS', desc: 'cluster mode: NATS JetStream servers nats://H:P[,...] (docs/cluster.md)' },
      { name: 'node', value: 'NAME', desc: 'cluster mode: this node\'s name, unique in the cluster (required with --cluster)' },
      { name: 'stream-replicas', value: 'N', desc: 'cluster mode: replicas of the site\'s stream and lease bucket, 1-5 (default 1)' },
      { name: 'lease-ms', value: 'MS', desc: 'cluster mode: leader lease duration, 500-60000 (default 2000)' },
      { name: 'snapshot-every', value: 'N', desc: 'cluster mode: journal records between follower snapshots, 0 = none (default 100000)' },
    ],
  },
  replay: {
    file: './replay.js', summary: 'decide a recorded stream offline, one JSON line out per line in',
    flags: [
      { name: 'config', value: 'F', desc: 'site file to decide with', required: true },
      { name: 'events', value: 'E', desc: 'JSON lines to replay; - = standard input', required: true },
      { name: 'core', value: 'C', desc: 'engine core: wasm|reference (default wasm)' },
      { name: 'explain', desc: 'decision lines also carry `seen` and each violation\'s facts' },
    ],
  },
  validate: {
    file: './validate.js', summary: 'check a site file; prints every error (path: message) or "ok"',
    flags: [{ name: 'config', value: 'F', desc: 'site file to check', required: true }],
  },
  schema: { file: './schema.js', summary: 'print the site file\'s JSON Schema (for editors)', flags: [] },
  events: {
    file: './events.js', summary: 'export the event log as replay input (safe beside a running server)',
    flags: [
      { name: 'data', value: 'D', desc: 'data directory of the server', required: true },
      { name: 'since', value: 'T', desc: 'first instant: ms since the epoch or an ISO 8601 date' },
      { name: 'until', value: 'T', desc: 'last instant: ms since the epoch or an ISO 8601 date' },
    ],
  },
  bridge: {
    file: '../bridge/cli.js', summary: 'run the gate-side OSDP control panel: polls readers, asks the engine, decides offline by policy',
    flags: [
      { name: 'config', value: 'F', desc: 'bridge file (YAML): engine, serial ports, readers, offline policies', required: true },
      { name: 'log-level', value: 'L', desc: 'fatal|error|warn|info|debug|trace|silent (default info or $APB_LOG_LEVEL)' },
    ],
  },
  simulate: {
    file: './simulate.js', summary: 'drive a running server with simulated controllers',
    flags: [
      { name: 'scenario', value: 'S', desc: 'stadium|metro|office', required: true },
      { name: 'url', value: 'U', desc: 'the server, e.g. ws://127.0.0.1:8080 (required unless --print-site)' },
      { name: 'config', value: 'F', desc: 'the site file the server runs (stream built from it); default: the scenario\'s site' },
      { name: 'print-site', desc: 'print the scenario\'s site (YAML) and exit' },
      { name: 'rate', value: 'N', desc: 'at most N events per second' },
      { name: 'speed', value: 'X', desc: 'simulated time runs X times real time' },
      { name: 'limit', value: 'N', desc: 'stop after N events' },
      { name: 'size', value: 'N', desc: 'people (or trips) to simulate' },
      { name: 'seed', value: 'N', desc: 'stream seed (default 1)' },
      { name: 'frame', value: 'N', desc: 'messages per frame (default 64)' },
      { name: 'tokens', value: 'a=T,…', desc: 'controller tokens, overriding the site\'s' },
      { name: 'cred-base', value: 'N', desc: 'first credential number' },
    ],
  },
  cluster: {
    file: './cluster.js', summary: 'status: print each site\'s leader, lease epoch and stream position (cluster mode)',
    flags: [
      { name: 'cluster', value: 'URLS', desc: 'NATS JetStream servers nats://H:P[,...]', required: true },
    ],
  },
};

/** The flags parseArgs accepts for a command (plus --help everywhere). */
export function specOf(command: string): ArgSpec {
  const spec: ArgSpec = { help: 'boolean' };
  for (const f of COMMANDS[command]!.flags) spec[f.name] = f.value ? 'string' : 'boolean';
  return spec;
}

const flagText = (f: Flag) => `--${f.name}${f.value ? ' ' + f.value : ''}`;
const synopsis = (name: string) => ['apb', name, ...COMMANDS[name]!.flags.filter((f) => f.required).map(flagText),
  ...(COMMANDS[name]!.flags.some((f) => !f.required) ? ['[options]'] : [])].join(' ');
/** widest flag column over every command, so all help texts line up */
const FLAG_W = Math.max(...Object.values(COMMANDS).flatMap((c) => c.flags.map((f) => flagText(f).length)), 6) + 2;
const flagLines = (name: string, indent: string) =>
  [...COMMANDS[name]!.flags.map((f) => `${indent}${flagText(f).padEnd(FLAG_W)}${f.required ? 'required: ' : ''}${f.desc}`),
    `${indent}${'--help'.padEnd(FLAG_W)}print this help`];

/** `apb <command> --help` */
export function commandUsage(name: string): string {
  return [`usage: ${synopsis(name)}`, '', `${COMMANDS[name]!.summary}`, '', ...flagLines(name, '  '), ''].join('\n');
}

/** `apb --help`: every command with every flag. */
export function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 2;
  const out = ['usage: apb <command> [options]', '', 'commands:'];
  for (const n of names) out.push(`  ${n.padEnd(w)}${COMMANDS[n]!.summary}`);
  out.push('', 'options:');
  for (const n of names) {
    out.push(`  ${synopsis(n)}`);
    out.push(...flagLines(n, '      ').filter((l) => !l.trimStart().startsWith('--help')));
  }
  out.push('', `  ${'apb --version'.padEnd(FLAG_W + 4)}print the version`, `  ${'apb <command> --help'.padEnd(FLAG_W + 4)}print one command's options`, '');
  return out.join('\n');
}
