/**
 * Tiny flag parser shared by the commands: `--name value`, `--name=value`
 * and `--flag`. Every mistake is ApbError 'usage' with a message that names
 * the flag; main.ts prints it as `apb <command>: <message>` and exits 2.
 */
import { ApbError } from '../errors.js';

export interface ArgSpec { [name: string]: 'string' | 'boolean' }

export function parseArgs(argv: string[], spec: ArgSpec, _command?: string): Record<string, string | boolean | undefined> {
  const out: Record<string, string | boolean | undefined> = {};
  const known = () => Object.keys(spec).map((k) => '--' + k).join(', ') || 'none';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ApbError('usage', `unexpected argument "${a}" (options: ${known()})`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const kind = spec[name];
    if (!kind) throw new ApbError('usage', `unknown option --${name} (options: ${known()})`);
    if (kind === 'boolean') {
      if (eq > 0) throw new ApbError('usage', `--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    // `--config --data D` is a forgotten value, not a file named "--data"
    if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new ApbError('usage', `--${name} needs a value`);
    out[name] = v;
  }
  return out;
}

export function required(args: Record<string, string | boolean | undefined>, name: string, _command?: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new ApbError('usage', `--${name} is required`);
  return v;
}

/** every value of a repeatable option (`--config A --config B`), in order; parseArgs keeps the last */
export function allValues(argv: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) { const v = argv[i + 1]; if (v !== undefined && !v.startsWith('--')) out.push(v); i++; }
    else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
  }
  return out;
}
