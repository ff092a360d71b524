/**
 * `apb validate --config F`: checks a site file. Prints every problem, one
 * per line as `path: message`, and exits 1; or prints a one-line summary
 * starting with "ok" and exits 0.
 */
import { isApbError } from '../errors.js';
import { formatIssue, loadSiteFile, type Issue } from '../config/load.js';
import { parseArgs, required } from './args.js';
import { specOf } from './usage.js';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf('validate'));
  const path = required(args, 'config');
  try {
    const { site } = loadSiteFile(path);
    process.stdout.write(`ok: ${path}: site "${site.config.site}", ${site.areaIds.length - 1} areas, ${site.readerIds.length} readers, ${site.controllerIds.length} controllers\n`);
    return 0;
  } catch (e) {
    if (!isApbError(e) || e.code !== 'invalid_config') throw e;
    const errors = (e.detail as { errors?: Issue[] } | undefined)?.errors ?? [{ path: '', message: e.message }];
    process.stdout.write(errors.map(formatIssue).join('\n') + '\n');
    process.stderr.write(`${path}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
}
