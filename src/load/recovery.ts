/**
 * Recovery over the whole cluster: which nodes to visit, for recoverPreparedTransactions
 * (distributed-commit.ts), which holds the rule itself. Every active primary is visited, the
 * coordinator included even when it is not in pg_dist_node (a cluster without workers added
 * yet), because a load may have prepared on any node that holds a placement.
 */
import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { recoverPreparedTransactions, type RecoveryResult } from './distributed-commit.js';

/** Recovery over every primary node of the cluster (coordinator included). */
export async function recoverAll(coordinator: pg.Client, conn: ConnectionConfig): Promise<RecoveryResult> {
  const nodes = await coordinator.query<{ nodename: string; nodeport: number; groupid: number }>(
    "SELECT nodename, nodeport, groupid FROM pg_dist_node WHERE noderole = 'primary' AND isactive ORDER BY nodeid");
  const targets = nodes.rows.map((n) => ({
    label: `${n.nodename}:${n.nodeport}`,
    config: n.groupid === 0 ? conn.coordinator : conn.workerConfig({ host: n.nodename, port: n.nodeport }),
  }));
  if (!nodes.rows.some((n) => n.groupid === 0)) targets.unshift({ label: 'coordinator', config: conn.coordinator });
  return recoverPreparedTransactions(coordinator, targets, conn.timeouts);
}
