import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import { AdaptiveLoadError, TimeoutError, toDatabaseError } from '../errors.js';
import type { Timeouts } from '../connect/config.js';
import { DEADLINE_GRACE_MS, endWithoutWaiting } from '../connect/coordinator.js';
import { destroyConnection, formatSeconds, withDeadline } from '../connect/deadline.js';
import { quoteLiteral } from '../connect/sql.js';
import type { Batch } from './batch.js';

/** Session settings that change how PostgreSQL reads input text (dates, times, intervals). */
export interface InputSettings {
  readonly DateStyle: string;
  readonly TimeZone: string;
  readonly IntervalStyle: string;
}

export async function readInputSettings(db: pg.Client): Promise<InputSettings> {
  const r = await db.query<InputSettings>(
    `SELECT current_setting('DateStyle') AS "DateStyle", current_setting('TimeZone') AS "TimeZone",
            current_setting('IntervalStyle') AS "IntervalStyle"`);
  return r.rows[0]!;
}

/** Where a COPY failed: the line and column the worker named, and its message. */
export interface CopyFailure {
  readonly copyLine: number | undefined;
  readonly column: string | undefined;
  readonly error: Error;
}

/** Parses COPY's error context: `COPY t_102008, line 17, column amount: "abc"`. */
export function copyFailure(err: unknown): CopyFailure {
  const where = (err as { where?: string }).where ?? '';
  const m = /COPY [^,]+, line (\d+)(?:, column ([^:]+))?/.exec(where);
  return {
    copyLine: m ? Number(m[1]) : undefined,
    column: m?.[2],
    error: err instanceof Error ? err : new Error(String(err)),
  };
}

/**
 * One connection to one node, in one transaction, running one COPY at a time (a pg connection
 * cannot run two). The transaction ends with PREPARE TRANSACTION, so the node keeps the rows
 * invisible until the distributed commit decides. Every operation is bounded: the server's
 * statement_timeout and lock_timeout, and a client-side deadline for a node that says nothing.
 */
export class CopySession {
  private inTransaction = false;
  preparedGid: string | undefined;
  /** The commit record may exist: abort() must not roll the prepared transaction back. */
  private keptForRecovery = false;
  /**
   * abort() has begun: nothing but its own statements may be sent any more. A COPY queued behind
   * its ROLLBACK (a writer finishing a batch and taking the next) would run outside any
   * transaction and commit its rows on this node at once.
   */
  private ending = false;

  private constructor(
    readonly node: string,
    private readonly client: pg.Client,
    private readonly settingsSql: string,
    private readonly deadlineMs: number,
    /** How the bound is named to the user (their setting, not the grace added to it). */
    private readonly setting: string,
  ) {}

  static async open(config: pg.ClientConfig, node: string, settings: InputSettings, applicationName: string,
    timeouts: Timeouts): Promise<CopySession> {
    const client = new pg.Client({ ...config, application_name: applicationName });
    client.on('error', () => { /* surfaced by the query that fails */ });
    try {
      await client.connect();
    } catch (err) {
      throw toDatabaseError(err, node, `cannot connect (within ${timeouts.connectMs / 1000} s)`);
    }
    const settingsSql = [
      `SET DateStyle = ${quoteLiteral(settings.DateStyle)}`, `SET TimeZone = ${quoteLiteral(settings.TimeZone)}`,
      `SET IntervalStyle = ${quoteLiteral(settings.IntervalStyle)}`,
      `SET statement_timeout = ${Math.round(timeouts.statementMs)}`, `SET lock_timeout = ${Math.round(timeouts.lockMs)}`,
    ].join('; ');
    return new CopySession(node, client, settingsSql, timeouts.statementMs + DEADLINE_GRACE_MS,
      `the statement timeout (${formatSeconds(timeouts.statementMs)})`);
  }

  /** Runs one operation of this connection under its deadline; errors name the node. */
  private async bounded<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(this.client, this.deadlineMs, () => what, this.node, op(), this.setting);
    } catch (err) {
      throw toDatabaseError(err, this.node);
    }
  }

  /** Queryable, so metadata can be written in this session's transaction. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.bounded(`query on ${this.node}`, () => {
      this.refuseWhenEnding(`query on ${this.node}`);
      return this.client.query<R>(text, values);
    });
  }

  async run(sql: string, what = `${sql.split(' ', 2).join(' ')} on ${this.node}`): Promise<void> {
    await this.bounded(what, () => {
      this.refuseWhenEnding(what);
      return this.client.query(sql);
    });
  }

  private refuseWhenEnding(what: string): void {
    if (this.ending) throw new AdaptiveLoadError(`${what}: not sent, the transaction on ${this.node} is being rolled back`);
  }

  /** Applies the coordinator's input settings and the load's timeouts, and begins the transaction, in one round trip. */
  async begin(): Promise<void> {
    await this.run(`${this.settingsSql}; BEGIN`, `starting the transaction on ${this.node}`);
    this.inTransaction = true;
  }

  /** Streams the batch's bytes into `COPY ... FROM STDIN`; resolves with the server's row count. */
  copy(copySql: string, batch: Batch): Promise<number> {
    try {
      this.refuseWhenEnding(`COPY on ${this.node}`);
    } catch (err) {
      return Promise.reject(err);
    }
    // Errors keep pg's fields (where: the COPY line) for the caller; only a deadline replaces them.
    return withDeadline(this.client, this.deadlineMs, () => `COPY on ${this.node}`, this.node, new Promise((resolve, reject) => {
      const stream = this.client.query(pgCopyStreams.from(copySql));
      stream.on('error', reject);
      stream.on('finish', () => resolve(stream.rowCount ?? batch.rows));
      stream.end(batch.buf.subarray(0, batch.len));
    }), this.setting);
  }

  /**
   * Streams every chunk into one `COPY ... FROM STDIN`; resolves with the server's row count.
   * The whole input is one statement, so no statement_timeout can bound it; progress is bounded
   * instead: the server must take each chunk within the deadline (time spent reading the input
   * does not count).
   */
  async copyWhole(copySql: string, chunks: AsyncIterable<Buffer>): Promise<number> {
    await this.run('SET LOCAL statement_timeout = 0', `COPY on ${this.node}`);
    this.refuseWhenEnding(`COPY on ${this.node}`);
    const stream = this.client.query(pgCopyStreams.from(copySql));
    let timer: NodeJS.Timeout | undefined;
    let stalled = false;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { stalled = true; destroyConnection(this.client); }, this.deadlineMs);
    };
    async function* watched(): AsyncGenerator<Buffer> {
      for await (const chunk of chunks) {
        arm();
        yield chunk; // resumes once the stream wants more: the server took the chunk
        clearTimeout(timer);
      }
      arm(); // the server's answer to the end of the data
    }
    try {
      await pipeline(Readable.from(watched()), stream);
    } catch (err) {
      if (stalled) throw new TimeoutError(`COPY on ${this.node}: the node took no data within ${this.setting}`, this.node);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return stream.rowCount ?? 0;
  }

  async prepare(gid: string): Promise<void> {
    await this.run(`PREPARE TRANSACTION ${quoteLiteral(gid)}`, `PREPARE TRANSACTION on ${this.node}`);
    this.inTransaction = false;
    this.preparedGid = gid;
  }

  async commitPrepared(): Promise<void> {
    if (!this.preparedGid) return;
    await this.run(`COMMIT PREPARED ${quoteLiteral(this.preparedGid)}`, `COMMIT PREPARED on ${this.node}`);
    this.preparedGid = undefined;
  }

  /**
   * The commit record may exist: this session's prepared transaction is no longer the client's
   * to roll back. Recovery (which reads the record) decides it.
   */
  leavePreparedToRecovery(): void {
    this.keptForRecovery = true;
  }

  /** The record is known not to exist after all: the prepared transaction may be rolled back. */
  reclaimPrepared(): void {
    this.keptForRecovery = false;
  }

  /** Undoes whatever this session did, prepared or not. Never throws: the node may be gone. */
  async abort(): Promise<void> {
    this.ending = true;
    const end = (sql: string) => this.bounded(`${sql.split(' ', 2).join(' ')} on ${this.node}`, () => this.client.query(sql));
    try {
      if (this.inTransaction) await end('ROLLBACK');
      if (this.preparedGid && !this.keptForRecovery) await end(`ROLLBACK PREPARED ${quoteLiteral(this.preparedGid)}`);
      this.preparedGid = undefined;
      this.inTransaction = false;
    } catch {
      // A prepared transaction left behind here is rolled back by recovery (no commit record).
    }
  }

  /** Ends the connection; the transaction is over (committed, prepared or rolled back) by now. */
  close(): void {
    endWithoutWaiting(this.client);
  }
}
