import type { ReportData } from './report-data.js';
import { bytes, pct, skew } from './format.js';
import { hotShardLine, summaryHeadline } from './summary-lines.js';

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function renderMarkdown(r: ReportData): string {
  const out: string[] = [`# citus-adaptive-load report`, '', `Generated ${r.generatedAt}.`, ''];
  const s = r.summary;
  out.push('## Cluster summary', '', summaryHeadline(s), '');
  if (s.nodes.length) {
    out.push('| node | shards | actual load | predicted load |', '| --- | ---: | ---: | ---: |');
    for (const n of s.nodes) out.push(`| ${cell(n.node)} | ${n.shards} | ${pct(n.actualShare)} | ${pct(n.predictedShare)} |`);
    out.push('');
  }
  if (s.hottestShards.length) {
    out.push('Hottest shards:', '');
    for (const h of s.hottestShards) out.push(`- ${cell(hotShardLine(h))}`);
    out.push('');
  }
  for (const t of r.tables) {
    out.push(`## ${t.table}`, '', `${t.kind}${t.distributionColumn ? ` by \`${t.distributionColumn}\`` : ''}, ${t.shardCount} shards`
      + `${t.colocatedWith.length ? `, colocated with ${t.colocatedWith.map((c) => `\`${c}\``).join(', ')}` : ''}; size skew ${skew(t)}.`, '');
    for (const n of t.unreachableNodes) out.push(`**Warning:** ${cell(n)} is unreachable; its size and load are unknown.`, '');
    out.push('| node | shards | size | predicted load |', '| --- | ---: | ---: | ---: |');
    for (const n of t.nodes) out.push(`| ${cell(n.node)} | ${n.shards} | ${bytes(n.bytes)} | ${pct(n.predictedLoad)} |`);
    out.push('');
    if (t.hotShards.length) out.push(`Hot shards: ${t.hotShards.map((h) => `${h.shardId} (${pct(h.predictedShare)}, ${h.node})`).join(', ')}.`, '');
    if (t.isolatedTenants.length) out.push(`Isolated tenants: ${t.isolatedTenants.join(', ')}.`, '');
  }
  if (r.windows.length) {
    out.push('## Predicted vs actual load', '', '| window end | WAPE | largest node share error | MAPE | nodes (predicted / actual) |', '| --- | ---: | ---: | ---: | --- |');
    for (const w of r.windows) out.push(!w.complete ? `| ${w.to} | - | - | - | incomplete: ${w.unreachable.join(', ') || 'a node'} did not answer |` : `| ${w.to} | ${w.wape === null ? '-' : w.wape.toFixed(3)} | ${pct(w.maxShareError)} | ${w.mape === null ? '-' : w.mape.toFixed(3)} | ${w.nodes.map((n) => `${n.node}: ${pct(n.predictedShare)} / ${pct(n.actualShare)}`).join('; ')} |`);
    out.push('');
  }
  if (r.nodeHealth.length) {
    out.push(`## Nodes in the last window (to ${r.nodeHealth[0]!.windowEnd})`, '',
      '| node | busy s | xact/s | cache hits | waiting | connections | host CPU | host memory | capacity |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const h of r.nodeHealth) {
      out.push(`| ${cell(h.node)} | ${h.busySeconds.toFixed(1)} | ${h.xactsPerSecond.toFixed(0)} | ${pct(h.cacheHitRatio)} | ${h.waitingBackends} | ${pct(h.connectionsUsed)} | ${pct(h.hostCpuBusy)} | ${pct(h.hostMemoryUsed)} | ${h.capacity.toFixed(2)} |`);
    }
    out.push('');
  }
  if (r.loads.length) {
    out.push('## Loads', '', '| job | table | status | rows | path | seconds |', '| ---: | --- | --- | ---: | --- | ---: |');
    for (const l of r.loads) out.push(`| ${l.jobId} | ${cell(l.table)} | ${l.status} | ${l.rows ?? '-'} | ${l.path ?? '-'}${l.reason ? ` (${cell(l.reason)})` : ''} | ${l.seconds?.toFixed(2) ?? '-'} |`);
    out.push('');
  }
  if (r.actions.length) {
    out.push('## Actions', '');
    for (const a of r.actions) out.push(`- ${a.takenAt} **${a.kind}** ${cell(a.detail)}${a.undo ? ` (undo: \`${a.undo.split('\n').filter((x) => !x.startsWith('--')).join(' ')}\`)` : ''}`);
    out.push('');
  }
  if (r.recommendations.length) {
    out.push('## Recommendations', '');
    for (const rec of r.recommendations) out.push(`- ${rec.detail}`, ...(rec.sql ? ['', '  ```sql', `  ${rec.sql}`, '  ```'] : []));
  }
  return `${out.join('\n').trimEnd()}\n`;
}
