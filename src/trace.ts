/**
 * Phase timings on stderr when CITUS_ADAPTIVE_LOAD_TRACE=1: milliseconds since the process
 * started, so module loading and connection setup show as well as streaming.
 */
const enabled = process.env.CITUS_ADAPTIVE_LOAD_TRACE === '1';

export function trace(phase: string): void {
  if (enabled) process.stderr.write(`[trace ${performance.now().toFixed(0).padStart(6)} ms] ${phase}\n`);
}
