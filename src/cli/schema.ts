/** `apb schema`: prints the site file's JSON Schema (draft 2020-12), for editors. */
import { siteJsonSchema } from '../config/schema.js';
import { parseArgs } from './args.js';
import { specOf } from './usage.js';

export async function run(argv: string[]): Promise<number> {
  parseArgs(argv, specOf('schema'));
  process.stdout.write(JSON.stringify(siteJsonSchema(), null, 2) + '\n');
  return 0;
}
