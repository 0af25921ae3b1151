import type { Queryable } from '../connect/queryable.js';
import { quoteLiteral } from '../connect/sql.js';
import { readPlacements, type PlacementRow } from '../catalog/placements.js';
import { recordAction } from '../store/action-store.js';

/**
 * What a shard move really did, read from Citus's placements before and after it:
 *
 * - A shard whose placement left one node and appeared on another moved. Citus moves a shard
 *   together with every shard colocated with it (same colocation group, same hash range), so the
 *   shards that went from the same node to the same node with the same range are one move.
 * - Each such move is recorded once, listing all its shards, with the undo that moves it back:
 *   citus_move_shard_placement of one of its shards from where it is now to exactly where it was
 *   (which takes the colocated shards back too). A shard moved twice (A to B, then B to C) is one
 *   move from A to C. Undos are independent of one another: each starts from the state after.
 * - Anything else (a placement added or dropped with no counterpart) is recorded as a placement
 *   change without undo: nothing the tool does makes one, so it is worth a DBA's attention.
 */
export interface NodeRef {
  readonly host: string;
  readonly port: number;
}

export interface ShardGroupMove {
  /** The shard the undo names (the lowest id of the group). */
  readonly shardId: string;
  readonly table: string;
  readonly colocationId: number;
  readonly from: string;
  readonly to: string;
  /** Every shard that moved with it, its own included. */
  readonly shards: readonly { shardId: string; table: string }[];
  readonly undoSql: string;
}

export interface PlacementChange {
  readonly shardId: string;
  readonly table: string;
  readonly removed: readonly string[];
  readonly added: readonly string[];
}

/** Who started the change, kept in each action's detail. */
export interface ActionOrigin {
  readonly startedBy: 'cli' | 'monitor' | 'daemon' | 'request' | 'library';
  readonly windowId?: number;
  readonly requestId?: string;
}

const label = (n: NodeRef) => `${n.host}:${n.port}`;

export function undoMoveSql(shardId: string, now: NodeRef, was: NodeRef): string {
  if (!/^\d+$/.test(shardId)) throw new Error(`not a shard id: ${JSON.stringify(shardId)}`);
  return `SELECT citus_move_shard_placement(${shardId}, ${quoteLiteral(now.host)}, ${Number(now.port)}, ${quoteLiteral(was.host)}, ${Number(was.port)}, 'block_writes')`;
}

/** The moves and other placement changes between two readings. Pure. */
export function diffPlacements(before: readonly PlacementRow[], after: readonly PlacementRow[]): { moves: ShardGroupMove[]; changes: PlacementChange[] } {
  const byShard = (rows: readonly PlacementRow[]) => {
    const m = new Map<string, PlacementRow[]>();
    for (const r of rows) m.set(r.shardId, [...(m.get(r.shardId) ?? []), r]);
    return m;
  };
  const was = byShard(before);
  const now = byShard(after);
  const groups = new Map<string, { first: PlacementRow; from: NodeRef; to: NodeRef; shards: PlacementRow[] }>();
  const changes: PlacementChange[] = [];
  for (const [shardId, old] of was) {
    const cur = now.get(shardId);
    if (!cur) continue; // dropped with its table: not a move
    const oldNodes = new Set(old.map((r) => label(r)));
    const curNodes = new Set(cur.map((r) => label(r)));
    const removed = old.filter((r) => !curNodes.has(label(r)));
    const added = cur.filter((r) => !oldNodes.has(label(r)));
    if (removed.length === 0 && added.length === 0) continue;
    if (removed.length !== added.length) {
      changes.push({ shardId, table: old[0]!.table, removed: removed.map(label), added: added.map(label) });
      continue;
    }
    removed.forEach((from, i) => {
      const to = added[i]!;
      const key = [from.colocationId, from.minValue, from.maxValue, label(from), label(to)].join('|');
      const g = groups.get(key) ?? { first: from, from, to, shards: [] };
      g.shards.push(to);
      groups.set(key, g);
    });
  }
  const moves = [...groups.values()].map((g) => {
    const shards = [...g.shards].sort((a, b) => (BigInt(a.shardId) < BigInt(b.shardId) ? -1 : 1));
    const lead = shards[0]!;
    return {
      shardId: lead.shardId, table: lead.table, colocationId: g.first.colocationId, from: label(g.from), to: label(g.to),
      shards: shards.map((s) => ({ shardId: s.shardId, table: s.table })),
      undoSql: undoMoveSql(lead.shardId, g.to, g.from),
    };
  }).sort((a, b) => (BigInt(a.shardId) < BigInt(b.shardId) ? -1 : 1));
  return { moves, changes };
}

/** Records each move (with its undo) and each other placement change as one action. */
export async function recordPlacementDiff(db: Queryable, diff: { moves: ShardGroupMove[]; changes: PlacementChange[] }, origin: ActionOrigin): Promise<void> {
  for (const m of diff.moves) {
    const { undoSql, ...detail } = m;
    await recordAction(db, { kind: 'move', detail: { ...detail, ...origin }, outcome: 'done', undoSql });
  }
  for (const c of diff.changes) await recordAction(db, { kind: 'placement', detail: { ...c, ...origin }, outcome: 'done', undoSql: null });
}

/**
 * Runs `act` (something that moves shards) between two readings of the placements and records
 * what changed, also when `act` fails part way: moves already made are recorded, then its error
 * is thrown on.
 */
export async function recordingMoves(db: Queryable, origin: ActionOrigin, act: () => Promise<unknown>): Promise<ShardGroupMove[]> {
  const before = await readPlacements(db);
  let failure: { error: unknown } | undefined;
  try {
    await act();
  } catch (error) {
    failure = { error };
  }
  let diff: ReturnType<typeof diffPlacements>;
  try {
    diff = diffPlacements(before, await readPlacements(db));
    await recordPlacementDiff(db, diff, origin);
  } catch (err) {
    // A lost session fails both: the move's own error says more than the failed reading.
    throw failure ? failure.error : err;
  }
  if (failure) throw failure.error;
  return diff.moves;
}
