import type { ColumnInfo, TableInfo } from '../catalog/catalog.js';
import { BadInputError, InvalidConfigurationError, TargetTableError } from '../errors.js';
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
 * A --columns list: comma-separated, trimmed. A name given twice (case-insensitively, as the
 * columns are matched) or an empty name is a command-line error, caught before any COPY.
 */
export function parseColumnList(list: string): string[] {
  const names = list.split(',').map((c) => c.trim());
  if (names.some((n) => n === '')) throw new InvalidConfigurationError(`--columns has an empty name: ${JSON.stringify(list)}`);
  checkNoDuplicates(names);
  return names;
}

function checkNoDuplicates(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    const key = n.toLowerCase();
    if (seen.has(key)) throw new InvalidConfigurationError(`--columns names ${JSON.stringify(key)} twice`);
    seen.add(key);
  }
}

/**
 * Decides which table columns the input's fields are, and whether line 1 is a header. With
 * --header auto (the default), line 1 is a header when every field of it names a column of
 * the table (case-insensitively) and no two name the same one. When at least half its fields
 * name columns but some do not (or name one twice), line 1 is taken for a mistyped header and
 * the load stops: loading it as a row would put a header into the table.
 */
export function resolveInputColumns(
  table: TableInfo,
  first: Buffer,
  format: CopyFormat,
  mode: HeaderMode,
  explicitColumns: string[] | undefined,
  file: string,
): InputColumns {
  if (explicitColumns) checkNoDuplicates(explicitColumns); // callers other than the CLI
  const tableName = `${table.schema}.${table.name}`;
  const byName = new Map(table.columns.map((c) => [c.name.toLowerCase(), c]));
  const fields = splitRow(first, 0, first.length, format).map((f) => (f ?? '').trim());
  const named = fields.map((f) => byName.get(f.toLowerCase()));
  const unknown = fields.filter((_, i) => named[i] === undefined);
  const twice = named.find((c, i) => c !== undefined && named.indexOf(c) !== i);
  const looksLikeHeader = unknown.length === 0 && twice === undefined;

  let header: boolean;
  let headerReason: string;
  if (mode === 'auto') {
    const mostlyNames = fields.length - unknown.length >= Math.max(1, Math.ceil(fields.length / 2));
    if (!looksLikeHeader && mostlyNames && !explicitColumns) {
      const problem = unknown.length > 0
        ? `${unknown.map((u) => JSON.stringify(u)).join(', ')} ${unknown.length === 1 ? 'is not a column' : 'are not columns'} of ${tableName}`
        : `it names column ${twice!.name} twice`;
      throw new BadInputError({ file, line: 1 }, `line 1 looks like a header, but ${problem}; `
        + 'fix the header, or say --no-header if line 1 is data');
    }
    header = looksLikeHeader;
    headerReason = header ? 'line 1 names columns of the table' : 'line 1 does not name columns of the table';
  } else {
    header = mode === 'yes';
    headerReason = `--${header ? '' : 'no-'}header`;
  }

  if (header && !explicitColumns) {
    if (unknown.length > 0) {
      throw new BadInputError({ file, line: 1 }, `header names ${unknown.map((u) => JSON.stringify(u)).join(', ')}, `
        + `which ${unknown.length === 1 ? 'is not a column' : 'are not columns'} of ${tableName}`);
    }
    if (twice) throw new BadInputError({ file, line: 1 }, `header names column ${twice.name} twice`);
    return { columns: named as ColumnInfo[], header, headerReason };
  }
  if (explicitColumns) {
    const columns = explicitColumns.map((n) => {
      const c = byName.get(n.toLowerCase());
      if (!c) throw new TargetTableError(`--columns names ${JSON.stringify(n)}, which is not a column of ${tableName}`);
      return c;
    });
    return { columns, header, headerReason };
  }
  return { columns: table.columns, header, headerReason };
}
