/**
 * The planning step of a load: a table that is missing or not distributed yet gets a sharding
 * profile (planned from the input, or read from --profile) and is laid out by it; an existing
 * distributed table only gets advice, at most once a day per table, when a fresh profile would
 * lay it out differently. The planner (SQL parser, schema validator) is imported only when a
 * plan is needed: most loads go into existing tables and should not pay for loading it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type pg from 'pg';
import type { Distribution, TableInfo } from '../catalog/catalog.js';
import { parseQualifiedName, quoteQualifiedName } from '../connect/qualified-name.js';
import { InvalidConfigurationError } from '../errors.js';
import type { CopyFormat } from '../input/copy-format.js';
import type { InputSource } from '../input/input-source.js';
import type { PlanOptions } from '../plan/analyze.js';
import type { ShardingProfile } from '../plan/sharding-profile.js';
import type { HeaderMode } from '../input/columns.js';

/** The load options planning reads (LoadOptions extends them). */
export interface ProfileStepOptions {
  /** Target table, optionally schema-qualified; read as psql reads names. */
  table: string;
  /** Whether line 1 is a header. Default 'auto': a header when it names the table's columns. */
  header?: HeaderMode;
  /** Distribute a missing or local table by this column (the profile decides the rest). */
  distributionColumn?: string;
  /** Shard count when distributing. Default: the profile's (citus.shard_count, more for big inputs). */
  shardCount?: number;
  /** Use this sharding profile (JSON file) instead of planning one. */
  profileFile?: string;
  /** Write the planned profile to this file. */
  saveProfile?: string;
  /** Choose only among columns every primary/unique key includes, instead of widening keys. */
  keepKeys?: boolean;
  /** Compare an existing layout with a fresh profile even if one from the last day is stored. */
  recheckLayout?: boolean;
  /** Rows the table is expected to hold: plan for that size rather than the input's. Default: the input's. */
  expectedRows?: number;
  /**
   * For a load into an existing distributed table: isolate the tenants the sample shows above the
   * isolation threshold (and move them to the least loaded node) before the rows land. Default false: only advise.
   */
  isolateTenants?: boolean;
  /** Sample size and seed for the analysis. */
  sampleRows?: number;
  seed?: number;
}

/** How long a stored comparison of an existing layout with a fresh profile is reused. */
const LAYOUT_ADVICE_HOURS = 24;

function planOptions(options: ProfileStepOptions): PlanOptions {
  return {
    table: options.table,
    ...(options.distributionColumn ? { distributionColumn: options.distributionColumn } : {}),
    ...(options.shardCount ? { shardCount: options.shardCount } : {}),
    ...(options.keepKeys ? { keepKeys: true } : {}),
    ...(options.expectedRows ? { expectedRows: options.expectedRows } : {}),
    ...(options.sampleRows ? { rows: options.sampleRows } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    header: options.header ?? 'auto',
  };
}

/** The profile from --profile, else one planned from a sample of the input (saved when asked). */
export async function profileFor(db: pg.Client, source: InputSource, format: CopyFormat, options: ProfileStepOptions): Promise<ShardingProfile> {
  return (await plannedProfile(db, source, format, options)).profile;
}

/** A profile, and for a planned one how to plan again without the colocations Citus refused. */
async function plannedProfile(db: pg.Client, source: InputSource, format: CopyFormat, options: ProfileStepOptions):
  Promise<{ profile: ShardingProfile; replan?: (refused: ReadonlySet<string>) => ShardingProfile }> {
  if (options.profileFile) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(options.profileFile, 'utf8'));
    } catch (err) {
      throw new InvalidConfigurationError(`cannot read profile ${options.profileFile}: ${(err as Error).message}`, { cause: err });
    }
    const { validateProfile } = await import('../plan/sharding-profile.js');
    return { profile: validateProfile(raw, options.profileFile) };
  }
  const { planForInput } = await import('../plan/analyze.js');
  const plan = await planForInput(db, source, format, planOptions(options));
  if (options.saveProfile) writeFileSync(options.saveProfile, `${JSON.stringify(plan.profile, null, 2)}\n`);
  return { profile: plan.profile, replan: plan.replan };
}

/** Colocations Citus may refuse before it changes anything; a planned profile then tries its next candidate. */
const MAX_FALLBACKS = 3;

export interface AppliedProfile {
  profile: ShardingProfile;
  /** The stored profile's id, for the job record. */
  profileId: number;
}

/**
 * Plans (or reads) a profile and lays the table out by it: creates it when `tableExists` is
 * false (`onCreated` is called as soon as it exists, so a failure after can drop it), or
 * distributes the existing local table. Says what was decided through `notice`.
 */
export async function planAndApply(db: pg.Client, source: InputSource, format: CopyFormat, options: ProfileStepOptions,
  tableExists: boolean, onCreated: () => void, notice: (message: string) => void): Promise<AppliedProfile> {
  const planned = await plannedProfile(db, source, format, options);
  let profile = planned.profile;
  await checkProfileTable(db, profile, options);
  const { applyProfile } = await import('../plan/apply.js');
  const { storeProfile } = await import('../store/profile-store.js');
  const refused = new Set<string>();
  for (let attempt = 0; ; attempt++) {
    let created = false;
    try {
      const applied = await applyProfile(db, profile, tableExists, () => {
        created = true;
        onCreated();
      });
      const profileId = await storeProfile(db, profile, true, applied.statements);
      notice(describeProfile(profile));
      for (const n of applied.notes) notice(n);
      return { profile, profileId };
    } catch (err) {
      // Citus refusing a colocation (types, collations, shard counts it checks itself) is not the
      // end of a planned load: plan again without that pairing and say why. A profile the user
      // gave (--profile) is applied as given or not at all.
      const refusal = colocationRefusal(profile, err);
      if (!refusal || !planned.replan || attempt >= MAX_FALLBACKS) throw err;
      if (created) await dropTable(db, profile.table);
      refused.add(refusal.key);
      const next = planned.replan(refused);
      notice(`Citus refused colocating ${profile.table} with ${profile.colocateWith} (${refusal.message}); `
        + `falling back to ${next.kind === 'reference' ? 'a reference table' : `${next.distributionColumn}${next.colocateWith ? `, colocated with ${next.colocateWith}` : ' in a colocation group of its own'}`}`);
      profile = next;
    }
  }
}

/** The refused pairing when applying failed at create_distributed_table with colocate_with. */
function colocationRefusal(profile: ShardingProfile, err: unknown): { key: string; message: string } | undefined {
  if (!profile.colocateWith || !profile.distributionColumn) return undefined;
  const e = err as { message?: string; detail?: string; cause?: { message?: string } };
  const text = `${e.message ?? ''}`;
  if (!/create_distributed_table/.test(text)) return undefined;
  const cause = (e.cause?.message ?? text).split('\n')[0]!;
  return { key: `${profile.distributionColumn}->${profile.colocateWith}`, message: e.detail ? `${cause}: ${e.detail}` : cause };
}

async function dropTable(db: pg.Client, table: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${quoteQualifiedName(parseQualifiedName(table, 'the profile\'s table'))}`);
}

/**
 * A profile lays out the table it names; a load applies it only to its own table. Otherwise the
 * load would create or distribute a table it was not asked to load (and, on failure, drop the
 * load's table name, not the one it created). Names are compared as PostgreSQL resolves them.
 */
async function checkProfileTable(db: pg.Client, profile: ShardingProfile, options: ProfileStepOptions): Promise<void> {
  const mine = parseQualifiedName(options.table);
  const its = parseQualifiedName(profile.table, 'the profile\'s table');
  const r = await db.query<{ mine: string | null; its: string | null; schema: string | null }>(
    'SELECT to_regclass($1)::oid::text AS mine, to_regclass($2)::oid::text AS its, current_schema() AS schema',
    [quoteQualifiedName(mine), quoteQualifiedName(its)]);
  const { mine: mineOid, its: itsOid, schema } = r.rows[0]!;
  const same = mineOid !== null || itsOid !== null
    ? mineOid === itsOid
    : mine.name === its.name && (mine.schema ?? schema) === (its.schema ?? schema);
  if (!same) {
    throw new InvalidConfigurationError(`the sharding profile${options.profileFile ? ` ${options.profileFile}` : ''} is for table `
      + `${profile.table}, not ${options.table}: a load lays out only the table it loads`);
  }
}

/**
 * Says when a fresh profile would lay out an existing distributed table differently, and which
 * tenants of the input would deserve a shard of their own (with the SQL to do it; stored with the
 * profile, so the report lists it). With `isolateTenants` it runs that SQL now, before the load
 * takes its shard locks. Returns the lines to show.
 */
export async function layoutAdvice(db: pg.Client, table: TableInfo, dist: Distribution, source: InputSource, format: CopyFormat,
  options: ProfileStepOptions): Promise<string[]> {
  const name = `${table.schema}.${table.name}`;
  const qualified = quoteQualifiedName({ schema: table.schema, name: table.name });
  let profile: ShardingProfile | undefined;
  if (!options.recheckLayout && !options.isolateTenants) {
    const stored = await db.query<{ profile: ShardingProfile }>(
      `SELECT profile FROM adaptive_load.profiles WHERE table_name IN ($1, $2) AND created_at > now() - make_interval(hours => $3)
        ORDER BY created_at DESC LIMIT 1`, [name, table.name, LAYOUT_ADVICE_HOURS]);
    profile = stored.rows[0]?.profile;
  }
  if (!profile) {
    const { planForInput } = await import('../plan/analyze.js');
    const { storeProfile } = await import('../store/profile-store.js');
    const plan = await planForInput(db, source, format, planOptions(options));
    profile = plan.profile;
    const column = dist.column ? plan.analysis.columns.find((c) => c.name === dist.column) : undefined;
    const info = table.columns.find((c) => c.name === dist.column);
    if (column && info) {
      const { readIsolationAdvice } = await import('../plan/tenant-advice.js');
      const advice = await readIsolationAdvice(db, qualified, column,
        { typeName: info.typeName, ...(info.maxChars !== undefined ? { maxChars: info.maxChars } : {}) },
        plan.analysis.values[column.name] ?? [], plan.analysis.sample.estimatedRows * plan.analysis.sample.averageRowBytes);
      if (advice.length) profile = { ...profile, advice };
    }
    await storeProfile(db, profile, false, []);
  }
  const lines: string[] = [];
  if (profile.distributionColumn !== dist.column) {
    lines.push(`${name} is distributed by ${dist.column}; loading into that layout, though the profile would choose `
      + `${profile.kind === 'reference' ? 'a reference table' : profile.distributionColumn} (${profile.reasons[0]})`);
  }
  const { pendingAdvice } = await import('../plan/tenant-advice.js');
  for (const a of await pendingAdvice(db, qualified, profile.advice ?? [])) {
    if (!options.isolateTenants) {
      lines.push(`advice: ${a.detail}. Load with --isolate-tenants to do it first, or run:\n${a.sql}`);
      continue;
    }
    // Freshly built here (isolateTenants never reuses a stored profile) by tenant-advice.ts from
    // quoted literals, statement by statement.
    for (const statement of a.statements ?? [a.sql]) await db.query(statement);
    lines.push(`isolated tenant ${a.tenant} before loading: ${a.detail}`);
  }
  return lines;
}

/** One line a user can read: what the profile decided. */
export function describeProfile(p: ShardingProfile): string {
  if (p.kind === 'reference') return `created ${p.table} as a reference table: ${p.reasons[0]}`;
  const parts = [`distributed ${p.table} by ${p.distributionColumn} into ${p.shards.length || p.shardCount} shards`];
  if (p.colocateWith) parts.push(`colocated with ${p.colocateWith}`);
  if (p.isolate.length) parts.push(`tenant(s) ${p.isolate.join(', ')} isolated`);
  if (p.splitPoints.length) parts.push(`${p.splitPoints.length} shard(s) split`);
  return `${parts.join(', ')} (${p.reasons.slice(1, 3).join('; ')})`;
}
