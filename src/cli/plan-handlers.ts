import { writeFileSync } from 'node:fs';
import { analyzeInput, planForInput } from '../plan/analyze.js';
import { resolveCopyFormat } from '../input/copy-format.js';
import { inputSource } from '../input/input-source.js';
import { migrate } from '../store/migrate.js';
import type { ColumnStats } from '../plan/column-stats.js';
import type { ShardingProfile } from '../plan/sharding-profile.js';
import { headerMode, validateLocalLoadOptions, type LocalLoadOptionValues } from '../pipeline/options-schema.js';
import { fail, withCoordinator } from './handlers.js';

export interface AnalyzeFlags {
  format: 'csv' | 'text';
  delimiter?: string;
  quote?: string;
  escape?: string;
  null?: string;
  header?: boolean;
  sampleRows?: number;
  seed?: number;
  json?: boolean;
}

export interface PlanFlags extends AnalyzeFlags {
  table: string;
  coordinator?: string;
  config?: string;
  distributionColumn?: string;
  shardCount?: number;
  keepKeys?: boolean;
  saveProfile?: string;
  expectedRows?: number;
}

const sampleFlags = (flags: AnalyzeFlags) => ({
  format: flags.format, delimiter: flags.delimiter, quote: flags.quote, escape: flags.escape, null: flags.null,
  header: flags.header, sampleRows: flags.sampleRows, seed: flags.seed,
});

/** analyze's flags, checked by the load options schema (the same words and limits as load's). */
function analyzeValues(flags: AnalyzeFlags): LocalLoadOptionValues {
  return validateLocalLoadOptions(sampleFlags(flags));
}

function planValues(flags: PlanFlags): LocalLoadOptionValues {
  return validateLocalLoadOptions({
    ...sampleFlags(flags), distributionColumn: flags.distributionColumn, shardCount: flags.shardCount,
    keepKeys: flags.keepKeys, saveProfile: flags.saveProfile, expectedRows: flags.expectedRows,
  });
}

function sampleOptions(values: LocalLoadOptionValues) {
  return {
    header: headerMode(values.header),
    ...(values.sampleRows !== undefined ? { rows: values.sampleRows } : {}),
    ...(values.seed !== undefined ? { seed: values.seed } : {}),
  };
}

function formatOf(values: LocalLoadOptionValues) {
  return resolveCopyFormat({ format: values.format, delimiter: values.delimiter, quote: values.quote, escape: values.escape, null: values.null });
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function columnsTable(columns: ColumnStats[]): string {
  const rows = columns.map((c) => [
    c.name, c.type, pct(c.nullFraction), c.distinctEstimate.toLocaleString('en-US'),
    c.heavyHitters[0] ? `${c.heavyHitters[0].value.slice(0, 14)} ${pct(c.heavyHitters[0].share)}` : '-',
    c.monotonicity === undefined ? '-' : c.monotonicity.toFixed(2), c.averageWidth.toFixed(1),
  ]);
  const head = ['column', 'type', 'null', 'distinct~', 'top value', 'order', 'width'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export async function runAnalyze(file: string, flags: AnalyzeFlags): Promise<void> {
  try {
    const values = analyzeValues(flags);
    const a = await analyzeInput(inputSource(file), formatOf(values), sampleOptions(values));
    const sample = { rows: a.sample.rows.length, seconds: Number(a.sample.seconds.toFixed(3)), method: a.sample.method, estimatedRows: a.sample.estimatedRows };
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ source: a.sample.source, header: a.sample.header ?? null, sample, columns: a.columns })}\n`);
    } else {
      process.stdout.write(`${a.sample.source}: about ${a.sample.estimatedRows.toLocaleString('en-US')} rows; sampled ${sample.rows} `
        + `(${sample.method}) in ${sample.seconds} s\n${columnsTable(a.columns)}\n`);
    }
  } catch (err) {
    fail(flags, err);
  }
}

export function profileText(p: ShardingProfile): string {
  const lines = [
    p.kind === 'reference' ? `${p.table}: reference table`
      : `${p.table}: distribute by ${p.distributionColumn}, ${p.shardCount} shards${p.colocateWith ? `, colocated with ${p.colocateWith}` : ''}`,
    ...p.reasons.map((r) => `  - ${r}`),
  ];
  if (p.isolate.length) lines.push(`isolate: ${p.isolate.join(', ')}`);
  if (p.splitPoints.length) lines.push(`split at hash values: ${p.splitPoints.join(', ')}`);
  for (const r of p.referenceTables) lines.push(`make ${r.table} a reference table: ${r.reason}`);
  for (const k of p.keyChanges) lines.push(`widen key ${k.constraint} to (${k.columns.join(', ')})`);
  if (p.shards.length) {
    const perNode = new Map<string, { shards: number; load: number }>();
    for (const s of p.shards) {
      const e = perNode.get(s.node ?? '(colocation group)') ?? { shards: 0, load: 0 };
      e.shards++;
      e.load += s.load;
      perNode.set(s.node ?? '(colocation group)', e);
    }
    for (const [node, e] of perNode) lines.push(`  ${node}: ${e.shards} shards, ${pct(e.load)} of predicted load`);
  }
  lines.push('candidates:');
  for (const c of p.candidates) lines.push(`  ${c.column.padEnd(20)} ${String(c.score).padStart(6)}  ${c.rejected ?? c.reasons.slice(0, 2).join('; ')}`);
  lines.push(`sample: ${p.sample.rows} rows (${p.sample.method}) in ${p.sample.seconds.toFixed(3)} s`);
  return `${lines.join('\n')}\n`;
}

export async function runPlan(file: string, flags: PlanFlags): Promise<void> {
  try {
    const values = planValues(flags);
    const plan = await withCoordinator({ coordinator: flags.coordinator, config: flags.config }, async (db) => {
      await migrate(db);
      return planForInput(db, inputSource(file), formatOf(values), {
        table: flags.table, ...sampleOptions(values),
        ...(values.distributionColumn ? { distributionColumn: values.distributionColumn } : {}),
        ...(values.shardCount !== undefined ? { shardCount: values.shardCount } : {}),
        ...(values.keepKeys ? { keepKeys: true } : {}),
        ...(values.expectedRows ? { expectedRows: values.expectedRows } : {}),
      });
    });
    if (values.saveProfile) writeFileSync(values.saveProfile, `${JSON.stringify(plan.profile, null, 2)}\n`);
    const p = plan.profile;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...p, sample: { ...p.sample, seconds: Number(plan.seconds.toFixed(3)) } })}\n`);
    } else {
      process.stdout.write(profileText(p));
    }
  } catch (err) {
    fail(flags, err);
  }
}
