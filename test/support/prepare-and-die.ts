/**
 * A loading process that dies at a chosen step of the distributed commit: it writes rows into
 * table `t` on each worker, prepares, optionally writes the commit record, then SIGKILLs itself.
 * Usage: node prepare-and-die.js <coordinatorUrl> <jobId> <after-prepare|after-commit-record> <workerUrl>...
 */
import pg from 'pg';
import { DEFAULT_TIMEOUTS } from '../../src/connect/config.js';
import { Batch } from '../../src/load/batch.js';
import { CopySession } from '../../src/load/copy-session.js';
import { globalTransactionIds, lockJob, prepareAll } from '../../src/load/distributed-commit.js';
import { recordCommittedJob } from '../../src/store/job-store.js';

const [coordinatorUrl, jobIdText, step, ...workers] = process.argv.slice(2);
const jobId = Number(jobIdText);
const coordinator = new pg.Client({ connectionString: coordinatorUrl });
await coordinator.connect();
await lockJob(coordinator, jobId);
const settings = { DateStyle: 'ISO, MDY', TimeZone: 'UTC', IntervalStyle: 'postgres' };
const sessions: CopySession[] = [];
for (const url of workers) {
  const s = await CopySession.open({ connectionString: url }, url, settings, 'prepare-and-die', DEFAULT_TIMEOUTS);
  await s.begin();
  const batch = new Batch(1024);
  for (let i = 0; i < 10; i++) {
    const row = Buffer.from(`${i}\n`);
    batch.append(row, 0, row.length, undefined, i + 1, 1);
  }
  await s.copy('COPY t (v) FROM STDIN', batch);
  sessions.push(s);
}
await prepareAll(sessions, globalTransactionIds(jobId, sessions.length));
if (step === 'after-commit-record') {
  await coordinator.query('BEGIN');
  await recordCommittedJob(coordinator, jobId, { rows: 20, rejected: 0, bytes: 0, seconds: 0, shards: [], nodes: [] },
    sessions.map((s) => s.preparedGid!));
  await coordinator.query('COMMIT');
}
process.kill(process.pid, 'SIGKILL');
