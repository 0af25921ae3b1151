/**
 * A chunked loading process that can die at a chosen point: it runs the library's load() with
 * --commit-every (and --resume when asked) and SIGKILLs its own process on the `dieAt`-th time it
 * passes `diePhase` ('prepared': a chunk prepared, no commit record; 'commit-recorded': the
 * record is durable, COMMIT PREPARED not sent). It prints `locked` when the job is recorded and
 * locked, so a parent can start a timer for a kill at a random moment after it.
 * Usage: node chunked-load-and-die.js '<json: {coordinator, table, file | fromTable, then?, commitEvery, resume?,
 *   maxErrors?, rejectsFile?, diePhase?, dieAt?}>'
 * Prints the summary as JSON and exits 0 when it lives to the end.
 */
import { load, type LoadPhase } from '../../src/pipeline/loader.js';

interface Args {
  coordinator: string;
  table: string;
  /** One of file and fromTable (a staging table; `then` says its fate). */
  file?: string;
  fromTable?: string;
  then?: 'keep' | 'truncate' | 'drop';
  commitEvery: string;
  /** true: the newest unfinished job; a number: that job. */
  resume?: boolean | number;
  maxErrors?: number;
  rejectsFile?: string;
  diePhase?: LoadPhase;
  dieAt?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
let seen = 0;
try {
  const summary = await load({
    table: args.table,
    ...(args.file !== undefined ? { file: args.file } : {}),
    ...(args.fromTable !== undefined ? { fromTable: args.fromTable } : {}),
    ...(args.then !== undefined ? { then: args.then } : {}),
    connection: { coordinator: args.coordinator },
    commitEvery: args.commitEvery,
    ...(args.resume !== undefined ? { resume: args.resume } : {}),
    ...(args.maxErrors !== undefined ? { maxErrors: args.maxErrors } : {}),
    ...(args.rejectsFile ? { rejectsFile: args.rejectsFile } : {}),
    onPhase: (phase) => {
      if (phase === 'locked') process.stdout.write('locked\n');
      if (phase === args.diePhase && ++seen === args.dieAt) process.kill(process.pid, 'SIGKILL');
    },
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
