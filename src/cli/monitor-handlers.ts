import { resolveConnectionConfig } from '../connect/config.js';
import { migrate } from '../store/migrate.js';
import { monitorOnce, type MonitorResult } from '../monitor/monitor.js';
import { startDaemon } from '../monitor/daemon.js';
import { rebalance } from '../rebalance/rebalance.js';
import { tuneWorkers, type TuneResult } from '../rebalance/worker-settings.js';
import { tuneTenantTracking, type TrackingChange } from '../rebalance/tenant-tracking.js';
import { DEFAULT_SCHEDULE } from '../rebalance/policy.js';
import { applyRetention } from '../monitor/history-retention.js';
import { parseRetention, type RetentionResult } from '../store/retention.js';
import { InvalidConfigurationError } from '../errors.js';
import { connectionInput, fail, withCoordinator, type CommonFlags } from './handlers.js';
import { formatError, toUserError } from './format-error.js';

export interface MonitorFlags extends CommonFlags {
  once?: boolean;
  /** History horizon ("30d", "12h", "off"); default 30 days. */
  retain?: string;
  rebalance?: boolean;
  threshold?: number;
}

export interface DaemonFlags extends MonitorFlags {
  schedule?: string;
  /** Directories whose files SQL requests may load (repeatable). */
  allowDir?: string[];
  /** Seconds a request may run. */
  requestTimeout?: number;
  /** Seconds a tick may run. */
  tickTimeout?: number;
}

const positiveSeconds = (flag: string, v: number | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v <= 0) throw new InvalidConfigurationError(`${flag} must be a positive number of seconds`);
  return v * 1000;
};

export interface RebalanceFlags extends CommonFlags {
  dryRun?: boolean;
  table?: string;
}

const pct = (x: number | null) => (x === null ? '   -' : `${(x * 100).toFixed(1).padStart(5)}%`);

export function monitorText(r: MonitorResult): string {
  const lines = [`window ${r.window.from} .. ${r.window.to}`, 'node                       predicted   actual   busy s  xact/s  capacity  host cpu'];
  for (const n of r.nodes) {
    const l = n.live;
    const live = l ? `  ${(l.busyMs / 1000).toFixed(1).padStart(7)} ${l.xactsPerSecond.toFixed(0).padStart(7)}  ${l.capacity.toFixed(2).padStart(8)}  ${pct(l.host?.cpuBusy ?? null)}` : '';
    lines.push(`  ${n.node.padEnd(24)} ${pct(n.predictedShare)}  ${pct(n.actualShare)}${live}`);
  }
  const err = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
  lines.push(r.wape === null ? 'WAPE n/a (no prediction to score, or a window without signal)'
    : `WAPE ${err(r.wape)} (largest node share error ${pct(r.maxShareError).trim()}); MAPE ${err(r.mape)}`);
  lines.push(`busiest/mean node load ${r.imbalance.actual === null ? 'n/a' : r.imbalance.actual.toFixed(2)} now, ${r.imbalance.predicted.toFixed(2)} predicted`);
  if (!r.complete) {
    lines.push(`window incomplete: ${r.unreachable.map((u) => u.node).join(', ')} did not answer; no actual load stored, nothing learned, no shard moves until every node answers`);
  } else if (r.signal.baseline) {
    lines.push('baseline window: a worker\'s statement counters were read for the first time and recorded as the baseline (what they held '
      + 'covers an unknown span since their last reset); nothing learned or moved; the next cycle measures the load from now');
  } else if (!r.signal.enough) {
    lines.push(`window below the load floor (${r.signal.totalMs.toFixed(1)} ms, ${Math.round(r.signal.calls)} calls on shards): noise, nothing learned or moved; the prediction stays`);
  }
  for (const h of r.hotspots) lines.push(`hotspot: ${h.reason}`);
  for (const a of r.actions) lines.push(`action: ${a.kind}: ${a.detail}`);
  for (const a of r.advice) lines.push(`advice: ${a.detail}${a.sql ? `\n  ${a.sql}` : ''}`);
  for (const u of r.unreachable) lines.push(`unreachable: ${u.node} (${u.error}); retried next window`);
  return `${lines.join('\n')}\n`;
}

function prunedText(p: RetentionResult | undefined): string {
  const parts = p ? Object.entries(p.deleted).filter(([, n]) => n > 0).map(([t, n]) => `${n} ${t}`) : [];
  if (!p || parts.length === 0) return '';
  return `pruned history older than the retention horizon: ${parts.join(', ')}${p.more ? ' (more next cycle)' : ''}\n`;
}

export async function runMonitor(flags: MonitorFlags): Promise<void> {
  try {
    const conn = resolveConnectionConfig(connectionInput(flags));
    const retain = flags.retain === undefined ? undefined : parseRetention(flags.retain);
    const { r, pruned } = await withCoordinator(flags, async (db) => {
      await migrate(db);
      const cycle = await monitorOnce(db, conn, { rebalance: flags.rebalance, threshold: flags.threshold });
      return { r: cycle, pruned: await applyRetention(db, retain) };
    });
    process.stdout.write(flags.json ? `${JSON.stringify({ ...r, ...(pruned ? { pruned } : {}) })}\n` : monitorText(r) + prunedText(pruned));
  } catch (err) {
    fail(flags, err);
  }
}

export async function runDaemon(flags: DaemonFlags): Promise<void> {
  try {
    const conn = resolveConnectionConfig(connectionInput(flags));
    await withCoordinator(flags, (db) => migrate(db));
    const log = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);
    const requestTimeoutMs = positiveSeconds('--request-timeout', flags.requestTimeout);
    const tickTimeoutMs = positiveSeconds('--tick-timeout', flags.tickTimeout);
    const retain = flags.retain === undefined ? undefined : parseRetention(flags.retain);
    const daemon = await startDaemon(conn, {
      ...(retain !== undefined ? { retain } : {}),
      onPruned: (p) => log(prunedText(p).trimEnd()),
      schedule: flags.schedule, rebalance: flags.rebalance, threshold: flags.threshold,
      allowDirs: flags.allowDir ?? [],
      ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
      ...(tickTimeoutMs ? { tickTimeoutMs } : {}),
      onRecovered: (r) => log(`recovered prepared transactions of crashed loads: ${r.committed.length} committed, ${r.rolledBack.length} rolled back`),
      onTick: (r) => (flags.json ? process.stdout.write(`${JSON.stringify(r)}\n`) : log(monitorText(r).trimEnd())),
      onError: (e) => log(`tick failed, retrying next tick: ${formatError(toUserError(e))}`),
      onStandby: () => log('another daemon holds the lock; standing by'),
      log,
    });
    // An exception no request or tick caught leaves the process in an unknown state: record it
    // on the request being run, then exit (a supervisor restarts the daemon).
    process.on('uncaughtException', (err) => {
      log(`daemon crashed: ${err.stack ?? err.message}`);
      const failed = daemon.requests?.failRunning(`the daemon crashed while running the request: ${err.message}`) ?? Promise.resolve();
      void Promise.race([failed, new Promise((r) => setTimeout(r, 5000))]).finally(() => process.exit(70));
    });
    log(`daemon started (schedule ${flags.schedule ?? DEFAULT_SCHEDULE}; requests may load files under ${flags.allowDir?.length ? flags.allowDir.join(', ') : 'no directory (--allow-dir DIR allows one)'})`);
    await daemon.stopped;
    log('daemon stopped');
    // An abandoned tick may still hold sockets to a silent node: they must not keep the process up.
    process.exit(process.exitCode ?? 0);
  } catch (err) {
    fail(flags, err);
  }
}

export async function runRebalance(flags: RebalanceFlags): Promise<void> {
  try {
    const r = await withCoordinator(flags, async (db) => {
      await migrate(db);
      return rebalance(db, { dryRun: flags.dryRun ?? false, ...(flags.table ? { table: flags.table } : {}), origin: { startedBy: 'cli' } });
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      if (r.notRebalanced) process.stdout.write(`${r.notRebalanced}\n`);
      else if (r.held) process.stdout.write(`held: ${r.held}\n`);
      else if (r.moves.length === 0) process.stdout.write('balanced: the rebalancer found no move worth making\n');
      if (flags.dryRun) for (const m of r.moves) process.stdout.write(`would move shard ${m.shardId} of ${m.table}: ${m.from} -> ${m.to}${m.reason ? ` (${m.reason})` : ''}\n`);
      for (const m of r.skipped ?? []) process.stdout.write(`not worth moving shard ${m.shardId} of ${m.table}: ${m.from} -> ${m.to}: ${m.reason}\n`);
      // What really moved, colocated shards included (each recorded in adaptive_load.actions with its undo).
      for (const m of r.moved) {
        const others = m.shards.filter((s) => s.shardId !== m.shardId).map((s) => `${s.shardId} of ${s.table}`);
        process.stdout.write(`moved shard ${m.shardId} of ${m.table}${others.length ? ` with ${others.join(', ')}` : ''}: ${m.from} -> ${m.to}\n`);
      }
      if (!flags.dryRun && r.moves.length > 0 && r.moved.length === 0) process.stdout.write('the rebalancer planned moves but moved nothing\n');
    }
  } catch (err) {
    fail(flags, err);
  }
}

export interface TuneFlags extends CommonFlags {
  apply?: boolean;
  /** With --apply: change the workers that answer even when some do not. */
  skipUnreachable?: boolean;
}

export function tuneText(r: TuneResult, apply: boolean): string {
  const lines: string[] = [];
  for (const n of r.nodes) {
    if (n.status === 'unreachable' || n.status === 'failed') lines.push(`${n.status}: ${n.node}: ${n.error}${n.changes.some((c) => c.applied) ? '' : '; nothing changed there'}`);
    for (const c of n.changes) {
      const verb = c.applied ? 'set' : apply && r.applied ? 'not set' : 'would set';
      lines.push(`${verb} ${c.name} on ${c.node}: ${c.from} (from ${c.origin}) -> ${c.to} (${c.reason}); undo: ${c.undo}`);
    }
    for (const note of n.notes) lines.push(`${n.node}: ${note}`);
  }
  if (r.refused) lines.push(`not applied: ${r.refused}`);
  if (r.changes.length === 0 && r.nodes.every((n) => n.status !== 'unreachable' && n.status !== 'failed')) lines.push('worker settings already match the predicted load');
  return `${lines.join('\n')}\n`;
}

function trackingText(changes: readonly TrackingChange[], apply: boolean): string {
  return changes.map((c) => `${apply ? 'set' : 'would set'} ${c.name} on ${c.node}: ${c.from} -> ${c.to} (${c.reason}); undo: ${c.undo}\n`).join('');
}

export async function runTune(flags: TuneFlags): Promise<void> {
  try {
    if (flags.skipUnreachable && !flags.apply) throw new InvalidConfigurationError('--skip-unreachable goes with --apply');
    const conn = resolveConnectionConfig(connectionInput(flags));
    const r = await withCoordinator(flags, async (db) => {
      await migrate(db);
      const workers = await tuneWorkers(db, conn, { apply: flags.apply ?? false, skipUnreachable: flags.skipUnreachable ?? false });
      // Tenant statistics only where every node answers and nothing was refused: counted on some
      // nodes alone, the next window's tenants would be half the picture.
      const everyNode = workers.nodes.every((n) => n.status !== 'unreachable') && !workers.refused;
      const tracking = everyNode ? await tuneTenantTracking(db, conn, flags.apply ?? false) : [];
      return { ...workers, changes: [...workers.changes, ...tracking], tracking };
    });
    process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : tuneText(r, flags.apply ?? false) + trackingText(r.tracking, flags.apply ?? false));
    // An apply that was refused or failed on a node did not do what was asked; what it did is recorded.
    if (r.refused || r.nodes.some((n) => n.status === 'failed' && n.changes.length > 0)) process.exitCode = 1;
  } catch (err) {
    fail(flags, err);
  }
}
