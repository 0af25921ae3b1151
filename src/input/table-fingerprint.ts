/**
 * What a resumed chunked load from a staging table checks before it trusts its manifest's block
 * ranges (input/table-source.ts tableSourceByBlocks): the rows still sit in the blocks they sat
 * in. Taken under the staging table's EXCLUSIVE lock (load/staging-fate.ts), so it describes
 * exactly the rows the run reads.
 * - relfilenode: TRUNCATE, VACUUM FULL and CLUSTER give the table a new file (rows moved or gone);
 * - the number of blocks: rows appended past the recorded end, or trailing blocks cut by VACUUM;
 * - md5 of the rows of the first and the last block: rows rewritten in place there.
 * An UPDATE or DELETE in a middle block between runs, with everything else kept, is not caught:
 * hashing every block would cost a full read of the table per resume (the same trade as a
 * file's fingerprint, input/fingerprint.ts).
 */
import type { TableInfo } from '../catalog/catalog.js';
import type { Queryable } from '../connect/queryable.js';
import { qualifiedName } from '../connect/sql.js';

export interface TableFingerprint {
  /** The source's identity, as a file's fingerprint names its path (store/chunk-store.ts finds jobs by it). */
  readonly path: string;
  readonly kind: 'table';
  readonly relfilenode: string;
  readonly blocks: number;
  readonly firstBlock: string;
  readonly lastBlock: string;
}

export function tableIdentity(table: TableInfo): string {
  return `table ${table.schema}.${table.name}`;
}

async function blockHash(db: Queryable, table: TableInfo, block: number): Promise<string> {
  const r = await db.query<{ h: string }>(
    `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.ctid), '')) AS h FROM ${qualifiedName(table.schema, table.name)} t
      WHERE t.ctid >= format('(%s,0)', $1::bigint)::tid AND t.ctid < format('(%s,0)', $1::bigint + 1)::tid`, [block]);
  return r.rows[0]!.h;
}

export async function fingerprintTable(db: Queryable, table: TableInfo): Promise<TableFingerprint> {
  const r = await db.query<{ relfilenode: string; blocks: string }>(
    `SELECT pg_relation_filenode(c.oid)::text AS relfilenode,
            (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::text AS blocks
       FROM pg_class c WHERE c.oid = $1`, [table.oid]);
  const blocks = Number(r.rows[0]!.blocks);
  return {
    path: tableIdentity(table), kind: 'table', relfilenode: r.rows[0]!.relfilenode, blocks,
    firstBlock: blocks > 0 ? await blockHash(db, table, 0) : '',
    lastBlock: blocks > 0 ? await blockHash(db, table, blocks - 1) : '',
  };
}

/** Why the table now is not the one `stored` describes, or undefined when it is the same. */
export function tableFingerprintDifference(stored: unknown, now: TableFingerprint): string | undefined {
  const s = stored as Partial<TableFingerprint> | null;
  if (!s || typeof s !== 'object' || s.kind !== 'table') return 'the job did not read a table';
  if (s.path !== now.path) return `the job read ${s.path}, not ${now.path}`;
  if (s.relfilenode !== now.relfilenode) {
    return `its storage was rewritten (relfilenode ${s.relfilenode} then, ${now.relfilenode} now: TRUNCATE, VACUUM FULL or CLUSTER), so its rows are no longer where the manifest's block ranges say`;
  }
  if (s.blocks !== now.blocks) return `its size changed from ${s.blocks} to ${now.blocks} blocks (rows added or the table's end cut)`;
  if (s.firstBlock !== now.firstBlock) return 'the rows of its first block changed';
  if (s.lastBlock !== now.lastBlock) return 'the rows of its last block changed';
  return undefined;
}

/**
 * Blocks per chunk for --commit-every: a byte limit counts the table's own bytes (block_size
 * each); a row limit divides by the rows per block seen in the first blocks (at most 64 read).
 */
export async function blocksPerChunk(db: Queryable, table: TableInfo, every: { rows: number } | { bytes: number }, blocks: number): Promise<number> {
  if ('bytes' in every) {
    const r = await db.query<{ b: string }>("SELECT current_setting('block_size') AS b");
    return Math.max(1, Math.floor(every.bytes / Number(r.rows[0]!.b)));
  }
  const sample = Math.min(Math.max(blocks, 1), 64);
  const r = await db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${qualifiedName(table.schema, table.name)} WHERE ctid < format('(%s,0)', $1::bigint)::tid`, [sample]);
  const perBlock = Math.max(1, Number(r.rows[0]!.n) / sample);
  return Math.max(1, Math.floor(every.rows / perBlock));
}
