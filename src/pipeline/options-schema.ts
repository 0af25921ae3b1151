import AjvModule from 'ajv';
import { InvalidConfigurationError } from '../errors.js';
import type { HeaderMode } from '../input/columns.js';
import type { CopyFormatInput } from '../input/copy-format.js';

/**
 * The load options a caller outside this process may set (a request from SQL today, the CLI's
 * flags later), checked by one JSON schema. Nothing that names a file on the loading machine
 * (profile, save-profile, rejects) is here: a request must not make the daemon read or write
 * paths other than the one confined source. Values reach COPY statements, so every string is
 * constrained to what COPY takes (single ASCII characters, no newlines) instead of trusted.
 */
export interface LoadOptionValues extends CopyFormatInput {
  /** true: line 1 is a header; false: data; absent: detected. */
  header?: boolean;
  columns?: string[];
  distributionColumn?: string;
  shardCount?: number;
  keepKeys?: boolean;
  recheckLayout?: boolean;
  sampleRows?: number;
  seed?: number;
  maxErrors?: number;
  connectionsPerNode?: number;
  batchBytes?: number;
  fastPath?: boolean;
  viaCoordinator?: boolean;
}

/** One ASCII character COPY can use as delimiter/quote/escape: printable or tab, never a newline. */
const SINGLE_CHAR = { type: 'string', pattern: '^[\\t -~]$' } as const;
const IDENTIFIER = { type: 'string', minLength: 1, maxLength: 63 } as const;

export const LOAD_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: { enum: ['csv', 'text'] },
    delimiter: SINGLE_CHAR,
    quote: SINGLE_CHAR,
    escape: SINGLE_CHAR,
    null: { type: 'string', maxLength: 64, pattern: '^[^\\r\\n]*$' },
    // As PostgreSQL names encodings (UTF8, LATIN1, WIN1252, SJIS, ...).
    encoding: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]{0,31}$' },
    header: { type: 'boolean' },
    columns: { type: 'array', minItems: 1, items: IDENTIFIER },
    distributionColumn: IDENTIFIER,
    shardCount: { type: 'integer', minimum: 1, maximum: 64000 },
    keepKeys: { type: 'boolean' },
    recheckLayout: { type: 'boolean' },
    sampleRows: { type: 'integer', minimum: 1 },
    seed: { type: 'integer' },
    maxErrors: { type: 'integer', minimum: 0 },
    connectionsPerNode: { type: 'integer', minimum: 1, maximum: 64 },
    batchBytes: { type: 'integer', minimum: 1024 },
    fastPath: { type: 'boolean' },
    viaCoordinator: { type: 'boolean' },
  },
} as const;

export interface RebalanceOptionValues {
  dryRun?: boolean;
}

export const REBALANCE_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { dryRun: { type: 'boolean' } },
} as const;

const Ajv = AjvModule.default ?? AjvModule;
const ajv = new (Ajv as unknown as typeof AjvModule.default)({ allErrors: true, strict: true });
const loadValidator = ajv.compile(LOAD_OPTIONS_SCHEMA);
const rebalanceValidator = ajv.compile(REBALANCE_OPTIONS_SCHEMA);

type Validator = typeof loadValidator;

/** Every schema error as `key: what is wrong (got value)`, so the caller sees which key to fix. */
function describe(validator: Validator, value: unknown, where: string): string {
  return (validator.errors ?? []).map((e) => {
    if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      return `unknown option ${JSON.stringify(key)}`;
    }
    const key = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const got = key ? key.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value) : value;
    const allowed = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join('|')})` : '';
    const what = e.keyword === 'pattern' ? 'has characters this option does not allow' : e.message ?? 'is invalid';
    return `${key ? `option ${JSON.stringify(key)}` : where} ${what}${allowed}, got ${JSON.stringify(got)}`;
  }).join('; ');
}

function check<T>(validator: Validator, value: unknown, where: string): T {
  if (value === null || value === undefined) return {} as T;
  if (!validator(value)) throw new InvalidConfigurationError(`invalid ${where}: ${describe(validator, value, where)}`);
  return value as T;
}

/** Checks load options against the schema; throws InvalidConfigurationError naming each bad key. */
export function validateLoadOptions(value: unknown, where = 'load options'): LoadOptionValues {
  return check<LoadOptionValues>(loadValidator, value, where);
}

export function validateRebalanceOptions(value: unknown, where = 'rebalance options'): RebalanceOptionValues {
  return check<RebalanceOptionValues>(rebalanceValidator, value, where);
}

/** The header option as the loader takes it. */
export function headerMode(header: boolean | undefined): HeaderMode {
  return header === undefined ? 'auto' : header ? 'yes' : 'no';
}
