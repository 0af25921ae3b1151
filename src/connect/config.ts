import { readFileSync } from 'node:fs';
import type { ClientConfig } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import { InvalidConfigurationError } from '../errors.js';

/**
 * Where the coordinator is and how to reach workers. Precedence, lowest first: libpq
 * environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, read by pg itself,
 * with ~/.pgpass when no password is given), DATABASE_URL, the config file, then flags.
 */
export interface ConnectionInput {
  /** postgres:// URL of the coordinator. */
  coordinator?: string;
  /** Address rewrites `name:port=host:port` for nodes the cluster advertises under names the client cannot reach. */
  nodeMap?: string[];
  /** JSON file with { coordinator?, nodeMap?: string[] | Record<string,string> }. */
  configFile?: string;
}

export interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

export interface ConnectionConfig {
  /** pg ClientConfig for the coordinator. */
  readonly coordinator: ClientConfig;
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
}

function readConfigFile(path: string): ConfigFile {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ConfigFile;
  } catch (err) {
    throw new InvalidConfigurationError(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export function resolveConnectionConfig(input: ConnectionInput, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const file = input.configFile ? readConfigFile(input.configFile) : {};
  const url = input.coordinator ?? file.coordinator ?? env.DATABASE_URL;
  const coordinator: ClientConfig = url ? clientConfigFromUrl(url) : {};

  const mapEntries = [
    ...(Array.isArray(file.nodeMap) ? file.nodeMap : Object.entries(file.nodeMap ?? {}).map(([k, v]) => `${k}=${v}`)),
    ...(input.nodeMap ?? []),
  ];
  const nodeMap = new Map(mapEntries.map(parseNodeMapEntry));

  return {
    coordinator,
    workerConfig(advertised: NodeAddress): ClientConfig {
      const target = nodeMap.get(`${advertised.host}:${advertised.port}`) ?? advertised;
      // Same credentials, database and TLS settings as the coordinator; only the address differs.
      const { connectionString: _ignored, ...rest } = coordinator;
      return { ...rest, host: target.host, port: target.port };
    },
    describe: describeConfig,
  };
}

function clientConfigFromUrl(url: string): ClientConfig {
  let parsed: ReturnType<typeof parseConnectionString>;
  try {
    parsed = parseConnectionString(url);
  } catch (err) {
    throw new InvalidConfigurationError(`invalid coordinator URL ${redactUrl(url)}`, { cause: err });
  }
  const config: ClientConfig = {};
  if (parsed.host) config.host = parsed.host;
  if (parsed.port) config.port = Number(parsed.port);
  if (parsed.user) config.user = parsed.user;
  if (parsed.password) config.password = parsed.password;
  if (parsed.database) config.database = parsed.database;
  if (parsed.ssl !== undefined && parsed.ssl !== null) config.ssl = parsed.ssl as ClientConfig['ssl'];
  if (parsed.application_name) config.application_name = parsed.application_name;
  return config;
}

/** Replaces the password of a postgres:// URL with ***. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)([^@]*)@/, '$1***@');
}

function describeConfig(config: ClientConfig): string {
  const host = config.host ?? process.env.PGHOST ?? 'localhost';
  const port = config.port ?? (process.env.PGPORT ? Number(process.env.PGPORT) : 5432);
  const user = config.user ?? process.env.PGUSER ?? process.env.USER ?? '';
  const db = config.database ?? process.env.PGDATABASE ?? user;
  return `${user}@${host}:${port}/${db}`;
}
