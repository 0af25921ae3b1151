/**
 * A table as the input of a load (`--from-table staging_events`): its rows leave PostgreSQL as
 * `COPY (SELECT cols FROM staging) TO STDOUT` in text format on a session of their own, and
 * enter the same scanner, router and worker COPY sessions a file's bytes do.
 *
 * The read is one statement in a REPEATABLE READ transaction, so what is loaded is one
 * consistent picture of the table, whatever is written to it meanwhile. (When the staging table
 * is emptied or dropped after the load, the load also keeps writers out from before this
 * snapshot until its commit: see load/staging-fate.ts.)
 *
 * Values leave in the text form of their type's output function, under the DateStyle order,
 * TimeZone and IntervalStyle the worker COPY sessions parse with (DateStyle in ISO form, which
 * the client canonicalizes without asking the server), so every value reads back as itself.
 */
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { ColumnInfo, TableInfo } from '../catalog/catalog.js';
import type { ConnectionConfig } from '../connect/config.js';
import { endWithoutWaiting } from '../connect/coordinator.js';
import { qualifiedName, quoteIdent, quoteLiteral } from '../connect/sql.js';
import { toDatabaseError } from '../errors.js';
import type { InputSource } from './input-source.js';

/** The session settings a value's text form depends on (the worker COPY sessions use the same). */
export interface TextSettings {
  readonly DateStyle: string;
  readonly TimeZone: string;
  readonly IntervalStyle: string;
}

export interface TableSource extends InputSource {
  /** The staging table, as the catalog resolved it. */
  readonly table: TableInfo;
  /** The staging table's columns that are read, in the order the rows hold them. */
  readonly columns: readonly ColumnInfo[];
}

export function isTableSource(source: InputSource): source is TableSource {
  return (source as Partial<TableSource>).table !== undefined;
}

/**
 * `DateStyle` with its output part set to ISO and its field order kept, e.g. `SQL, DMY` becomes
 * `ISO, DMY`: ISO output is read the same under every DateStyle.
 */
export function isoDateStyle(dateStyle: string): string {
  const order = dateStyle.split(',').map((s) => s.trim().toUpperCase()).find((s) => s === 'DMY' || s === 'MDY' || s === 'YMD');
  return `ISO, ${order ?? 'MDY'}`;
}

/** The SELECT list and statement that read `columns` of `table` as COPY text. */
export function copyOutSql(table: TableInfo, columns: readonly ColumnInfo[]): string {
  return `COPY (SELECT ${columns.map((c) => quoteIdent(c.name)).join(', ')} FROM ${qualifiedName(table.schema, table.name)}) TO STDOUT`;
}

/**
 * The rows of `columns` of `table`, read when the load opens the source. Nothing connects
 * before open(); each open() is a new session and a new snapshot.
 */
export function tableSource(conn: ConnectionConfig, table: TableInfo, columns: readonly ColumnInfo[], settings: TextSettings): TableSource {
  const name = `table ${table.schema}.${table.name}`;
  return {
    name, path: undefined, size: undefined, compressed: false, table, columns,
    open: () => readTable(conn, name, [copyOutSql(table, columns)], settings),
  };
}

/**
 * A staging table read for a chunked load (--commit-every): heap blocks [from, to) in ranges of
 * `step` blocks, one `COPY (SELECT ... WHERE ctid >= '(a,0)' AND ctid < '(b,0)')` per range (a
 * TID range scan, PostgreSQL 14+), all in the one REPEATABLE READ snapshot. Every row version
 * lies in exactly one block, so the ranges split the table's rows into disjoint sets that do not
 * depend on the order COPY emits them in, and a resume reads from a recorded block onwards.
 * `ended` lists, for the current read, the stream offset where each range's rows end and the
 * block after it: the load cuts chunks there (load/load-run.ts). Rows written while the load
 * runs would break this; the load holds the table's EXCLUSIVE lock (load/staging-fate.ts).
 */
export interface BlockRanges {
  readonly from: number;
  readonly to: number;
  readonly step: number;
  readonly ended: { offset: number; toBlock: number }[];
}

export function blockRangeSql(table: TableInfo, columns: readonly ColumnInfo[], from: number, to: number): string {
  for (const b of [from, to]) if (!Number.isSafeInteger(b) || b < 0) throw new Error(`bad block number ${b}`);
  return `COPY (SELECT ${columns.map((c) => quoteIdent(c.name)).join(', ')} FROM ${qualifiedName(table.schema, table.name)}`
    + ` WHERE ctid >= '(${from},0)'::tid AND ctid < '(${to},0)'::tid) TO STDOUT`;
}

export function tableSourceByBlocks(conn: ConnectionConfig, source: TableSource, settings: TextSettings,
  plan: { from: number; to: number; step: number }): TableSource & { ranges: BlockRanges } {
  const ranges: BlockRanges = { ...plan, ended: [] };
  const statements: { sql: string; toBlock: number }[] = [];
  for (let a = plan.from; a < plan.to; a += plan.step) {
    const b = Math.min(plan.to, a + plan.step);
    statements.push({ sql: blockRangeSql(source.table, source.columns, a, b), toBlock: b });
  }
  return {
    ...source, ranges,
    open: () => {
      ranges.ended.length = 0;
      return readTable(conn, source.name, statements.map((s) => s.sql), settings,
        (i, offset) => { ranges.ended.push({ offset, toBlock: statements[i]!.toBlock }); });
    },
  };
}

function readTable(conn: ConnectionConfig, name: string, statements: readonly string[], settings: TextSettings,
  onStatementEnd?: (index: number, offset: number) => void): AsyncIterable<Buffer> & { destroy(): void } {
  const client = new pg.Client({ ...conn.coordinator, application_name: 'citus-adaptive-load staging read' });
  client.on('error', () => { /* surfaced by the read that fails */ });
  let stream: ReturnType<typeof copyTo> | undefined;
  let closed = false;
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      await client.connect();
      await client.query([
        `SET DateStyle = ${quoteLiteral(isoDateStyle(settings.DateStyle))}`, `SET TimeZone = ${quoteLiteral(settings.TimeZone)}`,
        `SET IntervalStyle = ${quoteLiteral(settings.IntervalStyle)}`, "SET client_encoding = 'UTF8'", 'SET extra_float_digits = 3',
        `SET lock_timeout = ${Math.round(conn.timeouts.lockMs)}`,
        // One statement reads the whole table and lasts as long as the load: the statement bound
        // applies to the load's steps (each COPY batch on a worker), not to this read, which
        // waits whenever the workers do.
        'SET statement_timeout = 0',
      ].join('; '));
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      let offset = 0;
      for (const [i, sql] of statements.entries()) {
        if (closed) return;
        stream = client.query(copyTo(sql));
        for await (const chunk of stream) {
          offset += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        onStatementEnd?.(i, offset);
      }
      if (closed) return;
      // Ends the snapshot and its ACCESS SHARE lock now, not when the load ends: the load's
      // commit may need a stronger lock on this table (load/staging-fate.ts).
      await client.query('COMMIT');
    } catch (err) {
      if (closed) return;
      throw toDatabaseError(err, 'coordinator', `reading ${name} failed`);
    } finally {
      endWithoutWaiting(client);
    }
  }
  const it = chunks();
  return Object.assign(it, {
    destroy: () => {
      if (closed) return;
      closed = true;
      // Ending the session ends the COPY and its transaction on the server at once.
      stream?.destroy();
      endWithoutWaiting(client);
      void it.return(undefined).catch(() => {});
    },
  });
}
