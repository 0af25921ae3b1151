/**
 * What a load tells its caller while it runs: progress figures, and the phases it passes. The
 * phases mark points a caller can rely on (each one is passed at most once per load, a chunked load aside, in the
 * order listed below), so that a progress display, a log, or a fault-injection test can hook
 * into them without the loader knowing which of those it serves.
 */

export interface LoadProgress {
  /** Bytes read from the input; 0 for compressed input, whose size on disk says nothing. */
  readonly bytesRead: number;
  readonly totalBytes: number | undefined;
  readonly rows: number;
}

/**
 * The phases of one load, in order. Paths differ in which they pass:
 * - 'connected': the coordinator session is open (nothing is checked or written yet).
 * - 'recovered': prepared transactions of earlier interrupted loads were finished (passed
 *   without Citus too, where there is nothing to recover).
 * - 'locked': the job is recorded and its lock held; on the direct path, Citus's shard locks
 *   are held too. From here on, a failure is recorded on the job.
 * - 'streamed': every row was read, routed and written; nothing is visible yet.
 * - 'prepared': (direct path) every worker transaction is PREPAREd. A process that dies here is
 *   rolled back by recovery.
 * - 'commit-recorded': (direct path) the commit record is durable. From here the load commits,
 *   even if the process dies (recovery finishes it).
 * - 'committed': the rows are visible (on the direct path, some nodes may be left to recovery;
 *   the summary's unfinishedCommits names them).
 * A chunked load (commitEvery) passes 'prepared' and 'commit-recorded' once per chunk, in that
 * order, each chunk's after the last one's 'commit-recorded'; the rest once, as listed.
 */
export type LoadPhase = 'connected' | 'recovered' | 'locked' | 'streamed' | 'prepared' | 'commit-recorded' | 'committed';

/**
 * A phase callback that never changes the load's outcome: an observer that throws is reported
 * through `notice` and otherwise ignored (a throw after the commit record must not look like a
 * failed load). An observer that ends the process (a crash test) is free to.
 */
export function phaseReporter(onPhase: ((phase: LoadPhase) => void) | undefined,
  notice: (message: string) => void): (phase: LoadPhase) => void {
  if (!onPhase) return () => {};
  return (phase) => {
    try {
      onPhase(phase);
    } catch (err) {
      notice(`the onPhase callback failed at '${phase}' (ignored): ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}
