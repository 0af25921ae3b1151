import { InvalidConfigurationError } from '../errors.js';
import type { HeaderMode } from '../input/columns.js';
import type { CopyFormatInput } from '../input/copy-format.js';
import type { ValidateFunction } from 'ajv';
import { lazySchema } from '../json-schema.js';

/**
 * The one place load options are validated: a request from SQL and the CLI's flags are both
 * checked by the JSON schema below, so a value is accepted or refused, with the same words,
 * wherever it comes from. A request may set only LoadOptionValues; nothing that names a file on
 * the loading machine (profile, save-profile, rejects) is there: a request must not make the
 * daemon read or write paths other than the one confined source. The CLI, run by the person
 * who owns those files, may also set LocalLoadOptionValues. Values reach COPY statements, so
 * every string is constrained to what COPY takes (single ASCII characters, no newlines)
 * instead of trusted.
 */
export interface LoadOptionValues extends CopyFormatInput {
  /** true: line 1 is a header; false: data; absent: detected. */
  header?: boolean;
  columns?: string[];
  distributionColumn?: string;
  shardCount?: number;
  keepKeys?: boolean;
  recheckLayout?: boolean;
  expectedRows?: number;
  sampleRows?: number;
  seed?: number;
  maxErrors?: number;
  connectionsPerNode?: number;
  batchBytes?: number;
  fastPath?: boolean;
  viaCoordinator?: boolean;
  /** Load from this table (a staging table) instead of a file; read as psql reads names. */
  fromTable?: string;
  /** What becomes of the staging table with the load's commit (default keep). */
  then?: 'keep' | 'truncate' | 'drop';
  /** Commit in chunks of this many rows (`500000`) or bytes (`256MB`); absent: one transaction. */
  commitEvery?: string;
}

/** Options only a local caller (the CLI) may set: files on the loading machine, and the row bound. */
export interface LocalLoadOptionValues extends LoadOptionValues {
  maxRowBytes?: number;
  rejectsFile?: string;
  profileFile?: string;
  saveProfile?: string;
  /** Continue an interrupted chunked load: true, the newest of this table and file; a number, that job. */
  resume?: boolean | number;
  /** Load the source from its start although an unfinished chunked job of it committed chunks. */
  restart?: boolean;
  isolateTenants?: boolean;
}

/** One ASCII character COPY can use as delimiter/quote/escape: printable or tab, never a newline. */
const SINGLE_CHAR = { type: 'string', pattern: '^[\\t -~]$' } as const;
const IDENTIFIER = { type: 'string', minLength: 1, maxLength: 63 } as const;
const PATH = { type: 'string', minLength: 1 } as const;

const LOAD_OPTION_PROPERTIES = {
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
  expectedRows: { type: 'integer', minimum: 1 },
  // Fewer rows than this say little about a column's distribution; the CLI always refused them.
  sampleRows: { type: 'integer', minimum: 100 },
  seed: { type: 'integer' },
  maxErrors: { type: 'integer', minimum: 0 },
  connectionsPerNode: { type: 'integer', minimum: 1, maximum: 64 },
  batchBytes: { type: 'integer', minimum: 1024 },
  fastPath: { type: 'boolean' },
  viaCoordinator: { type: 'boolean' },
  // A name, quoted parts and a schema included; parseQualifiedName decides what it names.
  fromTable: { type: 'string', minLength: 1, maxLength: 300, pattern: '^[^\\u0000\\r\\n]*$' },
  then: { enum: ['keep', 'truncate', 'drop'] },
  // Rows (digits) or bytes (a size with a unit); a string, as the flag gives it.
  commitEvery: { type: 'string', pattern: '^\\s*[0-9]+(\\.[0-9]+)?\\s*([kKMGT]i?B?|B)?\\s*$' },
} as const;

export const LOAD_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: LOAD_OPTION_PROPERTIES,
} as const;

/** The request schema plus what only a local caller may set; the shared keys are the same objects. */
export const LOCAL_LOAD_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...LOAD_OPTION_PROPERTIES,
    maxRowBytes: { type: 'integer', minimum: 1 },
    rejectsFile: PATH,
    profileFile: PATH,
    saveProfile: PATH,
    resume: { anyOf: [{ type: 'boolean' }, { type: 'integer', minimum: 1 }] },
    restart: { type: 'boolean' },
    // Changes an existing table's shards: only for a caller who runs the CLI, not for requests.
    isolateTenants: { type: 'boolean' },
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

const loadValidator = lazySchema(LOAD_OPTIONS_SCHEMA);
const localLoadValidator = lazySchema(LOCAL_LOAD_OPTIONS_SCHEMA);
const rebalanceValidator = lazySchema(REBALANCE_OPTIONS_SCHEMA);

type Validator = ValidateFunction;

/**
 * How a key is named in an error: in a request by its JSON key (`option "maxErrors"`), on the
 * command line by the flag the user typed (`--max-errors`), so each reader sees their own name.
 */
export type OptionNaming = 'key' | 'flag';

/** Keys whose flag is not the key in kebab case. */
const FLAG_NAMES: Readonly<Record<string, string>> = {
  batchBytes: 'batch-size', rejectsFile: 'rejects', profileFile: 'profile',
};

function optionName(path: string, naming: OptionNaming): string {
  if (naming === 'key') return `option ${JSON.stringify(path)}`;
  const [key = '', ...rest] = path.split('.');
  const flag = `--${FLAG_NAMES[key] ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return rest.length ? `${flag} item ${Number(rest[0]) + 1}` : flag;
}

/** What a failed pattern means, per key: "does not match ^[\t -~]$" tells a user nothing. */
const PATTERN_MEANING: Readonly<Record<string, string>> = {
  delimiter: 'must be a single ASCII character (printable or tab)',
  quote: 'must be a single ASCII character (printable or tab)',
  escape: 'must be a single ASCII character (printable or tab)',
  null: 'cannot contain a newline or carriage return',
  encoding: 'must be an encoding name as PostgreSQL spells it (letters, digits, _ and -)',
  fromTable: 'cannot contain a newline or NUL',
  commitEvery: 'must be a row count (500000) or a size (256MB, 1GB, 64kB)',
};

/** Every schema error as `key: what is wrong (got value)`, so the caller sees which key to fix. */
function describe(validator: Validator, value: unknown, where: string, naming: OptionNaming): string {
  return (validator.errors ?? []).map((e) => {
    if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      return `unknown option ${JSON.stringify(key)}`;
    }
    const key = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const got = key ? key.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value) : value;
    const allowed = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join('|')})` : '';
    const what = e.keyword === 'pattern'
      ? PATTERN_MEANING[key.split('.')[0] ?? ''] ?? 'has characters this option does not allow'
      : e.message ?? 'is invalid';
    return `${key ? optionName(key, naming) : where} ${what}${allowed}, got ${JSON.stringify(got)}`;
  }).join('; ');
}

function check<T>(validator: Validator, value: unknown, where: string, naming: OptionNaming = 'key'): T {
  if (value === null || value === undefined) return {} as T;
  if (!validator(value)) {
    const reasons = describe(validator, value, where, naming);
    // Flags name themselves (`--shard-count must be ...`); a JSON object needs saying which one.
    throw new InvalidConfigurationError(naming === 'flag' ? reasons : `invalid ${where}: ${reasons}`);
  }
  return value as T;
}

/** Checks a request's load options against the schema; throws InvalidConfigurationError naming each bad key. */
export function validateLoadOptions(value: unknown, where = 'load options'): LoadOptionValues {
  return check<LoadOptionValues>(loadValidator(), value, where);
}

/**
 * Checks the options of a local caller (the CLI builds a plain object from its flags) against
 * the same schema plus the local-only keys. Keys left undefined are absent, not wrong.
 */
export function validateLocalLoadOptions(value: Record<string, unknown>, naming: OptionNaming = 'flag'): LocalLoadOptionValues {
  const present = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
  return check<LocalLoadOptionValues>(localLoadValidator(), present, 'options', naming);
}

export function validateRebalanceOptions(value: unknown, where = 'rebalance options'): RebalanceOptionValues {
  return check<RebalanceOptionValues>(rebalanceValidator(), value, where);
}

/**
 * The loader's options from validated values: the one mapping from option values to the
 * loader, used by the CLI and by SQL requests alike.
 */
export function toLoadOptions<V extends LocalLoadOptionValues>(values: V): Omit<V, 'header'> & { header: HeaderMode } {
  const { header, ...rest } = values;
  return { ...rest, header: headerMode(header) };
}

/** The header option as the loader takes it. */
export function headerMode(header: boolean | undefined): HeaderMode {
  return header === undefined ? 'auto' : header ? 'yes' : 'no';
}
