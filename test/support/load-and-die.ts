/**
 * A loading process that dies at a chosen phase of a real load: it runs the library's load()
 * with an onPhase callback that SIGKILLs its own process when the named phase is reached, as a
 * crash (no cleanup, no exit handlers, sessions cut) would. Fault injection lives here, in the
 * test, not in the product's options.
 * Usage: node load-and-die.js <coordinatorUrl> <phase> <table> <file>
 * Exits 0 with the summary as JSON when the phase is never reached (the test then fails on the
 * missing signal).
 */
import { load, type LoadPhase } from '../../src/pipeline/loader.js';

const PHASES: readonly LoadPhase[] = ['connected', 'recovered', 'locked', 'streamed', 'prepared', 'commit-recorded', 'committed'];

const [coordinator, phase, table, file] = process.argv.slice(2);
if (!coordinator || !table || !file || !PHASES.includes(phase as LoadPhase)) {
  process.stderr.write(`usage: load-and-die <coordinatorUrl> <${PHASES.join('|')}> <table> <file>\n`);
  process.exit(2);
}
const summary = await load({
  table,
  file,
  connection: { coordinator },
  onPhase: (reached) => {
    if (reached === phase) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write(`${JSON.stringify(summary)}\n`);
