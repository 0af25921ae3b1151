import { readFileSync } from 'node:fs';
import type { ClientConfig } from 'pg';
import { InvalidConfigurationError } from '../errors.js';
import { parseConninfo, type ConninfoSettings } from './conninfo.js';
import { lazySchema } from '../json-schema.js';

/**
 * Where the coordinator is and how to reach workers. Precedence, lowest first: libpq
 * environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, read by pg itself,
 * with ~/.pgpass when no password is given; PGCONNECT_TIMEOUT here), DATABASE_URL, the config
 * file, then flags.
 */
export interface ConnectionInput {
  /** The coordinator: a postgres:// URL or a libpq keyword/value string (`host=... port=...`). */
  coordinator?: string;
  /** Seconds to wait for a connection. Default: the connection string's connect_timeout, PGCONNECT_TIMEOUT, else 10. */
  connectTimeout?: number;
  /** Seconds one statement (a COPY batch, PREPARE, a catalog read) may take on any node during a load. Default 300. */
  statementTimeout?: number;
  /** Seconds a load waits for any lock (Citus's shard locks, rows another load is writing). Default 60. */
  lockTimeout?: number;
  /** Address rewrites `name:port=host:port` for nodes the cluster advertises under names the client cannot reach. */
  nodeMap?: string[];
  /** JSON file with { coordinator?, nodeMap?: string[] | Record<string,string> }. */
  configFile?: string;
}

export interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

/** Every wait of a load has one of these bounds (milliseconds). */
export interface Timeouts {
  readonly connectMs: number;
  readonly statementMs: number;
  readonly lockMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, statementMs: 300_000, lockMs: 60_000 };

export interface ConnectionConfig {
  /** pg ClientConfig for the coordinator (connect timeout and TCP keepalives included). */
  readonly coordinator: ClientConfig;
  readonly timeouts: Timeouts;
  /** Where to connect for a node the cluster advertises as host:port. */
  workerConfig(advertised: NodeAddress): ClientConfig;
  /** A description safe for output and logs (never contains a password). */
  describe(config: ClientConfig): string;
}

/** The address in a `host:port` node label (hosts may contain ':' themselves, as IPv6 does). */
export function parseNodeLabel(label: string): NodeAddress {
  const at = label.lastIndexOf(':');
  return { host: label.slice(0, at), port: Number(label.slice(at + 1)) };
}

function parseNodeMapEntry(entry: string): [string, NodeAddress] {
  const m = /^(.+):(\d+)=(.+):(\d+)$/.exec(entry.trim());
  if (!m) {
    throw new InvalidConfigurationError(`--node-map expects name:port=host:port, got ${JSON.stringify(entry)}`);
  }
  return [`${m[1]}:${m[2]}`, { host: m[3]!, port: Number(m[4]) }];
}

interface ConfigFile {
  coordinator?: string;
  nodeMap?: string[] | Record<string, string>;
  connectTimeout?: number;
  statementTimeout?: number;
  lockTimeout?: number;
}

const SECONDS = { type: 'number', exclusiveMinimum: 0 } as const;
const NODE = '^.+:[0-9]+$';

/**
 * What a --config file may hold. A misspelt key would otherwise be ignored in silence and the
 * load would run against the defaults (DATABASE_URL, 10 s...): every key is known or refused.
 */
export const CONFIG_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    coordinator: { type: 'string', minLength: 1 },
    nodeMap: {
      anyOf: [
        { type: 'array', items: { type: 'string', pattern: '^.+:[0-9]+=.+:[0-9]+$' } },
        { type: 'object', propertyNames: { pattern: NODE }, additionalProperties: { type: 'string', pattern: NODE } },
      ],
    },
    connectTimeout: SECONDS,
    statementTimeout: SECONDS,
    lockTimeout: SECONDS,
  },
} as const;

/** What each key must be, said once per key (anyOf would otherwise report every branch). */
const CONFIG_KEY_MEANING: Readonly<Record<string, string>> = {
  coordinator: 'must be a postgres:// URL or a libpq keyword/value string',
  nodeMap: 'must be a list of "name:port=host:port" strings or an object of "name:port": "host:port"',
  connectTimeout: 'must be a positive number of seconds',
  statementTimeout: 'must be a positive number of seconds',
  lockTimeout: 'must be a positive number of seconds',
};

const configFileValidator = lazySchema(CONFIG_FILE_SCHEMA);

/** Checks a parsed config file; the error names the file and every key that is wrong. */
export function validateConfigFile(value: unknown, path: string): ConfigFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidConfigurationError(`config file ${path} must hold a JSON object, got ${JSON.stringify(value)}`);
  }
  const validator = configFileValidator();
  if (validator(value)) return value as ConfigFile;
  const problems = new Map<string, string>();
  for (const e of validator.errors ?? []) {
    if (e.keyword === 'additionalProperties' && e.instancePath === '') {
      const key = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      problems.set(key, `unknown key ${JSON.stringify(key)} (known: ${Object.keys(CONFIG_KEY_MEANING).join(', ')})`);
      continue;
    }
    const key = e.instancePath.split('/')[1] ?? '';
    const got = (value as Record<string, unknown>)[key];
    problems.set(key, `key ${JSON.stringify(key)} ${CONFIG_KEY_MEANING[key] ?? e.message ?? 'is invalid'}, got ${JSON.stringify(got)}`);
  }
  throw new InvalidConfigurationError(`config file ${path}: ${[...problems.values()].join('; ')}`);
}

function readConfigFile(path: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidConfigurationError(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return validateConfigFile(raw, path);
}

export function resolveConnectionConfig(input: ConnectionInput, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const file = input.configFile ? readConfigFile(input.configFile) : {};
  const conninfo = input.coordinator ?? file.coordinator ?? env.DATABASE_URL;
  const settings = conninfo ? parseConninfo(conninfo) : {};
  const timeouts: Timeouts = {
    connectMs: 1000 * (seconds('--connect-timeout', input.connectTimeout ?? file.connectTimeout)
      ?? seconds('connect_timeout', settings.connect_timeout) ?? seconds('PGCONNECT_TIMEOUT', env.PGCONNECT_TIMEOUT)
      ?? DEFAULT_TIMEOUTS.connectMs / 1000),
    statementMs: 1000 * (seconds('--statement-timeout', input.statementTimeout ?? file.statementTimeout) ?? DEFAULT_TIMEOUTS.statementMs / 1000),
    lockMs: 1000 * (seconds('--lock-timeout', input.lockTimeout ?? file.lockTimeout) ?? DEFAULT_TIMEOUTS.lockMs / 1000),
  };
  const coordinator = clientConfigFrom(settings, timeouts);

  const mapEntries = [
    ...(Array.isArray(file.nodeMap) ? file.nodeMap : Object.entries(file.nodeMap ?? {}).map(([k, v]) => `${k}=${v}`)),
    ...(input.nodeMap ?? []),
  ];
  const nodeMap = new Map(mapEntries.map(parseNodeMapEntry));

  return {
    coordinator,
    timeouts,
    workerConfig(advertised: NodeAddress): ClientConfig {
      const target = nodeMap.get(`${advertised.host}:${advertised.port}`) ?? advertised;
      // Same credentials, database, TLS settings and timeouts as the coordinator; only the address differs.
      return { ...coordinator, host: target.host, port: target.port };
    },
    describe: describeConfig,
  };
}

/** A positive number of seconds, or undefined when not given; anything else is a configuration error. */
function seconds(name: string, value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidConfigurationError(`${name} must be a positive number of seconds, got ${JSON.stringify(value)}`);
  return n;
}

function clientConfigFrom(parsed: ConninfoSettings, timeouts: Timeouts): ClientConfig {
  const str = (k: string) => (typeof parsed[k] === 'string' && parsed[k] !== '' ? parsed[k] as string : undefined);
  const config: ClientConfig = {
    connectionTimeoutMillis: timeouts.connectMs,
    // libpq's default: keepalives on, so a peer that vanished is noticed on an idle connection too.
    keepAlive: str('keepalives') !== '0',
    keepAliveInitialDelayMillis: 1000 * (seconds('keepalives_idle', str('keepalives_idle')) ?? 30),
  };
  const host = str('host');
  if (host) config.host = host;
  if (str('port')) config.port = Number(str('port'));
  if (str('user')) config.user = str('user');
  if (str('password')) config.password = str('password');
  if (str('database')) config.database = str('database');
  if (parsed.ssl !== undefined && parsed.ssl !== null) config.ssl = parsed.ssl as ClientConfig['ssl'];
  if (str('application_name')) config.application_name = str('application_name');
  if (str('options')) config.options = str('options');
  if (str('client_encoding')) config.client_encoding = str('client_encoding');
  return config;
}

function describeConfig(config: ClientConfig): string {
  const host = config.host ?? process.env.PGHOST ?? 'localhost';
  const port = config.port ?? (process.env.PGPORT ? Number(process.env.PGPORT) : 5432);
  const user = config.user ?? process.env.PGUSER ?? process.env.USER ?? '';
  const db = config.database ?? process.env.PGDATABASE ?? user;
  return `${user}@${host}:${port}/${db}`;
}
