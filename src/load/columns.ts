import type { ColumnInfo, TableInfo } from '../citus/catalog.js';
import { BadInputError, TargetTableError } from '../errors.js';
import type { CopyFormat } from './copy-format.js';
import { splitRow } from './row-scanner.js';

export type HeaderMode = 'auto' | 'yes' | 'no';

export interface InputColumns {
  /** Table columns in the order the input's fields hold them. */
  readonly columns: ColumnInfo[];
  /** Whether the first line is a header to skip. */
  readonly header: boolean;
  /** Why the header decision was taken (for --header auto). */
  readonly headerReason: string;
}

/** The first line of the input (without its terminator), or undefined when there is none yet. */
export function firstLine(buf: Buffer): Buffer | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return undefined;
  return buf.subarray(0, nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl);
}

/**
 * Decides which table columns the input's fields are, and whether line 1 is a header. With
 * --header auto (the default), line 1 is a header when every field of it names a column of
 * the table (case-insensitively) and no two name the same one.
 */
export function resolveInputColumns(
  table: TableInfo,
  first: Buffer,
  format: CopyFormat,
  mode: HeaderMode,
  explicitColumns: string[] | undefined,
  file: string,
): InputColumns {
  const byName = new Map(table.columns.map((c) => [c.name.toLowerCase(), c]));
  const fields = splitRow(first, 0, first.length, format).map((f) => (f ?? '').trim());
  const named = fields.map((f) => byName.get(f.toLowerCase()));
  const looksLikeHeader = named.every((c) => c !== undefined) && new Set(named).size === named.length;

  let header: boolean;
  let headerReason: string;
  if (mode === 'auto') {
    header = looksLikeHeader;
    headerReason = header ? 'line 1 names columns of the table' : 'line 1 does not name columns of the table';
  } else {
    header = mode === 'yes';
    headerReason = `--${header ? '' : 'no-'}header`;
  }

  if (header && !explicitColumns) {
    const unknown = fields.filter((_, i) => named[i] === undefined);
    if (unknown.length > 0) {
      throw new BadInputError({ file, line: 1 }, `header names ${unknown.map((u) => JSON.stringify(u)).join(', ')}, `
        + `which ${unknown.length === 1 ? 'is not a column' : 'are not columns'} of ${table.schema}.${table.name}`);
    }
    return { columns: named as ColumnInfo[], header, headerReason };
  }
  if (explicitColumns) {
    const columns = explicitColumns.map((n) => {
      const c = byName.get(n.toLowerCase());
      if (!c) throw new TargetTableError(`--columns names ${JSON.stringify(n)}, which is not a column of ${table.schema}.${table.name}`);
      return c;
    });
    return { columns, header, headerReason };
  }
  return { columns: table.columns, header, headerReason };
}
