/**
 * The README's library example, type-checked by every build (never run: it needs a cluster).
 * If the public API drifts from what the README shows, `npm run build` fails here.
 */
import { plan, load } from 'citus-adaptive-load';

export async function readmeExample(): Promise<void> {
  const connection = { coordinator: 'postgres://app@coordinator:5432/app', lockTimeout: 120 };
  const { profile } = await plan('orders.csv', { table: 'orders', connection }); // reads the cluster, changes nothing
  console.log(profile.distributionColumn, profile.reasons);

  const summary = await load({
    table: 'orders', file: 'orders.csv', connection,
    onPhase: (phase) => console.log(phase), // connected, recovered, locked, streamed, prepared, commit-recorded, committed
  });
  console.log(summary.rows, summary.path, summary.nodes);
}
