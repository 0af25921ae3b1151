/**
 * Benchmark: the whole-schema plan against the per-table plans of today and an expert's layout.
 * One generated multi-tenant schema (companies; campaigns, ads, clicks, impressions keyed by
 * (company_id, id), foreign keys up the chain), the same files loaded three ways into three schemas
 * of one Citus cluster (coordinator + 2 workers):
 *   (a) group:     `load --schema grp DIR` (plan the group, lay it out, load every file);
 *   (b) per-table: `load -t per.<table> FILE` one table at a time, parents first (each planned alone);
 *   (c) expert:    companies distributed by id, every child by its company column, colocated, by hand.
 * Then pgbench runs the schema's tenant-scoped and join queries on each and prints tps and ratios.
 *
 * Size via environment: SCHEMA_BENCH_COMPANIES (a list, default 8,200: one run each), SCHEMA_BENCH_CLICKS (default 200000,
 * impressions the same), SCHEMA_BENCH_SECONDS per pgbench run (default 5), SCHEMA_BENCH_CLIENTS
 * (default 4), SCHEMA_BENCH_WHALE (a share like 0.3 gives company 1 that share of the activity).
 *
 *   npm run build && SCHEMA_BENCH_COMPANIES=8,20 SCHEMA_BENCH_CLICKS=2000 SCHEMA_BENCH_SECONDS=1 node dist/bench/schema-layout.js
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { multiTenantSchema, qualify, type GeneratedSchema } from '../scripts/schema-generators.js';

const env = (name: string, fallback: number) => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${v}`);
  return n;
};
/** One run per company count: the issue's small tenant table, and a larger one. */
const COMPANY_COUNTS = (process.env.SCHEMA_BENCH_COMPANIES ?? '8,200').split(',').map((v) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 2) throw new Error(`SCHEMA_BENCH_COMPANIES must list integers of at least 2, not ${v}`);
  return n;
});
const CLICKS = Math.round(env('SCHEMA_BENCH_CLICKS', 200_000));
const SECONDS = Math.round(env('SCHEMA_BENCH_SECONDS', 5));
const CLIENTS = Math.round(env('SCHEMA_BENCH_CLIENTS', 4));
const WHALE = process.env.SCHEMA_BENCH_WHALE ? env('SCHEMA_BENCH_WHALE', 0.3) : undefined;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PGBENCH = join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), 'pgbench');

function cli(argv: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [CLI, ...argv, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 3_600_000 });
  if (r.status !== 0) throw new Error(`citus-adaptive-load ${argv.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** Runs a pgbench script for SECONDS and returns its tps. */
function pgbench(url: string, script: string, dir: string, name: string): number {
  const file = join(dir, `${name}.sql`);
  writeFileSync(file, script);
  const r = spawnSync(PGBENCH, ['-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-f', file, url], { encoding: 'utf8', timeout: (SECONDS + 120) * 1000 });
  const m = /tps = ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench ${name} failed: ${r.stderr}${r.stdout}`);
  return Number(m[1]);
}

/** A query of the schema as a pgbench script: tenant queries pick a random company each time. */
function script(gen: GeneratedSchema, schema: string, kind: 'tenant' | 'join', COMPANIES: number): string {
  const qs = gen.queries.filter((q) => q.kind === kind);
  return `\\set cid random(1, ${COMPANIES})\nSET citus.enable_repartition_joins TO on;\n`
    + qs.map((q) => `${qualify(q.sql, schema).replace(/\$1/g, ':cid').replace(/\s+/g, ' ')};`).join('\n') + '\n';
}

async function layoutOf(url: string, schema: string): Promise<string> {
  return withClient(url, async (c) => {
    const r = await c.query(`SELECT c.relname AS t, p.partmethod, p.repmodel, p.colocationid,
                                    CASE WHEN p.partkey IS NULL THEN NULL ELSE column_to_column_name(p.logicalrelid, p.partkey) END AS col
                               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
                              WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1`, [schema]);
    return r.rows.map((x) => `${x.t}=${x.partmethod === 'h' ? `${x.col}@${x.colocationid}` : x.partmethod === 'n' ? (x.repmodel === 't' ? 'reference' : 'citus-local') : 'local'}`).join(' ');
  });
}

async function main(): Promise<void> {
  const missing = citusUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}; it compares Citus layouts and needs a Citus cluster`);
    return;
  }
  for (const companies of COMPANY_COUNTS) {
    await runScale(companies);
    console.log('');
  }
}

async function runScale(COMPANIES: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cal-bench-schema-'));
  const gen = multiTenantSchema(join(dir, 'data'), {
    companies: COMPANIES, campaignsPerCompany: 5, adsPerCampaign: 4, clicks: CLICKS, impressions: CLICKS, ...(WHALE ? { whaleShare: WHALE } : {}),
  });
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    await withClient(url, async (c) => {
      for (const s of ['grp', 'per', 'expert']) {
        await c.query(`CREATE SCHEMA ${s}`);
        await c.query(qualify(gen.ddl, s));
      }
      // The expert's layout, by hand: the tenant table by its id, every child by its tenant column, colocated.
      await c.query("SELECT create_distributed_table('expert.companies', 'id')");
      for (const t of gen.tables.slice(1)) await c.query('SELECT create_distributed_table($1, $2, colocate_with => $3)', [`expert.${t}`, gen.expert.tables[t], 'expert.companies']);
    });
    const started = Date.now();
    cli(['load', '--schema', 'grp', join(dir, 'data'), '--coordinator', url]);
    const groupSeconds = (Date.now() - started) / 1000;
    let perSeconds = 0;
    // Today's per-table plans can refuse a schema outright (a table planned as a reference table
    // that references a distributed one): then that layout has no figures, and the reason is printed.
    let perFailure: string | undefined;
    for (const t of gen.tables) {
      const t0 = Date.now();
      try {
        cli(['load', '-t', `per.${t}`, join(dir, 'data', `${t}.csv`), '--coordinator', url]);
      } catch (err) {
        perFailure = `per-table load of ${t} failed: ${(err as Error).message.split('\n')[0]}`;
        break;
      }
      perSeconds += (Date.now() - t0) / 1000;
    }
    for (const t of gen.tables) cli(['load', '-t', `expert.${t}`, join(dir, 'data', `${t}.csv`), '--coordinator', url]);
    await withClient(url, async (c) => {
      for (const s of ['grp', 'per', 'expert']) for (const t of gen.tables) await c.query(`ANALYZE ${s}.${t}`);
    });

    console.log(`schema: ${COMPANIES} companies, ${gen.rows.campaigns} campaigns, ${gen.rows.ads} ads, ${CLICKS} clicks and impressions`
      + `${WHALE ? `, company 1 holding ${WHALE * 100}% of the activity` : ''}; pgbench -c ${CLIENTS} for ${SECONDS} s per run`);
    console.log(`load: group ${groupSeconds.toFixed(1)} s (plan, layout and all files), per-table ${perFailure ? 'failed' : `${perSeconds.toFixed(1)} s`}`);
    if (perFailure) console.log(`  ${perFailure}`);
    const layouts: Record<string, string> = { group: 'grp', ...(perFailure ? {} : { 'per-table': 'per' }), expert: 'expert' };
    for (const [name, s] of Object.entries(layouts)) console.log(`  ${name.padEnd(10)} ${await layoutOf(url, s)}`);
    const tps: Record<string, Record<'tenant' | 'join', number>> = {};
    for (const [name, s] of Object.entries(layouts)) {
      tps[name] = { tenant: pgbench(url, script(gen, s, 'tenant', COMPANIES), dir, `${s}-tenant`), join: pgbench(url, script(gen, s, 'join', COMPANIES), dir, `${s}-join`) };
    }
    const fmt = (x: number | undefined, width: number, digits: number) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits)).padStart(width);
    console.log('\nworkload            group tps   per-table tps   expert tps   group/per-table   group/expert');
    for (const kind of ['tenant', 'join'] as const) {
      const g = tps.group![kind];
      const p = tps['per-table']?.[kind];
      const e = tps.expert![kind];
      console.log(`${(kind === 'tenant' ? 'tenant-scoped' : 'joins').padEnd(18)} ${fmt(g, 10, 1)} ${fmt(p, 15, 1)} ${fmt(e, 12, 1)}`
        + ` ${fmt(p === undefined ? undefined : g / p, 17, 2)} ${fmt(g / e, 14, 2)}`);
    }
  } finally {
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
