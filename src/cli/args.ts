/** Tiny flag parser shared by the commands: `--name value` and `--flag`. */
import { ApbError } from '../errors.js';

export interface ArgSpec { [name: string]: 'string' | 'boolean' }

export function parseArgs(argv: string[], spec: ArgSpec, command: string): Record<string, string | boolean | undefined> {
  const out: Record<string, string | boolean | undefined> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ApbError('bad_message', `apb ${command}: unexpected argument "${a}"`);
    const name = a.slice(2);
    const kind = spec[name];
    if (!kind) throw new ApbError('bad_message', `apb ${command}: unknown option --${name} (options: ${Object.keys(spec).map((k) => '--' + k).join(', ')})`);
    if (kind === 'boolean') { out[name] = true; continue; }
    const v = argv[++i];
    if (v === undefined) throw new ApbError('bad_message', `apb ${command}: --${name} needs a value`);
    out[name] = v;
  }
  return out;
}

export function required(args: Record<string, string | boolean | undefined>, name: string, command: string): string {
  const v = args[name];
  if (typeof v !== 'string') throw new ApbError('bad_message', `apb ${command}: --${name} is required`);
  return v;
}
