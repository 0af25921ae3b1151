import type { Queryable } from '../connect/queryable.js';
import type { ShardingProfile } from '../plan/sharding-profile.js';

/** Stores a profile on the coordinator; returns its id. */
export async function storeProfile(db: Queryable, profile: ShardingProfile, applied: boolean, statements: string[]): Promise<number> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO adaptive_load.profiles (table_name, applied, statements, profile) VALUES ($1, $2, $3, $4) RETURNING profile_id::text AS id`,
    [profile.table, applied, statements, JSON.stringify(profile)]);
  return Number(r.rows[0]!.id);
}
