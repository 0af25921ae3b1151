/**
 * Starts real PostgreSQL 15 instances on free local ports, each in its own temporary directory:
 * one coordinator and N workers. With the citus extension installed they form a Citus cluster;
 * without it they are plain PostgreSQL servers (enough for everything but the Citus suite).
 * Used by the tests, the demo and the benchmarks. Runs the servers as the `postgres` OS user
 * when the current user is root, because initdb and postgres refuse to run as root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chownSync, appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface LocalNode {
  readonly name: string;
  readonly port: number;
  readonly dataDir: string;
  readonly url: string;
}

export interface LocalClusterOptions {
  /** Number of workers. Default 2. */
  workers?: number;
  /** Start with Citus (throws if it is not installed). Default: whenever it is installed. */
  citus?: boolean;
  /** Extra postgresql.conf lines for every node. */
  settings?: Record<string, string | number>;
}

function pgBinDir(): string {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    return '/usr/lib/postgresql/15/bin';
  }
}

function pgShareDir(): string {
  try {
    return execFileSync('pg_config', ['--sharedir'], { encoding: 'utf8' }).trim();
  } catch {
    return '/usr/share/postgresql/15';
  }
}

/**
 * Why Citus cannot be used here, or undefined when it can. With CITUS_ADAPTIVE_LOAD_REQUIRE_CITUS
 * set (CI does), a missing Citus is an error instead: a skipped Citus suite must not pass.
 */
export function citusUnavailableReason(): string | undefined {
  const reason = process.env.CITUS_ADAPTIVE_LOAD_NO_CITUS ? 'CITUS_ADAPTIVE_LOAD_NO_CITUS is set'
    : existsSync(join(pgShareDir(), 'extension', 'citus.control')) ? undefined
      : `the citus extension is not installed (no ${join(pgShareDir(), 'extension', 'citus.control')})`;
  if (reason && process.env.CITUS_ADAPTIVE_LOAD_REQUIRE_CITUS) {
    throw new Error(`Citus is required here (CITUS_ADAPTIVE_LOAD_REQUIRE_CITUS is set) but cannot be used: ${reason}`);
  }
  return reason;
}

export function postgresUnavailableReason(): string | undefined {
  if (!existsSync(join(pgBinDir(), 'initdb'))) return `PostgreSQL server binaries not found in ${pgBinDir()}`;
  return undefined;
}

const runAsPostgres = process.getuid?.() === 0;

function run(cmd: string, args: string[]): void {
  const full = runAsPostgres ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] as const : [cmd, args] as const;
  const r = spawnSync(full[0], full[1] as string[], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class LocalCluster {
  private stopped = false;

  private constructor(
    readonly coordinator: LocalNode,
    readonly workers: LocalNode[],
    readonly citus: boolean,
  ) {}

  get nodes(): LocalNode[] {
    return [this.coordinator, ...this.workers];
  }

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const noCitus = citusUnavailableReason();
    const citus = options.citus ?? noCitus === undefined;
    if (citus && noCitus) throw new Error(`cannot start a Citus cluster: ${noCitus}`);
    const names = ['coordinator', ...Array.from({ length: options.workers ?? 2 }, (_, i) => `worker${i + 1}`)];
    const nodes: LocalNode[] = [];
    try {
      for (const name of names) nodes.push(await startNode(name, citus, options.settings ?? {}));
      const cluster = new LocalCluster(nodes[0]!, nodes.slice(1), citus);
      if (citus) await cluster.formCitusCluster();
      return cluster;
    } catch (err) {
      for (const n of nodes) stopNode(n);
      throw err;
    }
  }

  private async formCitusCluster(): Promise<void> {
    for (const node of this.nodes) {
      await withClient(node.url, (c) => c.query('CREATE EXTENSION IF NOT EXISTS citus'));
    }
    await withClient(this.coordinator.url, async (c) => {
      await c.query('SELECT citus_set_coordinator_host($1, $2)', ['127.0.0.1', this.coordinator.port]);
      for (const w of this.workers) await c.query('SELECT citus_add_node($1, $2)', ['127.0.0.1', w.port]);
    });
  }

  /** Kills one node's server immediately (crash simulation). */
  kill(node: LocalNode): void {
    try {
      run(join(pgBinDir(), 'pg_ctl'), ['-D', node.dataDir, '-m', 'immediate', 'stop']);
    } catch {
      /* already down */
    }
  }

  restart(node: LocalNode): void {
    run(join(pgBinDir(), 'pg_ctl'), ['-D', node.dataDir, '-l', join(node.dataDir, 'server.log'), '-w', 'start']);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const n of this.nodes) stopNode(n);
  }
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function startNode(name: string, citus: boolean, settings: Record<string, string | number>): Promise<LocalNode> {
  const dataDir = mkdtempSync(join(tmpdir(), `cal-${name}-`));
  if (runAsPostgres) {
    const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
    const [uid, gid] = pw ? pw.split(':').slice(2, 4).map(Number) : [];
    if (uid !== undefined && gid !== undefined) chownSync(dataDir, uid, gid);
  }
  const bin = pgBinDir();
  run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  const port = await freePort();
  const conf: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dataDir}'`,
    max_connections: 300,
    max_prepared_transactions: 200,
    shared_buffers: "'128MB'",
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...(citus ? { shared_preload_libraries: "'citus,pg_stat_statements'", 'citus.enable_statistics_collection': 'off' } : { shared_preload_libraries: "'pg_stat_statements'" }),
    ...settings,
  };
  const confText = Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join('\n');
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n# citus-adaptive-load local cluster\n${confText}\n`);
  writeFileSync(join(dataDir, 'node-name'), name);
  run(join(bin, 'pg_ctl'), ['-D', dataDir, '-l', join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);
  return { name, port, dataDir, url: `postgresql://postgres@127.0.0.1:${port}/postgres` };
}

function stopNode(node: LocalNode): void {
  try {
    run(join(pgBinDir(), 'pg_ctl'), ['-D', node.dataDir, '-m', 'immediate', 'stop']);
  } catch {
    /* not running */
  }
  rmSync(node.dataDir, { recursive: true, force: true });
}
