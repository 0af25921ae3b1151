/**
 * The advisory-lock keys the tool takes, in one place so their key spaces cannot collide. Each is
 * a bigint: three ASCII letters in the top bits (so no other application's small integer keys
 * meet ours) and an id below 2^40 in the low 40.
 *
 * They live at the store stage because the store takes the job's lock in the statement that
 * creates the job (job-store.ts), and the load, the pipeline and the monitor, all later stages,
 * take or look for the same locks.
 *
 * The keys are SQL expressions over a parameter or column, not numbers: the id is a bigint in the
 * database and every use (lock, unlock, a join against pg_locks) is in SQL.
 */

/** 'CAL': a load job's lock, held by the loading session until it ends. `param` is the job id ($n or a column). */
export function jobLockKeySql(param: string): string {
  return `((4407628::bigint << 40) + ${param}::bigint)`;
}

/** 'CAR': a claimed SQL request's lock, held by the claiming daemon while it runs. `param` is the request id. */
export function requestLockKeySql(param: string): string {
  return `((4407634::bigint << 40) + ${param}::bigint)`;
}

/** 'CAT': the per-table load lock of tables with unique or exclusion constraints. `param` is the table's oid. */
export function tableLockKeySql(param: string): string {
  return `((4407636::bigint << 40) + ${param}::oid::bigint)`;
}

/**
 * 'CAQ': held shared by every daemon's request listener while it listens, so SQL can tell that a
 * daemon will run a request (adaptive_load.distribute_table hands its move to one then).
 */
export function requestListenerLockKeySql(): string {
  return '(4407633::bigint << 40)';
}
