import type { Queryable } from '../connect/queryable.js';
import { toDatabaseError } from '../errors.js';

interface PendingRow {
  readonly row: Buffer;
  readonly value: string;
  readonly line: number;
  readonly copyLineSpan: number;
}

export type RouteResolved = (targetIndex: number, row: Buffer, line: number, copyLineSpan: number) => void;
export type RejectResolved = (line: number, reason: string, row: Buffer) => void;

/**
 * Values the client cannot canonicalize with certainty (`yesterday`, `1e3`, a date in a
 * DateStyle-dependent spelling...) are not guessed: PostgreSQL itself says which shard they
 * belong to, via get_shard_id_for_distribution_column, in batches, on a coordinator session
 * whose DateStyle/TimeZone/IntervalStyle are the ones the worker COPY sessions use.
 */
export class ServerResolver {
  private pending: PendingRow[] = [];
  resolved = 0;

  constructor(
    private readonly db: Queryable,
    private readonly tableOid: number,
    private readonly targetIndexByShardId: Map<string, number>,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  add(row: Buffer, value: string, line: number, copyLineSpan: number): void {
    this.pending.push({ row: Buffer.from(row), value, line, copyLineSpan });
  }

  async flush(route: RouteResolved, reject: RejectResolved): Promise<void> {
    const rows = this.pending;
    this.pending = [];
    if (rows.length === 0) return;
    let shards: (string | Error)[];
    try {
      shards = await this.lookup(rows.map((r) => r.value));
    } catch {
      // Some value is invalid for the type: look them up one by one to name the bad rows.
      shards = [];
      for (const r of rows) {
        try {
          shards.push((await this.lookup([r.value]))[0]!);
        } catch (err) {
          shards.push(toDatabaseError(err));
        }
      }
    }
    rows.forEach((r, i) => {
      const s = shards[i]!;
      if (s instanceof Error) {
        reject(r.line, s.message, r.row);
        return;
      }
      const target = this.targetIndexByShardId.get(s);
      if (target === undefined) throw new Error(`PostgreSQL routed line ${r.line} to shard ${s}, which is not a shard of the table`);
      this.resolved++;
      route(target, r.row, r.line, r.copyLineSpan);
    });
  }

  private async lookup(values: string[]): Promise<string[]> {
    const r = await this.db.query<{ shard: string }>(
      `SELECT get_shard_id_for_distribution_column($1::regclass, v)::text AS shard
         FROM unnest($2::text[]) WITH ORDINALITY AS t(v, i) ORDER BY i`, [this.tableOid, values]);
    return r.rows.map((x) => x.shard);
  }
}
