/**
 * The parts of a load that differ when its source is a table (`--from-table`): finding the
 * staging table, choosing which of its columns are read, and matching them to the target's.
 * The rows then take the same path as a file's (input/table-source.ts).
 */
import type pg from 'pg';
import { findTable, type ColumnInfo, type TableInfo } from '../catalog/catalog.js';
import type { ConnectionConfig } from '../connect/config.js';
import { parseQualifiedName } from '../connect/qualified-name.js';
import { InvalidConfigurationError, TargetTableError } from '../errors.js';
import type { InputColumns } from '../input/columns.js';
import { tableSource, type TableSource, type TextSettings } from '../input/table-source.js';

/**
 * The staging table `fromTable` names (read as psql reads names, resolved by PostgreSQL), as a
 * source reading `columns` (default: all its columns).
 */
export async function stagingSource(db: pg.Client, conn: ConnectionConfig, fromTable: string, columns: string[] | undefined,
  settings: TextSettings): Promise<TableSource> {
  parseQualifiedName(fromTable, '--from-table');
  const table = await findTable(db, fromTable);
  if (!table) throw new TargetTableError(`staging table ${fromTable} does not exist (or is not on search_path)`);
  let read: ColumnInfo[] = table.columns;
  if (columns) {
    read = columns.map((name) => {
      const c = table.columns.find((x) => x.name === name);
      if (!c) throw new InvalidConfigurationError(`--columns names ${JSON.stringify(name)}, which is not a column of the staging table ${table.schema}.${table.name}`);
      return c;
    });
  }
  if (read.length === 0) throw new InvalidConfigurationError(`the staging table ${table.schema}.${table.name} has no columns to load`);
  return tableSource(conn, table, read, settings);
}

/** The target's columns the staging columns fill, by name: every one must be there. */
export function stagingColumns(source: TableSource, target: TableInfo): InputColumns {
  if (source.table.oid === target.oid) {
    throw new InvalidConfigurationError(`--from-table names the target table ${target.schema}.${target.name} itself`);
  }
  const byName = new Map(target.columns.map((c) => [c.name, c]));
  const missing = source.columns.filter((c) => !byName.has(c.name)).map((c) => c.name);
  if (missing.length) {
    throw new TargetTableError(`staging column(s) ${missing.join(', ')} of ${source.table.schema}.${source.table.name} are not columns of `
      + `${target.schema}.${target.name}; name the columns to load with --columns`);
  }
  return { columns: source.columns.map((c) => byName.get(c.name)!), header: false, headerReason: 'a table has no header' };
}
