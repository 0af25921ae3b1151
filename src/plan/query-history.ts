import { parse } from 'libpg-query';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { parseQualifiedName } from '../connect/qualified-name.js';

/** How the workload uses one column of the target table, weighted by calls. */
export interface ColumnUsage {
  equality: number;
  range: number;
  groupBy: number;
  /** Equality joins with other tables' columns: "table.column" -> weight. */
  joins: Record<string, number>;
}

export interface AccessPatterns {
  readonly table: string;
  readonly statements: number;
  readonly calls: number;
  readonly columns: Record<string, ColumnUsage>;
  /** Shares of the calls that touch the table (they overlap: a join may also aggregate). */
  readonly workload: { pointLookups: number; ranges: number; joins: number; aggregations: number };
  readonly source: 'pg_stat_statements' | 'none';
}

export interface StatementStat {
  readonly query: string;
  readonly calls: number;
  readonly totalTimeMs: number;
}

/** Rows fetched per round trip while reading the history. */
const HISTORY_BATCH_ROWS = 500;

/**
 * Statements of the current database from pg_stat_statements, when the extension is there. With
 * `mentioning`, only those whose text contains that name (a cheap prefilter; the parser decides).
 * The rows stream (pg-query-stream): pg_stat_statements may hold many thousands of long texts.
 */
export async function readStatementStats(db: pg.ClientBase, mentioning?: string): Promise<StatementStat[] | undefined> {
  const ext = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
  if (!ext.rowCount) return undefined;
  try {
    const stats: StatementStat[] = [];
    const stream = db.query(new QueryStream(
      `SELECT query, calls::text AS calls, total_exec_time AS total FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0
          AND ($1::text IS NULL OR strpos(lower(query), lower($1)) > 0)`, [mentioning ?? null], { batchSize: HISTORY_BATCH_ROWS }));
    for await (const row of stream) {
      const x = row as { query: string; calls: string; total: number };
      stats.push({ query: x.query, calls: Number(x.calls), totalTimeMs: x.total });
    }
    return stats;
  } catch {
    return undefined; // not in shared_preload_libraries: no history
  }
}


type Json = Record<string, unknown>;
const AGGREGATES = new Set(['count', 'sum', 'avg', 'min', 'max', 'stddev', 'variance', 'array_agg', 'string_agg', 'bool_and', 'bool_or']);
const RANGE_OPS = new Set(['<', '>', '<=', '>=']);

function str(node: unknown): string | undefined {
  const s = (node as { String?: { sval?: string } } | undefined)?.String?.sval;
  return s;
}

/** Every object node of the tree with its tag (`{"A_Expr": {...}}` -> ["A_Expr", {...}]). */
function* nodes(tree: unknown): Generator<[string, Json]> {
  if (Array.isArray(tree)) {
    for (const x of tree) yield* nodes(x);
    return;
  }
  if (tree === null || typeof tree !== 'object') return;
  for (const [key, value] of Object.entries(tree as Json)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && /^[A-Z]/.test(key)) yield [key, value as Json];
    yield* nodes(value);
  }
}

interface ColumnRef {
  readonly qualifier: string | undefined;
  readonly column: string;
}

function columnRef(node: unknown): ColumnRef | undefined {
  let n = node as Json | undefined;
  while (n && 'TypeCast' in n) n = (n.TypeCast as Json).arg as Json;
  const ref = n?.ColumnRef as { fields?: unknown[] } | undefined;
  if (!ref?.fields) return undefined;
  const parts = ref.fields.map(str);
  if (parts.some((p) => p === undefined)) return undefined;
  return parts.length === 1 ? { qualifier: undefined, column: parts[0]! } : { qualifier: parts[parts.length - 2], column: parts[parts.length - 1]! };
}

function isValue(node: unknown): boolean {
  let n = node as Json | undefined;
  while (n && 'TypeCast' in n) n = (n.TypeCast as Json).arg as Json;
  return !!n && ('A_Const' in n || 'ParamRef' in n || 'FuncCall' in n);
}

/**
 * Parses each statement with PostgreSQL's own parser and finds, for the target table, the
 * columns used in equality filters, joins (with which tables and columns), range filters and
 * GROUP BY, weighted by calls.
 */
export async function analyzeStatements(stats: readonly StatementStat[], table: string, tableColumns: readonly string[]): Promise<AccessPatterns> {
  const target = parseQualifiedName(table).name;
  const columns: Record<string, ColumnUsage> = {};
  const usage = (c: string): ColumnUsage => (columns[c] ??= { equality: 0, range: 0, groupBy: 0, joins: {} });
  const known = new Set(tableColumns);
  let statements = 0;
  let calls = 0;
  const workload = { pointLookups: 0, ranges: 0, joins: 0, aggregations: 0 };

  for (const s of stats) {
    let tree: unknown;
    try {
      tree = await parse(s.query);
    } catch {
      continue; // not parseable by this parser version: ignore rather than guess
    }
    const aliases = new Map<string, string>();
    for (const [tag, node] of nodes(tree)) {
      // UPDATE/DELETE/INSERT hold their target as an untagged RangeVar in `relation`.
      const n = tag === 'RangeVar' ? node
        : (tag === 'UpdateStmt' || tag === 'DeleteStmt' || tag === 'InsertStmt') ? node.relation as Json | undefined : undefined;
      if (!n?.relname) continue;
      const rel = n.relname as string;
      aliases.set(rel, rel);
      const alias = (n.alias as { aliasname?: string } | undefined)?.aliasname;
      if (alias) aliases.set(alias, rel);
    }
    const relations = new Set(aliases.values());
    if (!relations.has(target)) continue;
    const resolve = (ref: ColumnRef): string | undefined => {
      if (ref.qualifier !== undefined) return aliases.get(ref.qualifier);
      if (relations.size === 1) return [...relations][0];
      return known.has(ref.column) ? target : undefined;
    };
    statements++;
    calls += s.calls;
    const flags = { point: false, range: false, join: false, agg: false };
    for (const [tag, n] of nodes(tree)) {
      if (tag === 'A_Expr') {
        const kind = n.kind as string;
        const op = str((n.name as unknown[] | undefined)?.[0]);
        const l = columnRef(n.lexpr);
        const r = columnRef(n.rexpr);
        if ((kind === 'AEXPR_OP' && op === '=') || kind === 'AEXPR_IN') {
          if (l && r) {
            const lt = resolve(l);
            const rt = resolve(r);
            if (lt && rt && lt !== rt) {
              if (lt === target) usage(l.column).joins[`${rt}.${r.column}`] = (usage(l.column).joins[`${rt}.${r.column}`] ?? 0) + s.calls;
              if (rt === target) usage(r.column).joins[`${lt}.${l.column}`] = (usage(r.column).joins[`${lt}.${l.column}`] ?? 0) + s.calls;
              flags.join = true;
            }
          } else {
            const ref = l ?? r;
            const other = l ? n.rexpr : n.lexpr;
            if (ref && resolve(ref) === target && (isValue(other) || kind === 'AEXPR_IN')) {
              usage(ref.column).equality += s.calls;
              flags.point = true;
            }
          }
        } else if ((kind === 'AEXPR_OP' && op !== undefined && RANGE_OPS.has(op)) || kind === 'AEXPR_BETWEEN') {
          const ref = l ?? r;
          if (ref && resolve(ref) === target) {
            usage(ref.column).range += s.calls;
            flags.range = true;
          }
        }
      } else if (tag === 'SelectStmt') {
        for (const g of (n.groupClause as unknown[] | undefined) ?? []) {
          const ref = columnRef(g);
          if (ref && resolve(ref) === target) {
            usage(ref.column).groupBy += s.calls;
            flags.agg = true;
          }
        }
      } else if (tag === 'FuncCall') {
        const names = ((n.funcname as unknown[] | undefined) ?? []).map(str);
        if (AGGREGATES.has(names[names.length - 1] ?? '')) flags.agg = true;
      }
    }
    if (flags.point) workload.pointLookups += s.calls;
    if (flags.range) workload.ranges += s.calls;
    if (flags.join) workload.joins += s.calls;
    if (flags.agg) workload.aggregations += s.calls;
  }
  const share = (x: number) => (calls ? x / calls : 0);
  return {
    table,
    statements,
    calls,
    columns,
    workload: { pointLookups: share(workload.pointLookups), ranges: share(workload.ranges), joins: share(workload.joins), aggregations: share(workload.aggregations) },
    source: stats.length ? 'pg_stat_statements' : 'none',
  };
}
