/**
 * A chunked, resumable load from a staging table (--from-table with --commit-every / --resume).
 * A file's chunks are byte ranges; a table's are ranges of its heap blocks (ctid), read with TID
 * range scans (input/table-source.ts tableSourceByBlocks) and recorded in the manifest
 * (load_chunks.ctid_from_block/ctid_to_block), because a block range names the same rows in
 * every run as long as the rows do not move: the run holds the table's EXCLUSIVE lock
 * (load/staging-fate.ts holdForRun), and a resume first checks the table's fingerprint
 * (input/table-fingerprint.ts), taken under that lock.
 *
 * Only a local (coordinator) table has one ctid space. A Citus table's rows live in shards on
 * several nodes, each with its own ctids, and the coordinator's table is an empty shell: such a
 * staging table is refused for chunking rather than chunked per shard.
 */
import type pg from 'pg';
import { readDistribution } from '../catalog/catalog.js';
import type { ConnectionConfig } from '../connect/config.js';
import { InvalidConfigurationError } from '../errors.js';
import { blocksPerChunk, fingerprintTable, tableFingerprintDifference } from '../input/table-fingerprint.js';
import { tableSourceByBlocks, type BlockRanges, type TableSource, type TextSettings } from '../input/table-source.js';
import type { CommitEvery } from '../load/chunk-policy.js';
import { recordChunksTotal, recordJobChunking, type ResumePoint } from '../store/chunk-store.js';

/** Throws unless `staged` can be loaded in chunks of its blocks. */
export async function checkChunkableStaging(db: pg.Client, staged: TableSource, citus: boolean, path: 'direct' | 'coordinator'): Promise<void> {
  const dist = await readDistribution(db, staged.table, citus);
  if (dist.kind !== 'local') {
    throw new InvalidConfigurationError(`--commit-every cannot chunk the staging table ${staged.table.schema}.${staged.table.name}: it is a `
      + `Citus ${dist.kind} table, whose rows are spread over shards with no single ctid order to cut into resumable ranges. `
      + 'Load it without --commit-every (one transaction), or copy it into a local table first');
  }
  if (path !== 'direct') {
    throw new InvalidConfigurationError(`--commit-every from a staging table needs the direct path, whose chunk records can be written `
      + 'while the staging table stays locked; this load goes through the coordinator');
  }
}

/**
 * On the job's session, in the transaction holding the staging table's lock: the table's
 * fingerprint (checked against a resumed job's, or stored for a new one on `recordSession`,
 * which commits at once) and the source reading its blocks from where the job stands.
 */
export async function stagingBlockRanges(db: pg.Client, recordSession: pg.Client, conn: ConnectionConfig, staged: TableSource,
  settings: TextSettings, jobId: number, every: CommitEvery,
  resumed: { jobId: number; point: ResumePoint; fingerprint: unknown } | undefined): Promise<TableSource & { ranges: BlockRanges }> {
  const now = await fingerprintTable(db, staged.table);
  if (resumed) {
    const difference = tableFingerprintDifference(resumed.fingerprint, now);
    if (difference) {
      throw new InvalidConfigurationError(`cannot resume job ${resumed.jobId}: the staging table ${staged.table.schema}.${staged.table.name} `
        + `changed since it started: ${difference}. Its committed chunks stay; load the table as a new job`);
    }
  } else {
    await recordJobChunking(recordSession, jobId, { ...every, fingerprint: now });
  }
  const step = await blocksPerChunk(db, staged.table, every, now.blocks);
  const from = resumed?.point.toBlock ?? 0;
  // At least one chunk, even of an empty table: the last chunk carries the commit of the whole job.
  await recordChunksTotal(recordSession, jobId, (resumed?.point.chunksDone ?? 0) + Math.max(1, Math.ceil((now.blocks - from) / step)));
  return tableSourceByBlocks(conn, staged, settings, { from, to: now.blocks, step });
}
