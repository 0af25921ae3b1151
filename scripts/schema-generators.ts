/**
 * Application schemas with their data, one CSV per table (named after it), for the schema tests
 * and the schema-layout bench: deterministic for a seed. Each schema comes with the layout an
 * expert would write for it (what `plan --schema` must find), and a few aggregate queries
 * (tenant-scoped and joins) whose results must not depend on the layout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../src/plan/random.js';

export interface ExpertLayout {
  /** Unqualified table name -> distribution column, or 'reference'. */
  readonly tables: Record<string, string>;
  /** Tables that must share one colocation group (each inner list one group). */
  readonly colocated: string[][];
  /** Tenant values isolated across the group, by group root. */
  readonly isolated?: Record<string, string[]>;
}

export interface GeneratedSchema {
  readonly name: string;
  /** CREATE TABLE statements using the placeholder SCHEMA. */
  readonly ddl: string;
  /** Unqualified table names, parents before children (how a careful user would load them). */
  readonly tables: string[];
  readonly rows: Record<string, number>;
  readonly expert: ExpertLayout;
  /** Aggregate queries (placeholder SCHEMA); `tenant` ones filter on one tenant ($1). */
  readonly queries: { name: string; kind: 'tenant' | 'join'; sql: string }[];
  /** A tenant value the tenant-scoped queries use. */
  readonly tenant: string;
}


const csv = (v: string | number) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));

function writeTable(dir: string, table: string, header: string[], rows: (string | number)[][]): number {
  writeFileSync(join(dir, `${table}.csv`), `${header.join(',')}\n${rows.map((r) => r.map(csv).join(',')).join('\n')}\n`);
  return rows.length;
}

export function qualify(sql: string, schema: string): string {
  return sql.replace(/SCHEMA\./g, `${schema}.`);
}

export interface MultiTenantSize {
  companies: number;
  campaignsPerCompany: number;
  adsPerCampaign: number;
  clicks: number;
  impressions: number;
  /** Share of the ads, clicks and impressions that belong to company 1 (a whale), e.g. 0.5; default: even. */
  whaleShare?: number;
}

/**
 * The schema: companies; campaigns, ads, clicks and impressions keyed by (company_id, id)
 * with foreign keys up the chain. impressions names the tenant key advertiser_id (a renamed
 * column the planner must follow down the foreign key).
 */
export function multiTenantSchema(dir: string, size: MultiTenantSize, seed = 1): GeneratedSchema {
  mkdirSync(dir, { recursive: true });
  const r = mulberry32(seed);
  const ddl = `
CREATE TABLE SCHEMA.companies (id bigint PRIMARY KEY, name text NOT NULL, plan text NOT NULL);
CREATE TABLE SCHEMA.campaigns (company_id bigint NOT NULL REFERENCES SCHEMA.companies (id), id bigint NOT NULL, name text NOT NULL,
  budget numeric(12,2) NOT NULL, PRIMARY KEY (company_id, id));
CREATE TABLE SCHEMA.ads (company_id bigint NOT NULL, id bigint NOT NULL, campaign_id bigint NOT NULL, title text NOT NULL,
  PRIMARY KEY (company_id, id), FOREIGN KEY (company_id, campaign_id) REFERENCES SCHEMA.campaigns (company_id, id));
CREATE TABLE SCHEMA.clicks (company_id bigint NOT NULL, id bigint NOT NULL, ad_id bigint NOT NULL, clicked_at timestamptz NOT NULL,
  cost numeric(10,4) NOT NULL, PRIMARY KEY (company_id, id), FOREIGN KEY (company_id, ad_id) REFERENCES SCHEMA.ads (company_id, id));
CREATE TABLE SCHEMA.impressions (advertiser_id bigint NOT NULL, id bigint NOT NULL, ad_id bigint NOT NULL, seen_at timestamptz NOT NULL,
  site text NOT NULL, PRIMARY KEY (advertiser_id, id), FOREIGN KEY (advertiser_id, ad_id) REFERENCES SCHEMA.ads (company_id, id));`;
  const rows: Record<string, number> = {};
  rows.companies = writeTable(dir, 'companies', ['id', 'name', 'plan'],
    Array.from({ length: size.companies }, (_, i) => [i + 1, `Company ${i + 1}, Inc.`, ['free', 'pro', 'enterprise'][i % 3]!]));
  const campaigns: (string | number)[][] = [];
  const adsByCompany = new Map<number, number[]>();
  const ads: (string | number)[][] = [];
  let adId = 0;
  for (let c = 1; c <= size.companies; c++) {
    // A whale has as many campaigns (and so ads) as its share of the activity asks for.
    const whale = size.whaleShare !== undefined && c === 1;
    const perCompany = whale
      ? Math.max(1, Math.round(size.campaignsPerCompany * (size.companies - 1) * size.whaleShare! / (1 - size.whaleShare!)))
      : size.campaignsPerCompany;
    for (let k = 1; k <= perCompany; k++) {
      const campaignId = c * 100_000 + k;
      campaigns.push([c, campaignId, `campaign ${k}`, (r() * 10_000).toFixed(2)]);
      for (let a = 0; a < size.adsPerCampaign; a++) {
        adId++;
        ads.push([c, adId, campaignId, `ad "${adId}"`]);
        adsByCompany.set(c, [...(adsByCompany.get(c) ?? []), adId]);
      }
    }
  }
  rows.campaigns = writeTable(dir, 'campaigns', ['company_id', 'id', 'name', 'budget'], campaigns);
  rows.ads = writeTable(dir, 'ads', ['company_id', 'id', 'campaign_id', 'title'], ads);
  const pickCompany = () => {
    if (size.whaleShare !== undefined && r() < size.whaleShare) return 1;
    return size.whaleShare !== undefined ? 2 + Math.floor(r() * (size.companies - 1)) : 1 + Math.floor(r() * size.companies);
  };
  const events = (n: number, extra: () => string | number) => Array.from({ length: n }, (_, i) => {
    const c = pickCompany();
    const list = adsByCompany.get(c)!;
    return [c, i + 1, list[Math.floor(r() * list.length)]!, new Date(Date.UTC(2026, 0, 1) + Math.floor(r() * 86_400_000 * 30)).toISOString(), extra()];
  });
  rows.clicks = writeTable(dir, 'clicks', ['company_id', 'id', 'ad_id', 'clicked_at', 'cost'], events(size.clicks, () => (r() * 3).toFixed(4)));
  rows.impressions = writeTable(dir, 'impressions', ['advertiser_id', 'id', 'ad_id', 'seen_at', 'site'],
    events(size.impressions, () => ['news.example', 'blog.example', 'video.example'][Math.floor(r() * 3)]!));
  return {
    name: 'multi-tenant', ddl, tables: ['companies', 'campaigns', 'ads', 'clicks', 'impressions'], rows, tenant: '2',
    expert: {
      tables: { companies: 'id', campaigns: 'company_id', ads: 'company_id', clicks: 'company_id', impressions: 'advertiser_id' },
      colocated: [['companies', 'campaigns', 'ads', 'clicks', 'impressions']],
      ...(size.whaleShare !== undefined ? { isolated: { companies: ['1'] } } : {}),
    },
    queries: [
      { name: 'clicks per campaign of a tenant', kind: 'tenant', sql: `SELECT a.campaign_id, count(*) AS clicks, sum(k.cost) AS cost
          FROM SCHEMA.clicks k JOIN SCHEMA.ads a ON a.company_id = k.company_id AND a.id = k.ad_id
         WHERE k.company_id = $1 GROUP BY 1 ORDER BY 1` },
      { name: 'impressions per site of a tenant', kind: 'tenant', sql: `SELECT i.site, count(*) FROM SCHEMA.impressions i
          JOIN SCHEMA.ads a ON a.company_id = i.advertiser_id AND a.id = i.ad_id WHERE i.advertiser_id = $1 GROUP BY 1 ORDER BY 1` },
      { name: 'click-through per company', kind: 'join', sql: `SELECT c.id, c.plan, count(DISTINCT k.id) AS clicks
          FROM SCHEMA.companies c JOIN SCHEMA.campaigns g ON g.company_id = c.id JOIN SCHEMA.ads a ON a.company_id = g.company_id AND a.campaign_id = g.id
          JOIN SCHEMA.clicks k ON k.company_id = a.company_id AND k.ad_id = a.id GROUP BY 1, 2 ORDER BY 1` },
      { name: 'spend per plan', kind: 'join', sql: `SELECT c.plan, sum(k.cost) AS cost FROM SCHEMA.companies c
          JOIN SCHEMA.clicks k ON k.company_id = c.id GROUP BY 1 ORDER BY 1` },
    ],
  };
}

/** A star schema: three real dimensions and a sales fact table referencing them. */
export function starSchema(dir: string, size: { products: number; stores: number; days: number; sales: number }, seed = 2): GeneratedSchema {
  mkdirSync(dir, { recursive: true });
  const r = mulberry32(seed);
  const ddl = `
CREATE TABLE SCHEMA.products (product_id int PRIMARY KEY, category text NOT NULL, price numeric(10,2) NOT NULL);
CREATE TABLE SCHEMA.stores (store_id int PRIMARY KEY, region text NOT NULL);
CREATE TABLE SCHEMA.dates (date_key int PRIMARY KEY, day date NOT NULL, month int NOT NULL);
CREATE TABLE SCHEMA.sales (sale_id bigint PRIMARY KEY, product_id int NOT NULL REFERENCES SCHEMA.products, store_id int NOT NULL REFERENCES SCHEMA.stores,
  date_key int NOT NULL REFERENCES SCHEMA.dates, quantity int NOT NULL, amount numeric(12,2) NOT NULL);`;
  const rows: Record<string, number> = {};
  rows.products = writeTable(dir, 'products', ['product_id', 'category', 'price'],
    Array.from({ length: size.products }, (_, i) => [i + 1, ['toys', 'books', 'garden', 'food'][i % 4]!, (1 + r() * 99).toFixed(2)]));
  rows.stores = writeTable(dir, 'stores', ['store_id', 'region'], Array.from({ length: size.stores }, (_, i) => [i + 1, ['north', 'south', 'east', 'west'][i % 4]!]));
  rows.dates = writeTable(dir, 'dates', ['date_key', 'day', 'month'], Array.from({ length: size.days }, (_, i) => {
    const d = new Date(Date.UTC(2025, 0, 1) + i * 86_400_000);
    return [20250000 + i, d.toISOString().slice(0, 10), d.getUTCMonth() + 1];
  }));
  rows.sales = writeTable(dir, 'sales', ['sale_id', 'product_id', 'store_id', 'date_key', 'quantity', 'amount'], Array.from({ length: size.sales }, (_, i) => [
    i + 1, 1 + Math.floor(r() * size.products), 1 + Math.floor(r() * size.stores), 20250000 + Math.floor(r() * size.days), 1 + Math.floor(r() * 5), (r() * 500).toFixed(2),
  ]));
  return {
    name: 'star', ddl, tables: ['products', 'stores', 'dates', 'sales'], rows, tenant: '3',
    expert: { tables: { products: 'reference', stores: 'reference', dates: 'reference', sales: 'sale_id' }, colocated: [] },
    queries: [
      { name: 'sales of a store by category', kind: 'tenant', sql: `SELECT p.category, sum(s.amount) FROM SCHEMA.sales s
          JOIN SCHEMA.products p USING (product_id) WHERE s.store_id = $1 GROUP BY 1 ORDER BY 1` },
      { name: 'revenue per region and month', kind: 'join', sql: `SELECT st.region, d.month, sum(s.amount), sum(s.quantity) FROM SCHEMA.sales s
          JOIN SCHEMA.stores st USING (store_id) JOIN SCHEMA.dates d USING (date_key) GROUP BY 1, 2 ORDER BY 1, 2` },
    ],
  };
}

/** Orders with line items, customers and products. */
export function ordersSchema(dir: string, size: { customers: number; products: number; orders: number; linesPerOrder: number }, seed = 3): GeneratedSchema {
  mkdirSync(dir, { recursive: true });
  const r = mulberry32(seed);
  const ddl = `
CREATE TABLE SCHEMA.customers (customer_id bigint PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TABLE SCHEMA.products (product_id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
CREATE TABLE SCHEMA.orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES SCHEMA.customers, ordered_at timestamptz NOT NULL);
CREATE TABLE SCHEMA.line_items (order_id bigint NOT NULL REFERENCES SCHEMA.orders, line_no int NOT NULL, product_id int NOT NULL REFERENCES SCHEMA.products,
  quantity int NOT NULL, price numeric(10,2) NOT NULL, PRIMARY KEY (order_id, line_no));`;
  const rows: Record<string, number> = {};
  rows.customers = writeTable(dir, 'customers', ['customer_id', 'name', 'country'],
    Array.from({ length: size.customers }, (_, i) => [i + 1, `customer ${i + 1}`, ['DE', 'FR', 'NL', 'US'][i % 4]!]));
  rows.products = writeTable(dir, 'products', ['product_id', 'name', 'price'], Array.from({ length: size.products }, (_, i) => [i + 1, `product ${i + 1}`, (1 + r() * 50).toFixed(2)]));
  rows.orders = writeTable(dir, 'orders', ['order_id', 'customer_id', 'ordered_at'], Array.from({ length: size.orders }, (_, i) => [
    i + 1, 1 + Math.floor(r() * size.customers), new Date(Date.UTC(2026, 0, 1) + Math.floor(r() * 86_400_000 * 60)).toISOString(),
  ]));
  const lines: (string | number)[][] = [];
  for (let o = 1; o <= size.orders; o++) {
    const n = 1 + Math.floor(r() * size.linesPerOrder * 2);
    for (let l = 1; l <= n; l++) lines.push([o, l, 1 + Math.floor(r() * size.products), 1 + Math.floor(r() * 4), (1 + r() * 50).toFixed(2)]);
  }
  rows.line_items = writeTable(dir, 'line_items', ['order_id', 'line_no', 'product_id', 'quantity', 'price'], lines);
  return {
    name: 'orders', ddl, tables: ['customers', 'products', 'orders', 'line_items'], rows, tenant: '7',
    expert: {
      tables: { customers: 'reference', products: 'reference', orders: 'order_id', line_items: 'order_id' },
      colocated: [['orders', 'line_items']],
    },
    queries: [
      { name: 'one order with its lines', kind: 'tenant', sql: `SELECT o.order_id, count(*), sum(l.quantity * l.price) FROM SCHEMA.orders o
          JOIN SCHEMA.line_items l USING (order_id) WHERE o.order_id = $1 GROUP BY 1` },
      { name: 'revenue per country', kind: 'join', sql: `SELECT c.country, count(DISTINCT o.order_id), sum(l.quantity * l.price) FROM SCHEMA.orders o
          JOIN SCHEMA.line_items l USING (order_id) JOIN SCHEMA.customers c USING (customer_id) GROUP BY 1 ORDER BY 1` },
      { name: 'top products', kind: 'join', sql: `SELECT p.product_id, sum(l.quantity) FROM SCHEMA.line_items l JOIN SCHEMA.products p USING (product_id)
          GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10` },
    ],
  };
}
