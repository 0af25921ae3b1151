import { InvalidConfigurationError } from '../errors.js';
import { lazySchema } from '../json-schema.js';

/** A shard as planned: its hash range, what it is predicted to hold, and where it goes. */
export interface PlannedShard {
  readonly shardIndex: number;
  readonly hashMin: number;
  readonly hashMax: number;
  readonly rows: number;
  readonly bytes: number;
  /** Predicted share of the table's load (rows, plus queries aimed at its tenants), 0..1. */
  readonly load: number;
  readonly node: string | null;
  /** The isolated tenant value, when the shard holds exactly one. */
  readonly tenant?: string;
}

export interface Candidate {
  readonly column: string;
  readonly score: number;
  readonly reasons: string[];
  /** Why the column cannot be chosen at all. */
  readonly rejected?: string;
}

/**
 * The sharding profile: what the tool decided for a table and why. Versioned; stored on the
 * coordinator with each load; `--save-profile` / `--profile` keep and reuse one.
 */
export interface ShardingProfile {
  readonly version: 1;
  readonly table: string;
  readonly createdAt: string;
  readonly kind: 'distributed' | 'reference';
  readonly distributionColumn: string | null;
  readonly shardCount: number | null;
  /** Table to colocate with, or null for a colocation group of its own. */
  readonly colocateWith: string | null;
  readonly isolate: string[];
  /** Hash values at which shards are split after creation (upper bounds of the lower part). */
  readonly splitPoints: number[];
  readonly placement: { shardIndex: number; node: string }[];
  readonly shards: PlannedShard[];
  readonly predicted: {
    rows: number; bytes: number; maxShardLoadOverMean: number;
    /** Busiest node's predicted load over the mean node's, for the placement the tool applies (absent when nodes are unknown). */
    maxNodeLoadOverMean?: number;
  };
  /** Rows the user said the table will hold (--expected-rows); the plan was sized for them. */
  readonly expectedRows?: number;
  /**
   * What a DBA can do that this profile did not apply (a load into an existing distributed
   * table does not change its layout unless told to): with the SQL to act.
   */
  readonly advice?: ProfileAdvice[];
  /** Other small tables the input joins to, recommended as reference tables. */
  readonly referenceTables: { table: string; reason: string }[];
  /**
   * Keys to widen so they include the distribution column (Citus requires it): the constraint's
   * name and its new columns. Data, never SQL: apply reads the key's kind from the table and
   * builds the statement itself.
   */
  readonly keyChanges: KeyChange[];
  readonly candidates: Candidate[];
  readonly reasons: string[];
  readonly columnTypes: Record<string, string>;
  readonly sample: { rows: number; seconds: number; method: string; estimatedRows: number };
  readonly workload: { pointLookups: number; ranges: number; joins: number; aggregations: number; statements: number };
}

export interface ProfileAdvice {
  readonly kind: 'isolate-tenant';
  readonly tenant: string;
  readonly detail: string;
  /** The statements, one per line, for a person to read and run. */
  readonly sql: string;
  /** The same statements one by one, for the tool to run (a quoted tenant value may hold a newline). */
  readonly statements?: string[];
}

export interface KeyChange {
  readonly constraint: string;
  readonly columns: string[];
}

const schema = {
  type: 'object',
  required: ['version', 'table', 'kind', 'distributionColumn', 'shardCount', 'colocateWith', 'isolate', 'splitPoints',
    'placement', 'shards', 'candidates', 'reasons', 'columnTypes', 'sample', 'keyChanges', 'referenceTables'],
  properties: {
    version: { const: 1 },
    table: { type: 'string', minLength: 1 },
    createdAt: { type: 'string' },
    kind: { enum: ['distributed', 'reference'] },
    distributionColumn: { type: ['string', 'null'] },
    shardCount: { type: ['integer', 'null'], minimum: 1 },
    colocateWith: { type: ['string', 'null'] },
    isolate: { type: 'array', items: { type: 'string' } },
    splitPoints: { type: 'array', items: { type: 'integer', minimum: -2147483648, maximum: 2147483647 } },
    placement: {
      type: 'array',
      items: { type: 'object', required: ['shardIndex', 'node'], properties: { shardIndex: { type: 'integer', minimum: 0 }, node: { type: 'string' } } },
    },
    shards: {
      type: 'array',
      items: {
        type: 'object',
        required: ['shardIndex', 'hashMin', 'hashMax', 'rows', 'load'],
        properties: {
          shardIndex: { type: 'integer' }, hashMin: { type: 'integer' }, hashMax: { type: 'integer' },
          rows: { type: 'number' }, bytes: { type: 'number' }, load: { type: 'number' }, node: { type: ['string', 'null'] },
        },
      },
    },
    candidates: {
      type: 'array',
      items: { type: 'object', required: ['column', 'score', 'reasons'], properties: { column: { type: 'string' }, score: { type: 'number' }, reasons: { type: 'array', items: { type: 'string' } } } },
    },
    reasons: { type: 'array', items: { type: 'string' } },
    // Type names are checked with to_regtype before any DDL uses them (apply.ts).
    columnTypes: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
    keyChanges: {
      type: 'array',
      items: {
        type: 'object',
        required: ['constraint', 'columns'],
        additionalProperties: false,
        properties: {
          constraint: { type: 'string', minLength: 1 },
          columns: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
          // Profiles written by 0.1 carried the statement too; it is read and never run.
          sql: { type: 'string' },
        },
      },
    },
    referenceTables: {
      type: 'array',
      items: { type: 'object', required: ['table', 'reason'], properties: { table: { type: 'string', minLength: 1 }, reason: { type: 'string' } } },
    },
    sample: { type: 'object', required: ['rows'], properties: { rows: { type: 'integer' } } },
    expectedRows: { type: 'integer', minimum: 1 },
    advice: {
      type: 'array',
      items: { type: 'object', required: ['kind', 'tenant', 'detail', 'sql'], properties: {
        kind: { const: 'isolate-tenant' }, tenant: { type: 'string' }, detail: { type: 'string' }, sql: { type: 'string' } } },
    },
  },
  allOf: [
    { if: { properties: { kind: { const: 'distributed' } } }, then: { properties: { distributionColumn: { type: 'string' }, shardCount: { type: 'integer' } } } },
  ],
} as const;

const profileValidator = lazySchema(schema, { allErrors: true });

/** Checks a profile (from a file or the planner) against the schema; throws a readable error. */
export function validateProfile(value: unknown, source: string): ShardingProfile {
  const validator = profileValidator();
  if (!validator(value)) {
    const errors = (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new InvalidConfigurationError(`${source} is not a valid sharding profile: ${errors}`);
  }
  return value as ShardingProfile;
}
