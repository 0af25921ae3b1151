/** Handlers of `plan --schema` and `load --schema`: call the schema loader, render its report. */
import { displaySql, type SchemaStep } from '../plan/schema-changes.js';
import { loadSchema, planSchemaLoad, type SchemaLoadOptions, type SchemaLoadSummary, type SchemaPlanReport } from '../pipeline/schema-loader.js';
import { headerMode, validateLocalLoadOptions } from '../pipeline/options-schema.js';
import { connectionInput, fail, type CommonFlags } from './handlers.js';

export interface SchemaFlags extends CommonFlags {
  schema: string;
  format: 'csv' | 'text';
  delimiter?: string;
  quote?: string;
  escape?: string;
  null?: string;
  encoding?: string;
  header?: boolean;
  sampleRows?: number;
  seed?: number;
  quiet?: boolean;
  commitEvery?: string;
}

function schemaOptions(sources: string[], flags: SchemaFlags): SchemaLoadOptions {
  // The same words and limits as a one-table load's flags.
  const v = validateLocalLoadOptions({
    format: flags.format, delimiter: flags.delimiter, quote: flags.quote, escape: flags.escape, null: flags.null,
    encoding: flags.encoding, header: flags.header, sampleRows: flags.sampleRows, seed: flags.seed, commitEvery: flags.commitEvery,
  });
  return {
    schema: flags.schema, sources, connection: connectionInput(flags),
    format: v.format, delimiter: v.delimiter, quote: v.quote, escape: v.escape, null: v.null, encoding: v.encoding,
    header: headerMode(v.header),
    ...(v.sampleRows !== undefined ? { sampleRows: v.sampleRows } : {}), ...(v.seed !== undefined ? { seed: v.seed } : {}),
    ...(v.commitEvery !== undefined ? { commitEvery: v.commitEvery } : {}),
    onNotice: flags.quiet || flags.json ? undefined : (m) => process.stderr.write(`note: ${m}\n`),
  };
}

const short = (t: string) => t.slice(t.lastIndexOf('.') + 1);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const stepJson = (s: SchemaStep) => ({ kind: s.kind, table: s.table, sql: displaySql(s), why: s.why });

export function schemaPlanText(r: SchemaPlanReport): string {
  const p = r.plan;
  const lines: string[] = [];
  const refs = p.tables.filter((t) => t.kind === 'reference');
  lines.push(`schema ${p.schema}: ${p.tables.length} table(s), ${p.groups.length} colocation group(s), ${refs.length} reference table(s)`);
  for (const g of p.groups) {
    lines.push('', `colocation group ${short(g.root)}.${g.column} (${g.columnType}): ${g.shardCount} shards, about ${Math.round(g.estimatedRows)} rows`);
    for (const why of g.reasons) lines.push(`  - ${why}`);
    for (const name of g.tables) {
      const t = p.tables.find((x) => x.table === name)!;
      lines.push(`  ${name.padEnd(28)} by ${String(t.distributionColumn).padEnd(16)} ${t.reasons.join('; ')}`);
    }
    for (const t of g.isolate) lines.push(`  isolate tenant ${t.value} (${pct(t.share)} of the group's rows) with CASCADE`);
  }
  const grouped = new Set(p.groups.flatMap((g) => g.tables));
  const lone = p.tables.filter((t) => t.kind === 'distributed' && !grouped.has(t.table));
  if (lone.length) {
    lines.push('', 'distributed on their own:');
    for (const t of lone) lines.push(`  ${t.table.padEnd(28)} by ${String(t.distributionColumn).padEnd(16)} ${t.shardCount} shards; ${t.reasons.join('; ')}`);
  }
  if (refs.length) {
    lines.push('', 'reference tables:');
    for (const t of refs) lines.push(`  ${t.table.padEnd(28)} ${t.reasons.join('; ')}`);
  }
  if (p.foreignKeys.length) {
    lines.push('', 'foreign keys:');
    for (const f of p.foreignKeys) {
      lines.push(`  ${f.keep ? 'keep' : 'drop'} ${f.name}: ${short(f.table)}(${f.columns.join(', ')}) -> ${short(f.refTable)}(${f.refColumns.join(', ')}): ${f.reason}`);
    }
  }
  for (const k of p.inferredKeys) {
    lines.push(`  inferred ${short(k.table)}(${k.columns.join(', ')}) -> ${short(k.refTable)}(${k.refColumns.join(', ')}): ${pct(k.containment)} of sampled values contained`);
  }
  lines.push('', `order: ${p.tables.map((t) => short(t.table)).join(', ')}`);
  lines.push('', r.steps.length ? `changes (${r.steps.length}):` : 'changes: none, the cluster already matches the plan');
  r.steps.forEach((s, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${displaySql(s)};`, `      -- ${s.why}`));
  if (r.sources.length) {
    lines.push('', 'sources:');
    for (const s of r.sources) {
      lines.push(`  ${s.table.padEnd(28)} ${s.file}  about ${Math.round(s.estimatedRows)} rows${s.loaded ? `  (already loaded: job ${s.loaded.jobId})` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function schemaLoadText(s: SchemaLoadSummary): string {
  const lines = [schemaPlanText(s).trimEnd(), ''];
  const done = s.applied.filter((a) => a.status === 'done').length;
  lines.push(`layout: ${done} change(s) made, ${s.applied.length - done} already in place`);
  for (const a of s.applied) if (a.note) lines.push(`  skipped ${displaySql(a.step)}: ${a.note}`);
  lines.push('tables:');
  for (const t of s.tables) {
    const what = t.status === 'loaded' ? `loaded ${t.rows} rows (${t.path}, job ${t.jobId})`
      : t.status === 'resumed' ? `resumed job ${t.jobId} after its last committed chunk: ${t.rows} rows in all (${t.path})`
      : t.status === 'already-loaded' ? `already loaded by job ${t.jobId}`
        : t.status === 'failed' ? `FAILED: ${t.error}` : t.status === 'not-reached' ? 'not reached' : 'no source file (its rows stay)';
    const check = t.rowsAfter === null ? '' : `; holds ${t.rowsAfter} rows${t.verified ? ' (verified)' : `, expected ${t.expectedRows}`}`;
    lines.push(`  ${t.table.padEnd(28)} ${what}${check}`);
  }
  lines.push(`schema job ${s.schemaJobId}: ${s.ok ? 'committed' : 'failed'}`
    + (s.continued ? ` (run ${s.continued.runs}; continued ${s.continued.tables.length ? s.continued.tables.map(short).join(', ') : 'no table'})` : '')
    + '; see adaptive_load.schema_loads');
  lines.push(`atomicity: per table. Each table's load is one atomic distributed transaction (one per chunk with --commit-every), `
    + 'committed in dependency order; the schema as a whole is not one transaction, since layout DDL and foreign keys run between tables. '
    + (s.ok ? 'Everything finished.' : 'Run the same command again to continue this schema job: finished tables and layout steps are not repeated.'));
  if (s.error) lines.push(`error: ${s.error}`);
  return `${lines.join('\n')}\n`;
}

export async function runSchemaPlan(sources: string[], flags: SchemaFlags): Promise<void> {
  try {
    const r = await planSchemaLoad(schemaOptions(sources, flags));
    process.stdout.write(flags.json ? `${JSON.stringify({ ok: true, plan: r.plan, steps: r.steps.map(stepJson), sources: r.sources, current: r.current })}\n`
      : schemaPlanText(r));
  } catch (err) {
    fail(flags, err);
  }
}

export async function runSchemaLoad(sources: string[], flags: SchemaFlags): Promise<void> {
  try {
    const s = await loadSchema(schemaOptions(sources, flags));
    process.stdout.write(flags.json ? `${JSON.stringify({
      ok: s.ok, ...(s.error ? { error: { kind: 'SchemaLoadError', message: s.error } } : {}), atomicity: s.atomicity,
      schemaJobId: s.schemaJobId, continued: s.continued,
      plan: s.plan, steps: s.steps.map(stepJson), applied: s.applied.map((a) => ({ ...stepJson(a.step), status: a.status, ...(a.note ? { note: a.note } : {}) })),
      tables: s.tables, sources: s.sources, seconds: Number(s.loadSeconds.toFixed(3)),
    })}\n` : schemaLoadText(s));
    if (!s.ok) {
      if (!flags.json) process.stderr.write(`citus-adaptive-load: ${s.error}\n`);
      process.exitCode = 1;
    }
  } catch (err) {
    fail(flags, err);
  }
}
