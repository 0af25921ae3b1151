/**
 * A load --schema process that dies in the middle of one table's chunked load: it runs the
 * library's loadSchema() with an onPhase callback that SIGKILLs its own process the n-th time
 * the named table's load reaches the named phase, as a crash (no cleanup, sessions cut) would.
 * Usage: node schema-load-and-die.js '<json: {coordinator, schema, sources, commitEvery, dieTable, diePhase, dieAt}>'
 * Prints the summary as JSON and exits 0 when it lives to the end (the test then fails on the
 * missing signal).
 */
import type { LoadPhase } from '../../src/load/load-events.js';
import { loadSchema } from '../../src/pipeline/schema-loader.js';

interface Args {
  coordinator: string;
  schema: string;
  sources: string[];
  commitEvery: string;
  dieTable: string;
  diePhase: LoadPhase;
  dieAt: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
let seen = 0;
try {
  const summary = await loadSchema({
    schema: args.schema,
    sources: args.sources,
    connection: { coordinator: args.coordinator },
    commitEvery: args.commitEvery,
    onPhase: (table, phase) => {
      if (table === args.dieTable && phase === args.diePhase && ++seen === args.dieAt) process.kill(process.pid, 'SIGKILL');
    },
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
