import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import { toDatabaseError } from '../errors.js';
import { endWithoutWaiting } from '../connect/coordinator.js';
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
 * invisible until the distributed commit decides.
 */
export class CopySession {
  private inTransaction = false;
  preparedGid: string | undefined;

  private constructor(readonly node: string, private readonly client: pg.Client, private readonly settingsSql: string) {}

  static async open(config: pg.ClientConfig, node: string, settings: InputSettings, applicationName: string): Promise<CopySession> {
    const client = new pg.Client({ ...config, application_name: applicationName });
    client.on('error', () => { /* surfaced by the query that fails */ });
    try {
      await client.connect();
    } catch (err) {
      throw toDatabaseError(err, node, 'cannot connect');
    }
    return new CopySession(node, client, `SET DateStyle = ${quoteLiteral(settings.DateStyle)}; SET TimeZone = ${quoteLiteral(settings.TimeZone)};`
      + ` SET IntervalStyle = ${quoteLiteral(settings.IntervalStyle)}`);
  }

  /** Queryable, so metadata can be written in this session's transaction. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.client.query<R>(text, values);
    } catch (err) {
      throw toDatabaseError(err, this.node);
    }
  }

  async run(sql: string): Promise<void> {
    try {
      await this.client.query(sql);
    } catch (err) {
      throw toDatabaseError(err, this.node);
    }
  }

  /** Applies the coordinator's input settings and begins the transaction, in one round trip. */
  async begin(): Promise<void> {
    await this.run(`${this.settingsSql}; BEGIN`);
    this.inTransaction = true;
  }

  /** Streams the batch's bytes into `COPY ... FROM STDIN`; resolves with the server's row count. */
  copy(copySql: string, batch: Batch): Promise<number> {
    return new Promise((resolve, reject) => {
      const stream = this.client.query(pgCopyStreams.from(copySql));
      stream.on('error', reject);
      stream.on('finish', () => resolve(stream.rowCount ?? batch.rows));
      stream.end(batch.buf.subarray(0, batch.len));
    });
  }

  /** Streams every chunk into one `COPY ... FROM STDIN`; resolves with the server's row count. */
  async copyWhole(copySql: string, chunks: AsyncIterable<Buffer>): Promise<number> {
    const stream = this.client.query(pgCopyStreams.from(copySql));
    await pipeline(Readable.from(chunks), stream);
    return stream.rowCount ?? 0;
  }

  async prepare(gid: string): Promise<void> {
    await this.run(`PREPARE TRANSACTION ${quoteLiteral(gid)}`);
    this.inTransaction = false;
    this.preparedGid = gid;
  }

  async commitPrepared(): Promise<void> {
    if (!this.preparedGid) return;
    await this.run(`COMMIT PREPARED ${quoteLiteral(this.preparedGid)}`);
    this.preparedGid = undefined;
  }

  /** Undoes whatever this session did, prepared or not. Never throws: the node may be gone. */
  async abort(): Promise<void> {
    try {
      if (this.inTransaction) await this.client.query('ROLLBACK');
      if (this.preparedGid) await this.client.query(`ROLLBACK PREPARED ${quoteLiteral(this.preparedGid)}`);
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
