/**
 * Multi-table layout scenarios for bench:layout (issue 11): each is a schema, generated files in
 * load order, and tenant-scoped and join queries; it is laid out three ways and the queries'
 * throughput compared:
 *   tool:   the tables exist as empty local tables (DDL with keys and indexes, as a user writes
 *           it); citus-adaptive-load loads each file in order and decides every layout itself;
 *   naive:  what a new Citus user does: create_distributed_table(t, <first column>) for every
 *           table, default shard count, no colocation thought, no tenant isolation;
 *   expert: the layout a Citus expert writes by hand (given per scenario: tenant-keyed tables
 *           distributed by the tenant and colocated, dimensions as reference tables, whales
 *           isolated with CASCADE and the group rebalanced by disk size).
 * The tool's tables are loaded first, alone in the database, so that the others are no evidence
 * for its choices; naive and expert copies are filled from the tool's tables (same rows).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

export interface ScenarioTable {
  readonly name: string;
  /** Columns and keys, without CREATE TABLE; indexes after, with `%T` for the table name. */
  readonly columns: string;
  readonly indexes: readonly string[];
  /** Writes the table's CSV (with a header) and returns its path. */
  readonly write: (dir: string) => Promise<string>;
  readonly expert: { kind: 'distributed'; column: string; colocateWith?: string } | { kind: 'reference' };
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly tables: readonly ScenarioTable[];
  /** SQL an expert runs after loading (schema `%S`). */
  readonly expertAfter: readonly string[];
  /** pgbench scripts over schema `%S`; `tenantScoped` ones carry the >= 10x naive target. */
  readonly queries: readonly { name: string; tenantScoped: boolean; script: string }[];
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function writeCsv(path: string, header: string, rows: number, line: (i: number) => string): Promise<string> {
  const out = createWriteStream(path);
  out.write(`${header}\n`);
  for (let i = 0; i < rows; i++) {
    if (!out.write(`${line(i)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return path;
}

/** A Zipf-ish tenant pick (a long tail), the same draw pgbench's random_zipfian makes. */
const zipfTenant = (tenants: number, variable = 't') => `\\set ${variable} random_zipfian(1, ${tenants}, 1.1)\n`;

/**
 * A whale tenant with a tenant table: tenants(tenant_id, name, plan); events(event_id,
 * tenant_id, kind, amount, created_at) with tenant 1 holding 30% of the events.
 */
export function whaleScenario(scale: number): Scenario {
  const tenants = Math.max(200, Math.round(2000 * scale));
  const events = Math.max(20_000, Math.round(1_000_000 * scale));
  return {
    name: 'whale',
    description: `a whale tenant with a tenant table: ${tenants.toLocaleString('en-US')} tenants, ${events.toLocaleString('en-US')} events, tenant 1 holds 30%`,
    tables: [
      {
        name: 'tenants', columns: 'tenant_id bigint PRIMARY KEY, name text NOT NULL, plan text NOT NULL', indexes: [],
        write: (dir) => writeCsv(join(dir, 'whale-tenants.csv'), 'tenant_id,name,plan', tenants, (i) => `${i + 1},tenant ${i + 1},${['free', 'pro', 'ent'][i % 3]}`),
        expert: { kind: 'distributed', column: 'tenant_id' },
      },
      {
        name: 'events', columns: 'event_id bigint NOT NULL, tenant_id bigint NOT NULL, kind text NOT NULL, amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL',
        indexes: ['CREATE INDEX ON %T (tenant_id)'],
        write: (dir) => {
          const rand = mulberry32(11);
          const t0 = Date.UTC(2024, 0, 1);
          return writeCsv(join(dir, 'whale-events.csv'), 'event_id,tenant_id,kind,amount,created_at', events, (i) =>
            `${i + 1},${rand() < 0.3 ? 1 : 2 + Math.floor(rand() * (tenants - 1))},${['view', 'click', 'buy'][i % 3]},${(rand() * 100).toFixed(2)},`
            + `${new Date(t0 + i * 1000).toISOString()}`);
        },
        expert: { kind: 'distributed', column: 'tenant_id', colocateWith: 'tenants' },
      },
    ],
    expertAfter: [
      "SELECT isolate_tenant_to_new_shard('%S.events', 1, cascade_option => 'CASCADE', shard_transfer_mode => 'block_writes')",
      "SELECT rebalance_table_shards('%S.events', rebalance_strategy => 'by_disk_size', shard_transfer_mode => 'block_writes')",
    ],
    queries: [
      // Small tenants are what most requests are about; the whale is in the draw too (tenant 1).
      { name: 'tenant aggregate', tenantScoped: true, script: `${zipfTenant(tenants)}SELECT count(*), sum(amount) FROM %S.events WHERE tenant_id = :t;\n` },
      { name: 'tenant join', tenantScoped: true, script: `${zipfTenant(tenants)}SET citus.enable_repartition_joins TO on;\n`
        + 'SELECT t.plan, count(*), sum(e.amount) FROM %S.events e JOIN %S.tenants t ON t.tenant_id = e.tenant_id WHERE e.tenant_id = :t GROUP BY t.plan;\n' },
    ],
  };
}

/**
 * A multi-tenant schema whose small fact tables reference a tenant table: accounts(account_id);
 * projects(project_id, account_id) keyed (account_id, project_id); tasks(task_id, account_id,
 * project_id) keyed (account_id, task_id). Each table's own id comes first, as people write them.
 */
export function factsScenario(scale: number): Scenario {
  const accounts = Math.max(200, Math.round(1000 * scale));
  const projects = Math.max(1000, Math.round(8000 * scale));
  const tasks = Math.max(20_000, Math.round(600_000 * scale));
  const projectOf = (p: number) => 1 + (p * 7919) % accounts;
  return {
    name: 'facts',
    description: `small fact tables referencing a tenant table: ${accounts} accounts, ${projects} projects, ${tasks.toLocaleString('en-US')} tasks`,
    tables: [
      {
        name: 'accounts', columns: 'account_id bigint PRIMARY KEY, name text NOT NULL', indexes: [],
        write: (dir) => writeCsv(join(dir, 'facts-accounts.csv'), 'account_id,name', accounts, (i) => `${i + 1},account ${i + 1}`),
        expert: { kind: 'distributed', column: 'account_id' },
      },
      {
        name: 'projects', columns: 'project_id bigint NOT NULL, account_id bigint NOT NULL, title text NOT NULL, PRIMARY KEY (account_id, project_id)', indexes: [],
        write: (dir) => writeCsv(join(dir, 'facts-projects.csv'), 'project_id,account_id,title', projects, (i) => `${i + 1},${projectOf(i + 1)},project ${i + 1}`),
        expert: { kind: 'distributed', column: 'account_id', colocateWith: 'accounts' },
      },
      {
        name: 'tasks', columns: 'task_id bigint NOT NULL, account_id bigint NOT NULL, project_id bigint NOT NULL, done boolean NOT NULL, PRIMARY KEY (account_id, task_id)',
        indexes: [],
        write: (dir) => {
          const rand = mulberry32(5);
          return writeCsv(join(dir, 'facts-tasks.csv'), 'task_id,account_id,project_id,done', tasks, (i) => {
            const p = 1 + Math.floor(rand() * projects);
            return `${i + 1},${projectOf(p)},${p},${rand() < 0.5 ? 't' : 'f'}`;
          });
        },
        expert: { kind: 'distributed', column: 'account_id', colocateWith: 'accounts' },
      },
    ],
    expertAfter: [],
    queries: [
      { name: 'tenant aggregate', tenantScoped: true, script: `${zipfTenant(accounts)}SELECT count(*) FILTER (WHERE done), count(*) FROM %S.tasks WHERE account_id = :t;\n` },
      { name: 'tenant join', tenantScoped: true, script: `${zipfTenant(accounts)}SET citus.enable_repartition_joins TO on;\n`
        + 'SELECT p.title, count(*) FROM %S.tasks t JOIN %S.projects p ON p.account_id = t.account_id AND p.project_id = t.project_id '
        + 'WHERE t.account_id = :t GROUP BY p.title ORDER BY 2 DESC LIMIT 10;\n' },
    ],
  };
}

/**
 * A star schema with real dimensions: products, stores, days (small, joined by everything) and a
 * sales fact table whose queries are per customer.
 */
export function starScenario(scale: number): Scenario {
  const products = 2000;
  const stores = 200;
  const days = 730;
  const customers = Math.max(2000, Math.round(50_000 * scale));
  const sales = Math.max(30_000, Math.round(1_500_000 * scale));
  return {
    name: 'star',
    description: `a star schema: ${products} products, ${stores} stores, ${days} days, ${sales.toLocaleString('en-US')} sales of ${customers.toLocaleString('en-US')} customers`,
    tables: [
      {
        name: 'products', columns: 'product_id int PRIMARY KEY, category text NOT NULL, brand text NOT NULL', indexes: [],
        write: (dir) => writeCsv(join(dir, 'star-products.csv'), 'product_id,category,brand', products, (i) => `${i + 1},category ${i % 40},brand ${i % 300}`),
        expert: { kind: 'reference' },
      },
      {
        name: 'stores', columns: 'store_id int PRIMARY KEY, region text NOT NULL', indexes: [],
        write: (dir) => writeCsv(join(dir, 'star-stores.csv'), 'store_id,region', stores, (i) => `${i + 1},region ${i % 12}`),
        expert: { kind: 'reference' },
      },
      {
        name: 'days', columns: 'day_id int PRIMARY KEY, day date NOT NULL, month int NOT NULL', indexes: [],
        write: (dir) => writeCsv(join(dir, 'star-days.csv'), 'day_id,day,month', days, (i) =>
          `${i + 1},${new Date(Date.UTC(2023, 0, 1 + i)).toISOString().slice(0, 10)},${new Date(Date.UTC(2023, 0, 1 + i)).getUTCMonth() + 1}`),
        expert: { kind: 'reference' },
      },
      {
        name: 'sales', columns: 'sale_id bigint NOT NULL, day_id int NOT NULL, product_id int NOT NULL, store_id int NOT NULL, customer_id bigint NOT NULL, amount numeric(10,2) NOT NULL',
        indexes: ['CREATE INDEX ON %T (customer_id)'],
        write: (dir) => {
          const rand = mulberry32(7);
          return writeCsv(join(dir, 'star-sales.csv'), 'sale_id,day_id,product_id,store_id,customer_id,amount', sales, (i) =>
            `${i + 1},${1 + Math.floor(rand() * days)},${1 + Math.floor(rand() * products)},${1 + Math.floor(rand() * stores)},`
            + `${1 + Math.floor(customers * rand() ** 2)},${(rand() * 200).toFixed(2)}`);
        },
        expert: { kind: 'distributed', column: 'customer_id' },
      },
    ],
    expertAfter: [],
    queries: [
      { name: 'customer aggregate', tenantScoped: true, script: `${zipfTenant(customers, 'c')}SELECT count(*), sum(amount) FROM %S.sales WHERE customer_id = :c;\n` },
      { name: 'customer star join', tenantScoped: true, script: `${zipfTenant(customers, 'c')}SET citus.enable_repartition_joins TO on;\n`
        + 'SELECT p.category, st.region, d.month, sum(s.amount) FROM %S.sales s JOIN %S.products p ON p.product_id = s.product_id '
        + 'JOIN %S.stores st ON st.store_id = s.store_id JOIN %S.days d ON d.day_id = s.day_id WHERE s.customer_id = :c GROUP BY 1, 2, 3;\n' },
    ],
  };
}

/** The naive user's distribution column: the first column of the table. */
export function naiveColumn(t: ScenarioTable): string {
  return t.columns.trim().split(/\s+/)[0]!;
}
