/**
 * Every worker thread apb starts (the index worker, the snapshot replica, the config loader) starts
 * here, never with `new Worker` directly.
 *
 * Why: msgpackr decodes strings in bulk with a native add-on (msgpackr-extract). Its module
 * initialisation runs once per thread that loads it, and it clears and refills one token table
 * shared by the whole process. A decode running on another thread at that moment skips tokens it
 * should step over and hands back wrong strings: map keys merge (a journal batch read with five of
 * its seven keys), strings come back cut ("Unexpected end of buffer reading string"). Measured: with
 * two workers at a time loading msgpackr, about 1 main-thread decode in 25,000 of a 1.2 KB batch
 * came back wrong; with the add-on off in the workers, none of 500,000.
 *
 * So workers decode with msgpackr's plain JavaScript reader (msgpackr reads this variable when it is
 * first imported) and only the main thread, which loads the add-on before any worker exists, uses it.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

const NO_NATIVE_DECODE = 'MSGPACKR_NATIVE_ACCELERATION_DISABLED';

export function startWorker(script: URL | string, options: WorkerOptions = {}): Worker {
  const base = options.env && typeof options.env === 'object' ? options.env as NodeJS.Dict<string> : process.env;
  return new Worker(script, { ...options, env: { ...base, [NO_NATIVE_DECODE]: 'true' } });
}
