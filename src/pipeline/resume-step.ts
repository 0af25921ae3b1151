/**
 * Which job a `--resume` continues, and whether it may: the named job (or the newest unfinished
 * chunked job of this table and file), not committed, not running in another process, and read
 * from the same, unchanged file (fingerprint.ts). On success the job is this session's again
 * (its lock held, status running) and the point after its last committed chunk is returned.
 */
import { resolve } from 'node:path';
import type { Queryable } from '../connect/queryable.js';
import { InvalidConfigurationError } from '../errors.js';
import { fingerprintDifference, fingerprintFile } from '../input/fingerprint.js';
import type { InputSource } from '../input/input-source.js';
import { fingerprintTable, tableFingerprintDifference, tableIdentity } from '../input/table-fingerprint.js';
import { isTableSource } from '../input/table-source.js';
import { newestUnfinishedJob, readJob, readResumePoint, reopenJob, supersedeJob, type ResumePoint } from '../store/chunk-store.js';

/** How a chunked job names its source: a staging table's identity, or a file's absolute path. */
function sourceIdentity(source: InputSource): string {
  return isTableSource(source) ? tableIdentity(source.table) : resolve(source.path!);
}

/**
 * A load started without --resume while a chunked job of the same table and unchanged source
 * stopped part-way: its committed chunks are in the table, so loading the source again from
 * its start would load them twice. Refused unless `restart` says that is meant; then that job is
 * superseded (no later --resume or check finds it again).
 */
export async function refuseHalfDoneRerun(db: Queryable, table: string, source: InputSource, restart: boolean): Promise<void> {
  const staged = isTableSource(source) ? source : undefined;
  if (source.path === undefined && !staged) return;
  const job = await newestUnfinishedJob(db, table, sourceIdentity(source));
  if (!job) return;
  // A source that changed since (a file rewritten, a staging table emptied and filled again) is new rows.
  const changed = staged ? tableFingerprintDifference(job.fingerprint, await fingerprintTable(db, staged.table))
    : fingerprintDifference(job.fingerprint, fingerprintFile(source.path!));
  if (changed) return;
  const done = await readResumePoint(db, job.jobId);
  if (done.chunksDone === 0) return;
  if (restart) {
    if (!await supersedeJob(db, job.jobId)) {
      throw new InvalidConfigurationError(`job ${job.jobId} is loading ${source.name} into ${table} right now; wait for it, or stop it first`);
    }
    return;
  }
  throw new InvalidConfigurationError(`job ${job.jobId} loaded ${done.chunksDone} chunk(s) (${done.rows} rows) of ${source.name} `
    + `into ${table} and stopped (${job.status}); loading it again from the start would load those rows twice. `
    + 'Add --resume to continue that job after its last committed chunk, or --restart to load the whole source again anyway');
}

export async function findResumableJob(db: Queryable, table: string, source: InputSource, which: true | number)
  : Promise<{ jobId: number; point: ResumePoint; fingerprint: unknown }> {
  // A staging table is compared with its fingerprint later, under its lock (pipeline/staging-chunks.ts).
  const staged = isTableSource(source) ? source : undefined;
  if (source.path === undefined && !staged) throw new InvalidConfigurationError('--resume needs the input as a file, not stdin');
  const now = staged ? undefined : fingerprintFile(source.path!);
  const identity = sourceIdentity(source);
  const job = which === true ? await newestUnfinishedJob(db, table, identity) : await readJob(db, which);
  if (!job) {
    throw new InvalidConfigurationError(which === true
      ? `there is no unfinished chunked load of ${source.name} into ${table} to resume; run without --resume to start one`
      : `there is no load job ${which}`);
  }
  const refuse = (why: string) => new InvalidConfigurationError(`cannot resume job ${job.jobId}: ${why}`);
  if (job.table !== table) throw refuse(`it loads ${job.table}, not ${table}`);
  if (job.status === 'committed') throw refuse('it is committed already: every chunk is loaded');
  if (job.chunkRows === undefined && job.chunkBytes === undefined) throw refuse('it was not a chunked load (--commit-every), so nothing of it was kept');
  if (staged && (job.fingerprint as { path?: unknown } | null)?.path !== identity) {
    throw refuse(`it did not read ${staged.name}`);
  }
  const difference = now ? fingerprintDifference(job.fingerprint, now) : undefined;
  if (difference) throw refuse(`the source changed since it started: ${difference}. Its committed chunks stay; load the new file as a new job`);
  if (!await reopenJob(db, job.jobId)) throw refuse('another process is loading it right now');
  return { jobId: job.jobId, point: await readResumePoint(db, job.jobId), fingerprint: job.fingerprint };
}
