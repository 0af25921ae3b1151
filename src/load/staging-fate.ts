/**
 * What becomes of a staging table once its rows are loaded (`--then keep|truncate|drop`), done
 * in the coordinator transaction that writes the load's commit record, so the table is emptied
 * or dropped if and only if the load commits.
 *
 * Locks, in order, all on the job's coordinator session:
 * 1. Before the rows are read (before the reader's snapshot), that transaction is opened and
 *    takes EXCLUSIVE on the staging table: readers go on, writers wait. A row written after the
 *    snapshot would otherwise be emptied away without having been loaded. EXCLUSIVE conflicts
 *    with itself, so two loads of one staging table cannot both hold it and then both wait to
 *    upgrade (a deadlock).
 * 2. Before any node prepares, ACCESS EXCLUSIVE (what TRUNCATE and DROP need), and the TRUNCATE
 *    or DROP itself: this waits only for plain readers, which the first lock did not keep out,
 *    and PostgreSQL queues an upgrade ahead of waiting writers. Either wait is bounded by
 *    lock_timeout; failing it fails the load before PREPARE, with nothing loaded and the staging
 *    table as it was. Nothing about the staging table is left to fail after PREPARE.
 * With `keep` nothing is locked beyond the reader's own snapshot, except in a chunked load
 * (`holdForRun`): there step 1's transaction and lock last from before the first chunk's rows
 * are read until the last chunk's commit record, whose transaction it is (with --then
 * truncate|drop, step 2 runs only there); the other chunks' records are written on another
 * session (load/load-run.ts ChunkedRun.recordSession). Between two runs of a job nothing holds
 * the table; a resume checks it is unchanged (input/table-fingerprint.ts).
 */
import type { TableInfo } from '../catalog/catalog.js';
import type { Queryable } from '../connect/queryable.js';
import { qualifiedName } from '../connect/sql.js';
import { AdaptiveLoadError, toDatabaseError } from '../errors.js';
import type { CommitStep } from './commit.js';

export type StagingThen = 'keep' | 'truncate' | 'drop';

export const STAGING_THEN: readonly StagingThen[] = ['keep', 'truncate', 'drop'];

/** SQLSTATE lock_not_available: lock_timeout passed. */
const LOCK_NOT_AVAILABLE = '55P03';

export class StagingFate {
  private readonly quoted: string;
  private readonly label: string;
  private began = false;

  constructor(readonly then: StagingThen, table: TableInfo, private readonly lockTimeoutMs: number,
    private readonly holdForRun = false) {
    this.quoted = qualifiedName(table.schema, table.name);
    this.label = `${table.schema}.${table.name}`;
  }

  /** Whether the commit record's transaction is opened early (step 1 above). */
  get transactionOpen(): boolean {
    return this.began;
  }

  /** Step 1: on the job's session, before the rows are read. */
  async begin(db: Queryable): Promise<void> {
    if (this.then === 'keep' && !this.holdForRun) return;
    await db.query('BEGIN');
    this.began = true;
    // The transaction waits, open, while the rows stream: a server's idle-in-transaction limit
    // must not end the session (and with it the load) meanwhile.
    await db.query('SET LOCAL idle_in_transaction_session_timeout = 0');
    await this.lock(db, 'EXCLUSIVE');
  }

  /** Step 2, as a step of the distributed commit. */
  get commitSteps(): CommitStep[] {
    if (this.then === 'keep') return [];
    return [{
      beforePrepare: async (db) => {
        await this.lock(db, 'ACCESS EXCLUSIVE');
        await db.query(this.then === 'truncate' ? `TRUNCATE ${this.quoted}` : `DROP TABLE ${this.quoted}`);
      },
    }];
  }

  /** A load that failed before its commit ends the transaction step 1 opened: the table is as it was. */
  async abandon(db: Queryable): Promise<void> {
    if (this.began) await db.query('ROLLBACK').catch(() => {});
    this.began = false;
  }

  /** What the summary says once the load committed. */
  describeDone(): string {
    if (this.then === 'keep') return `${this.label} was kept as it was`;
    return this.then === 'truncate' ? `${this.label} was emptied (TRUNCATE) with the load's commit` : `${this.label} was dropped with the load's commit`;
  }

  private async lock(db: Queryable, mode: 'EXCLUSIVE' | 'ACCESS EXCLUSIVE'): Promise<void> {
    try {
      await db.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.lockTimeoutMs))}`);
      await db.query(`LOCK TABLE ${this.quoted} IN ${mode} MODE`);
    } catch (err) {
      const e = toDatabaseError(err, 'coordinator');
      if (e.sqlState === LOCK_NOT_AVAILABLE) {
        throw new AdaptiveLoadError(`the staging table ${this.label} is in use by another session: its ${mode} lock (needed to `
          + `${this.holdForRun ? 'hold its rows in place for a chunked load and ' : ''}${this.then} it with the load's commit) was not granted within ${this.lockTimeoutMs / 1000} s. Nothing was loaded `
          + 'and the staging table is unchanged; retry when it is free, raise --lock-timeout, or load with --then keep', { cause: e });
      }
      throw e;
    }
  }
}
