/**
 * A chunked loading process that can die at a chosen point: it runs the library's load() with
 * --commit-every (and --resume when asked) and SIGKILLs its own process on the `dieAt`-th time it
 * passes `diePhase` ('prepared': a chunk prepared, no commit record; 'commit-recorded': the
 * record is durable, COMMIT PREPARED not sent). It prints `locked` when the job is recorded and
 * locked, so a parent can start a timer for a kill at a random moment after it. With `stallPhase`
 * and `stallAt` it instead stops dead (its event loop blocked, nothing sent or read) on the
 * `stallAt`-th time it passes `stallPhase`, prints `stalled`, and goes on once the file
 * `stallUntil` exists (at most 60 s): the parent can act on the database meanwhile.
 * Usage: node chunked-load-and-die.js '<json: {coordinator, table, file | fromTable, then?, commitEvery, resume?,
 *   maxErrors?, rejectsFile?, diePhase?, dieAt?}>'
 * Prints the summary as JSON and exits 0 when it lives to the end.
 */
import { existsSync, writeSync } from 'node:fs';
import { load } from '../../src/pipeline/loader.js';
import type { ChildArgs } from './chunked-child.js';

/** The arguments, as the suites' runner (chunked-child.ts) passes them. */
type Args = ChildArgs;

/** Blocks the whole process (no I/O runs) until `file` exists, at most 60 s. */
function stallUntil(file: string): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 60_000;
  while (!existsSync(file) && Date.now() < deadline) Atomics.wait(cell, 0, 0, 20);
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
let seen = 0;
let stalls = 0;
try {
  const summary = await load({
    table: args.table,
    ...(args.file !== undefined ? { file: args.file } : {}),
    ...(args.fromTable !== undefined ? { fromTable: args.fromTable } : {}),
    ...(args.then !== undefined ? { then: args.then } : {}),
    connection: { coordinator: args.coordinator },
    commitEvery: args.commitEvery,
    ...(args.resume !== undefined ? { resume: args.resume } : {}),
    ...(args.restart !== undefined ? { restart: args.restart } : {}),
    ...(args.maxErrors !== undefined ? { maxErrors: args.maxErrors } : {}),
    ...(args.rejectsFile ? { rejectsFile: args.rejectsFile } : {}),
    onPhase: (phase) => {
      if (phase === 'locked') process.stdout.write('locked\n');
      if (phase === args.diePhase && ++seen === args.dieAt) process.kill(process.pid, 'SIGKILL');
      if (phase === args.stallPhase && ++stalls === args.stallAt && args.stallUntil) {
        writeSync(1, 'stalled\n');
        stallUntil(args.stallUntil);
      }
    },
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
