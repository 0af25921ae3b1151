/**
 * When a colocation proposal means something and when Citus will accept it. Pure functions of
 * what was sampled and read, exported so that every planner (this table's, and a whole schema's)
 * applies the same rules:
 *
 * - types: Citus colocates only tables whose distribution columns have the same type (and
 *   collation). An existing table keeps its type; a table the tool creates may take the group's
 *   type, but only if every sampled value is valid input for it.
 * - evidence: two serial keys contain each other by accident (ids 1..1500 are "in" ids 1..2000).
 *   Containment of a table's own unique, consecutive integers in another dense integer key is
 *   weak evidence unless the names, declared keys or the query history agree.
 * - growth: declared keys outweigh today's row count. A table whose primary key or foreign key
 *   carries a group's distribution column belongs in that group however small it is now.
 */
import type { ColumnStats } from './column-stats.js';

/** A column type as PostgreSQL's format_type prints it, as the hashing code names base types. */
export function baseTypeOf(formatType: string): { typeName: string; maxChars?: number } {
  const t = formatType.trim().toLowerCase();
  const chars = /^(character varying|varchar|character|char|bpchar)\s*\((\d+)\)$/.exec(t);
  if (chars) return { typeName: chars[1] === 'character varying' || chars[1] === 'varchar' ? 'varchar' : 'bpchar', maxChars: Number(chars[2]) };
  const names: Record<string, string> = {
    smallint: 'int2', int2: 'int2', integer: 'int4', int: 'int4', int4: 'int4', bigint: 'int8', int8: 'int8',
    text: 'text', 'character varying': 'varchar', varchar: 'varchar', character: 'bpchar', bpchar: 'bpchar', uuid: 'uuid',
    date: 'date', 'timestamp without time zone': 'timestamp', timestamp: 'timestamp',
    'timestamp with time zone': 'timestamptz', timestamptz: 'timestamptz', boolean: 'bool', bool: 'bool',
  };
  return { typeName: names[t] ?? t.replace(/\(.*\)$/, '') };
}

const INTEGER = /^\s*[-+]?\d{1,19}\s*$/;
const UUID = /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function intIn(v: string, bits: 16 | 32 | 64): boolean {
  if (!INTEGER.test(v)) return false;
  const n = BigInt(v.trim());
  const max = (1n << BigInt(bits - 1)) - 1n;
  return n >= -max - 1n && n <= max;
}

/**
 * Whether every sampled value is valid input for the type (format_type spelling). Types this
 * cannot check client-side count as not fitting: the tool then does not plan the type change.
 */
export function valuesFitType(values: readonly (string | null)[], formatType: string): boolean {
  const { typeName, maxChars } = baseTypeOf(formatType);
  const check: ((v: string) => boolean) | undefined = {
    int2: (v: string) => intIn(v, 16), int4: (v: string) => intIn(v, 32), int8: (v: string) => intIn(v, 64),
    text: () => true, varchar: (v: string) => maxChars === undefined || [...v].length <= maxChars,
    bpchar: (v: string) => maxChars === undefined || [...v.replace(/ +$/, '')].length <= maxChars,
    uuid: (v: string) => UUID.test(v.trim()), date: (v: string) => DATE.test(v.trim()),
  }[typeName];
  if (!check) return false;
  return values.every((v) => v === null || check(v));
}

export type TypeDecision =
  | { readonly ok: true; readonly plannedType: string | undefined; readonly reason?: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Can a table be colocated with a group whose distribution column has type `groupType`?
 * `existingType` is the table's own column type (base name) when the table exists.
 */
export function colocationTypeRule(args: {
  readonly column: string;
  readonly group: string;
  readonly groupType: string;
  readonly existingType: string | undefined;
  readonly values: readonly (string | null)[];
}): TypeDecision {
  const want = baseTypeOf(args.groupType).typeName;
  if (args.existingType !== undefined) {
    if (baseTypeOf(args.existingType).typeName === want) return { ok: true, plannedType: undefined };
    return { ok: false, reason: `${args.column} is ${args.existingType} and ${args.group}'s distribution column is ${args.groupType}: `
      + 'Citus colocates only columns of the same type, so not colocated' };
  }
  if (valuesFitType(args.values, args.groupType)) {
    return { ok: true, plannedType: args.groupType, reason: `${args.column} is created as ${args.groupType}, the type of ${args.group}'s distribution column (every sampled value fits)` };
  }
  return { ok: false, reason: `not every sampled value of ${args.column} is valid ${args.groupType}, the type of ${args.group}'s distribution column: not colocated` };
}

function singular(name: string): string {
  return name.replace(/ies$/, 'y').replace(/s$/, '');
}

/** `o_custkey` and `c_custkey` (TPC-H style) name the same thing: drop a short table prefix. */
function stem(column: string): string {
  return column.toLowerCase().replace(/^[a-z]{1,3}_(?=[a-z])/, '');
}

const GENERIC = new Set(['id', 'key', 'code', 'no', 'num', 'number']);

/** Do the names say that `column` refers to `table.refColumn`? */
export function namesAgree(column: string, table: string, refColumn: string): boolean {
  const c = column.toLowerCase();
  const r = refColumn.toLowerCase();
  const rel = singular(table.replace(/^.*\./, '').replace(/"/g, '').toLowerCase());
  if (c === `${rel}_id` || c === `${rel}id` || c === `${rel}_key`) return true;
  if (GENERIC.has(c) || GENERIC.has(stem(c))) return false;
  return c === r || stem(c) === stem(r);
}

/**
 * Integers that are the input's own serial key: nearly every sampled value distinct, and
 * covering most of the span between the smallest and largest (1..1500, not 17, 40213, 9..).
 */
export function ownSerialKey(column: ColumnStats, distinctValues: readonly string[]): boolean {
  if (column.inferredType !== 'integer' && column.inferredType !== 'bigint') return false;
  if (!column.unique) return false;
  const nums = distinctValues.map(Number).filter(Number.isFinite);
  if (nums.length < 2) return false;
  const span = Math.max(...nums) - Math.min(...nums) + 1;
  const sampled = column.sampleDistinct / Math.max(1, column.distinctEstimate);
  // The sample holds `sampled` of the values: a dense key shows about that density in its span.
  return nums.length / span >= 0.5 * sampled;
}

/**
 * Is containment of `column`'s values in `refTable.refColumn` weak evidence? It is when an own
 * serial key sits in a dense integer key (rows close to the span of values) and the names do not
 * agree. Declared keys and query history are checked by the planner, which has them.
 */
export function weakContainment(args: {
  readonly column: ColumnStats;
  readonly distinctValues: readonly string[];
  readonly refTable: string;
  readonly refColumn: string;
  readonly refDense: boolean;
}): boolean {
  if (!args.refDense || !ownSerialKey(args.column, args.distinctValues)) return false;
  return !namesAgree(args.column.name, args.refTable, args.refColumn);
}
