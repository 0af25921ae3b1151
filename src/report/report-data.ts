import type { Queryable } from '../connect/queryable.js';
import { quoteLiteral } from '../connect/sql.js';
import { latestAdvice } from '../store/window-store.js';
import { collectSummary, maxShareErrorOf, wapeOf, type ClusterSummary } from './cluster-summary.js';

/** Everything a DBA report shows, gathered once; every renderer works from this. */
export interface ReportData {
  readonly generatedAt: string;
  /** The cluster at a glance; every renderer shows it first. */
  readonly summary: ClusterSummary;
  readonly tables: TableReport[];
  readonly windows: { windowId: number; from: string; to: string; mape: number | null; wape: number | null; maxShareError: number | null;
    /** False when a node did not answer: no actual shares, nothing learned or moved (unreachable names it). */
    complete: boolean; unreachable: string[]; nodes: { node: string; predictedShare: number | null; actualShare: number }[] }[];
  /** Each worker in the latest monitoring window: live metrics and the capacity the rebalancer uses. */
  readonly nodeHealth: NodeHealth[];
  readonly loads: { jobId: number; table: string; source: string; path: string | null; reason: string | null; status: string; rows: number | null; seconds: number | null; startedAt: string }[];
  readonly actions: { takenAt: string; kind: string; detail: string; undo: string | null }[];
  /**
   * The advice the monitor stored with its latest window (rebalance/advice.ts decides it; the
   * report does not decide again), then layout changes fresh sharding profiles suggest.
   */
  readonly recommendations: { kind: string; detail: string; sql: string | null }[];
}

export interface NodeHealth {
  readonly node: string;
  readonly windowEnd: string;
  readonly busySeconds: number;
  readonly xactsPerSecond: number;
  readonly cacheHitRatio: number | null;
  readonly waitingBackends: number;
  readonly connectionsUsed: number;
  readonly hostCpuBusy: number | null;
  readonly hostMemoryUsed: number | null;
  readonly backgroundMs: number;
  readonly capacity: number;
}

export interface TableReport {
  readonly table: string;
  readonly kind: string;
  readonly distributionColumn: string | null;
  readonly shardCount: number;
  readonly colocatedWith: string[];
  /**
   * Per node holding shards of the table. A worker the coordinator cannot reach has
   * `reachable: false` and `bytes: null` (its size is unknown, not zero).
   */
  readonly nodes: { node: string; shards: number; bytes: number | null; predictedLoad: number | null; reachable: boolean }[];
  /** Busiest over mean node, by bytes, over the reachable nodes only. */
  readonly sizeSkew: number;
  /** Nodes left out of sizeSkew because they could not be reached. */
  readonly unreachableNodes: string[];
  readonly hotShards: { shardId: string; node: string; predictedShare: number }[];
  readonly isolatedTenants: string[];
}

/** An action as a sentence (moves and setting changes), falling back to its JSON. */
function describeAction(kind: string, detail: unknown): string {
  const d = detail as Record<string, string>;
  if (kind === 'move' && d.shardId) return `shard ${d.shardId} of ${d.table} moved from ${d.from} to ${d.to}`;
  if (kind === 'setting' && d.name) return `${d.name} on ${d.node}: ${d.from} -> ${d.to} (${d.reason})`;
  // Isolations, splits and their checks carry their own sentence (rebalance/hot-shards.ts, action-check.ts).
  if (typeof d.text === 'string') return d.text;
  return JSON.stringify(detail);
}

export async function collectReport(db: Queryable, table?: string): Promise<ReportData> {
  const citus = (await db.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).rowCount === 1;
  const tables = !citus ? { rows: [] as { t: string; kind: string; col: string | null; colocationid: number }[] } : await db.query<{ t: string; kind: string; col: string | null; colocationid: number }>(
    `SELECT logicalrelid::regclass::text AS t,
            CASE WHEN partmethod = 'h' THEN 'distributed' WHEN repmodel = 't' THEN 'reference' ELSE 'citus local' END AS kind,
            CASE WHEN partkey IS NULL THEN NULL ELSE column_to_column_name(logicalrelid, partkey) END AS col, colocationid
       FROM pg_dist_partition WHERE $1::regclass IS NULL OR logicalrelid = $1::regclass ORDER BY 1`, [table ?? null]);
  // citus_shards reports no size for a worker it cannot reach (summed, it read as 0 B and
  // doubled the skew): ask every worker, and leave the silent ones out of the size figures.
  const unreachable = !citus || tables.rows.length === 0 ? new Set<string>() : new Set((await db.query<{ node: string }>(
    "SELECT nodename || ':' || nodeport AS node FROM run_command_on_workers('SELECT 1') WHERE NOT success")).rows.map((r) => r.node));
  const result: TableReport[] = [];
  for (const t of tables.rows) {
    const nodes = await db.query<{ node: string; shards: number; bytes: string; predicted: number | null }>(
      `SELECT cs.nodename || ':' || cs.nodeport AS node, count(*)::int AS shards, sum(cs.shard_size)::text AS bytes,
              sum(p.predicted_share) AS predicted
         FROM citus_shards cs LEFT JOIN adaptive_load.shard_predictions p ON p.shard_id = cs.shardid
        WHERE cs.table_name = $1::regclass GROUP BY 1 ORDER BY 1`, [t.t]);
    const colocated = await db.query<{ t: string }>(
      'SELECT logicalrelid::regclass::text AS t FROM pg_dist_partition WHERE colocationid = $1 AND logicalrelid <> $2::regclass ORDER BY 1', [t.colocationid, t.t]);
    const hot = await db.query<{ shard_id: string; node: string; share: number }>(
      `SELECT p.shard_id::text, cs.nodename || ':' || cs.nodeport AS node, p.predicted_share AS share
         FROM adaptive_load.shard_predictions p JOIN citus_shards cs ON cs.shardid = p.shard_id
        WHERE cs.table_name = $1::regclass ORDER BY p.predicted_share DESC LIMIT 5`, [t.t]);
    const profile = await db.query<{ isolate: string[] | null }>(
      `SELECT ARRAY(SELECT jsonb_array_elements_text(profile->'isolate')) AS isolate FROM adaptive_load.profiles
        WHERE table_name IN ($1, split_part($1, '.', 2)) AND applied ORDER BY created_at DESC LIMIT 1`, [t.t]);
    const bytes = nodes.rows.filter((n) => !unreachable.has(n.node)).map((n) => Number(n.bytes));
    const mean = bytes.reduce((a, b) => a + b, 0) / Math.max(1, bytes.length);
    result.push({
      table: t.t,
      kind: t.kind,
      distributionColumn: t.col,
      shardCount: nodes.rows.reduce((a, n) => a + n.shards, 0) / (t.kind === 'reference' ? Math.max(1, nodes.rows.length) : 1),
      colocatedWith: colocated.rows.map((r) => r.t),
      nodes: nodes.rows.map((n) => {
        const reachable = !unreachable.has(n.node);
        return { node: n.node, shards: n.shards, bytes: reachable ? Number(n.bytes) : null, predictedLoad: n.predicted, reachable };
      }),
      sizeSkew: mean > 0 ? Math.max(...bytes) / mean : 1,
      unreachableNodes: nodes.rows.filter((n) => unreachable.has(n.node)).map((n) => n.node),
      hotShards: hot.rows.filter((h) => h.share > 2 / Math.max(1, nodes.rows.reduce((a, n) => a + n.shards, 0))).map((h) => ({ shardId: h.shard_id, node: h.node, predictedShare: h.share })),
      isolatedTenants: profile.rows[0]?.isolate ?? [],
    });
  }
  const windows = await db.query<{ window_id: string; from_at: Date; to_at: Date; mape: number | null; wape: number | null; max_share_error: number | null; complete: boolean; unreachable: string[]; nodes: ReportData['windows'][number]['nodes'] }>(
    // `ORDER BY window_id` would name the output column, the text: qualify it to sort by number.
    'SELECT w.window_id::text AS window_id, w.from_at, w.to_at, w.mape, w.wape, w.max_share_error, w.complete, w.unreachable, w.nodes FROM adaptive_load.windows w ORDER BY w.window_id DESC LIMIT 50');
  // Node metrics come from the monitor, which needs Citus (and pg_dist_node exists only with it).
  const health = !citus ? { rows: [] } : await db.query<{ node: string; to_at: Date; busy_ms: number; xacts_per_second: number; cache_hit_ratio: number | null;
    waiting_backends: number; connections_used: number; host_cpu_busy: number | null; host_memory_used: number | null; background_ms: number; capacity: number }>(
    `SELECT m.node, w.to_at, m.busy_ms, m.xacts_per_second, m.cache_hit_ratio, m.waiting_backends, m.connections_used,
            m.host_cpu_busy, m.host_memory_used, m.background_ms,
            coalesce((SELECT adaptive_load.node_capacity(n.nodeid) FROM pg_dist_node n WHERE n.nodename || ':' || n.nodeport = m.node), 1) AS capacity
       FROM adaptive_load.node_metrics m JOIN adaptive_load.windows w USING (window_id)
      WHERE m.window_id = (SELECT max(window_id) FROM adaptive_load.node_metrics) ORDER BY m.node`);
  const loads = await db.query<{ job_id: string; table_name: string; source: string; load_path: string | null; path_reason: string | null; status: string; rows_loaded: string | null; seconds: number | null; started_at: Date }>(
    `SELECT l.job_id::text AS job_id, table_name, source, load_path, path_reason, status, rows_loaded::text, seconds, started_at FROM adaptive_load.loads l
      WHERE $1::text IS NULL OR table_name IN ($1, 'public.' || $1) ORDER BY l.job_id DESC LIMIT 20`, [table ?? null]);
  const actions = await db.query<{ taken_at: Date; kind: string; detail: unknown; undo_sql: string | null }>(
    'SELECT taken_at, kind, detail, undo_sql FROM adaptive_load.actions_taken LIMIT 20');
  const recommendations: ReportData['recommendations'] = (await latestAdvice(db, table))
    .map((a) => ({ kind: a.kind, detail: a.detail, sql: a.sql }));
  const advice = !citus ? { rows: [] as { table_name: string; col: string; cur: string | null; reason: string }[] } : await db.query<{ table_name: string; col: string; cur: string | null; reason: string }>(
    `SELECT p.table_name, p.distribution_column AS col, column_to_column_name(d.logicalrelid, d.partkey) AS cur, p.reasons->>0 AS reason
       FROM adaptive_load.current_profiles p JOIN pg_dist_partition d ON d.logicalrelid = to_regclass(p.table_name)
      WHERE NOT p.applied AND p.kind = 'distributed' AND d.partmethod = 'h'`);
  for (const a of advice.rows) {
    if (a.cur !== a.col) {
      recommendations.push({ kind: 'distribution-column', detail: `${a.table_name} is distributed by ${a.cur}; a fresh profile chooses ${a.col} (${a.reason})`,
        sql: `SELECT alter_distributed_table(${quoteLiteral(a.table_name)}, distribution_column => ${quoteLiteral(a.col)});` });
    }
  }
  // Tenant isolation a load advised (profile-step.ts stores it with the profile), while the
  // tenant is still not alone in a shard.
  const isolation = !citus ? { rows: [] as { detail: string; sql: string }[] } : await db.query<{ detail: string; sql: string }>(
    `SELECT a->>'detail' AS detail, a->>'sql' AS sql
       FROM adaptive_load.current_profiles p CROSS JOIN jsonb_array_elements(coalesce(p.profile->'advice', '[]')) a
      WHERE NOT p.applied AND to_regclass(p.table_name) IS NOT NULL AND ($1::text IS NULL OR to_regclass(p.table_name) = to_regclass($1))
        AND NOT coalesce((SELECT shardminvalue = shardmaxvalue FROM pg_dist_shard
                           WHERE shardid = get_shard_id_for_distribution_column(to_regclass(p.table_name), a->>'tenant')), true)`, [table ?? null]);
  for (const a of isolation.rows) recommendations.push({ kind: 'isolate-tenant', detail: a.detail, sql: a.sql });
  return {
    generatedAt: new Date().toISOString(),
    summary: await collectSummary(db, citus, recommendations.length),
    tables: result,
    windows: windows.rows.reverse().map((w) => ({ windowId: Number(w.window_id), from: w.from_at.toISOString(), to: w.to_at.toISOString(), mape: w.mape,
      wape: w.complete ? w.wape ?? wapeOf(w.nodes ?? []) : null,
      maxShareError: w.complete ? w.max_share_error ?? maxShareErrorOf(w.nodes ?? []) : null, complete: w.complete, unreachable: w.unreachable, nodes: w.nodes })),
    nodeHealth: health.rows.map((h) => ({ node: h.node, windowEnd: h.to_at.toISOString(), busySeconds: h.busy_ms / 1000, xactsPerSecond: h.xacts_per_second,
      cacheHitRatio: h.cache_hit_ratio, waitingBackends: h.waiting_backends, connectionsUsed: h.connections_used, hostCpuBusy: h.host_cpu_busy,
      hostMemoryUsed: h.host_memory_used, backgroundMs: h.background_ms, capacity: h.capacity })),
    loads: loads.rows.map((l) => ({ jobId: Number(l.job_id), table: l.table_name, source: l.source, path: l.load_path, reason: l.path_reason, status: l.status,
      rows: l.rows_loaded === null ? null : Number(l.rows_loaded), seconds: l.seconds, startedAt: l.started_at.toISOString() })),
    actions: actions.rows.map((a) => ({ takenAt: a.taken_at.toISOString(), kind: a.kind, detail: describeAction(a.kind, a.detail), undo: a.undo_sql })),
    recommendations,
  };
}
