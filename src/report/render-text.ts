import type { ReportData } from './report-data.js';
import { bytes, fit, pct, skew, wrap } from './format.js';
import { hotShardLine, summaryHeadline } from './summary-lines.js';

const WIDTH = 80;

/** A report for an 80-column terminal. */
export function renderText(r: ReportData): string {
  const out: string[] = [`citus-adaptive-load report, ${r.generatedAt}`, ''];
  const s = r.summary;
  out.push('cluster summary', ...wrap(summaryHeadline(s), WIDTH, '  '));
  if (s.nodes.length) {
    out.push(`  ${'node'.padEnd(30)} ${'shards'.padStart(6)} ${'actual'.padStart(8)} ${'predicted'.padStart(10)}`);
    for (const n of s.nodes) out.push(`  ${fit(n.node, 30).padEnd(30)} ${String(n.shards).padStart(6)} ${pct(n.actualShare).padStart(8)} ${pct(n.predictedShare).padStart(10)}`);
  }
  if (s.hottestShards.length) {
    out.push('  hottest shards');
    for (const h of s.hottestShards) out.push(...wrap(hotShardLine(h), WIDTH, '    - '));
  }
  out.push('');
  for (const t of r.tables) {
    out.push(fit(`${t.table}: ${t.kind}${t.distributionColumn ? ` by ${t.distributionColumn}` : ''}, ${t.shardCount} shards`
      + `${t.colocatedWith.length ? `, colocated with ${t.colocatedWith.join(', ')}` : ''}`, WIDTH));
    out.push(`  ${'node'.padEnd(24)} ${'shards'.padStart(6)} ${'size'.padStart(11)} ${'predicted load'.padStart(15)}`);
    for (const n of t.nodes) {
      out.push(`  ${fit(n.node, 24).padEnd(24)} ${String(n.shards).padStart(6)} ${bytes(n.bytes).padStart(11)} ${pct(n.predictedLoad).padStart(15)}`);
    }
    out.push(fit(`  size skew (busiest/mean): ${skew(t)}`, WIDTH));
    for (const n of t.unreachableNodes) out.push(fit(`  warning: ${n} is unreachable; its size and load are unknown`, WIDTH));
    for (const h of t.hotShards.slice(0, 3)) out.push(fit(`  hot shard ${h.shardId} on ${h.node}: ${pct(h.predictedShare)} of predicted load`, WIDTH));
    if (t.isolatedTenants.length) out.push(fit(`  isolated tenants: ${t.isolatedTenants.join(', ')}`, WIDTH));
    out.push('');
  }
  if (r.windows.length) {
    out.push('prediction error over time (WAPE per window, largest node share error and MAPE beside it)');
    for (const w of r.windows.slice(-10)) {
      const bar = w.wape === null ? '' : '#'.repeat(Math.min(40, Math.round(w.wape * 40)));
      if (!w.complete) out.push(fit(`  ${w.to.slice(0, 19)}  incomplete: ${w.unreachable.join(', ') || 'a node'} did not answer`, WIDTH));
      else {
        out.push(fit(`  ${w.to.slice(0, 19)}  ${(w.wape === null ? '   -' : w.wape.toFixed(3)).padStart(6)}  ${(w.maxShareError === null ? '-' : pct(w.maxShareError)).padStart(6)}`
          + `  ${(w.mape === null ? '   -' : w.mape.toFixed(3)).padStart(6)}  ${bar}`, WIDTH));
      }
    }
    out.push('');
  }
  if (r.nodeHealth.length) {
    out.push(`nodes in the last window (to ${r.nodeHealth[0]!.windowEnd.slice(0, 19)})`);
    out.push(`  ${'node'.padEnd(22)} ${'busy s'.padStart(7)} ${'xact/s'.padStart(7)} ${'cache'.padStart(6)} ${'wait'.padStart(4)} ${'conns'.padStart(6)} ${'cpu'.padStart(6)} ${'capacity'.padStart(8)}`);
    for (const h of r.nodeHealth) {
      out.push(`  ${fit(h.node, 22).padEnd(22)} ${h.busySeconds.toFixed(1).padStart(7)} ${h.xactsPerSecond.toFixed(0).padStart(7)} ${pct(h.cacheHitRatio).padStart(6)} `
        + `${String(h.waitingBackends).padStart(4)} ${pct(h.connectionsUsed).padStart(6)} ${pct(h.hostCpuBusy).padStart(6)} ${h.capacity.toFixed(2).padStart(8)}`);
    }
    out.push('');
  }
  if (r.loads.length) {
    out.push('recent loads');
    for (const l of r.loads.slice(0, 10)) {
      out.push(fit(`  #${l.jobId} ${l.status.padEnd(11)} ${fit(l.table, 20).padEnd(20)} ${String(l.rows ?? '-').padStart(10)} rows ${l.path ?? ''}`, WIDTH));
    }
    out.push('');
  }
  if (r.actions.length) {
    out.push('actions');
    for (const a of r.actions.slice(0, 10)) out.push(fit(`  ${a.takenAt.slice(0, 19)} ${a.kind}: ${a.detail}`, WIDTH));
    out.push('');
  }
  if (r.recommendations.length) {
    out.push('recommendations');
    for (const rec of r.recommendations) {
      out.push(...wrap(rec.detail, WIDTH, '  - '));
      if (rec.sql) out.push(...wrap(rec.sql, WIDTH, '    '));
    }
  }
  return `${out.map((l) => fit(l, WIDTH)).join('\n').trimEnd()}\n`;
}
