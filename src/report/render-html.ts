import type { ReportData, TableReport } from './report-data.js';
import { bytes, fit, pct, skew, times } from './format.js';
import { pointsOf, summaryHeadline } from './summary-lines.js';
import { HOT_FACTOR } from '../rebalance/policy.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Width of a label in the charts' 12-13px sans-serif, from above (digits and most letters are
 * narrower): the charts size their viewBox by it so no label is cut at the edge.
 */
const labelWidth = (s: string) => s.length * 8;

/** Horizontal bars per node: size (bytes) and predicted load share. */
export function nodeBars(t: TableReport): string {
  const rowH = 26;
  const h = t.nodes.length * rowH * 2 + 30;
  const labels = t.nodes.flatMap((n) => [bytes(n.bytes), `${pct(n.predictedLoad)} predicted load`]);
  const W = Math.max(640, 186 + 360 + Math.max(...labels.map(labelWidth), 0) + 10);
  const maxBytes = Math.max(1, ...t.nodes.map((n) => n.bytes ?? 0));
  const bars = t.nodes.map((n, i) => {
    const y = 20 + i * rowH * 2;
    const wSize = Math.round(((n.bytes ?? 0) / maxBytes) * 360);
    const wLoad = Math.round((n.predictedLoad ?? 0) * 360);
    return `<text x="0" y="${y + 14}" class="l">${esc(fit(n.node, 21))}<title>${esc(n.node)}</title></text>
<rect x="180" y="${y}" width="${wSize}" height="18" fill="#4e79a7"><title>${esc(bytes(n.bytes))}</title></rect>
<text x="${186 + wSize}" y="${y + 14}" class="v">${esc(bytes(n.bytes))}</text>
<rect x="180" y="${y + rowH - 4}" width="${wLoad}" height="18" fill="#f28e2b"><title>${pct(n.predictedLoad)}</title></rect>
<text x="${186 + wLoad}" y="${y + rowH + 10}" class="v">${pct(n.predictedLoad)} predicted load</text>`;
  }).join('\n');
  return `<svg viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="size and predicted load per node">${bars}
<text x="180" y="12" class="v"><tspan fill="#4e79a7">■</tspan> size <tspan fill="#f28e2b">■</tspan> predicted share of load</text></svg>`;
}

/** The windows a node did not answer in: not drawn, not scored, said here. */
function incompleteWindows(r: Pick<ReportData, 'windows'>): string {
  const missing = r.windows.filter((w) => !w.complete);
  if (missing.length === 0) return '';
  return `<p>Incomplete windows (a node did not answer; nothing measured, learned or moved): ${missing
    .map((w) => `${esc(w.to.slice(0, 19))} (${esc(w.unreachable.join(', ') || 'a node')})`).join(', ')}</p>`;
}

/** Predicted and actual load share of each node over the recorded windows. */
export function overTime(r: Pick<ReportData, 'windows'>): string {
  // An incomplete window has no actual shares: it is listed below the chart, not drawn.
  const windows = r.windows.filter((w) => w.complete && w.nodes.length);
  if (windows.length === 0) return '<p>No monitoring windows yet: run <code>citus-adaptive-load monitor --once</code> or the daemon.</p>';
  const nodes = [...new Set(windows.flatMap((w) => w.nodes.map((n) => n.node)))];
  // The legend sits right of the plot; the viewBox grows to hold the longest node name.
  const W = Math.max(820, 630 + Math.max(...nodes.map((n) => labelWidth(`■ ${n}`))) + 10);
  const H = 240;
  const x = (i: number) => 40 + (windows.length === 1 ? 280 : (i / (windows.length - 1)) * 580);
  const y = (v: number) => 210 - v * 190;
  const colors = ['#4e79a7', '#e15759', '#59a14f', '#b07aa1', '#76b7b2'];
  const lines = nodes.map((node, k) => {
    const color = colors[k % colors.length]!;
    const pts = (pick: (n: { predictedShare: number | null; actualShare: number }) => number | null) => windows
      .map((w, i) => { const n = w.nodes.find((m) => m.node === node); const v = n ? pick(n) : null; return v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`; })
      .filter((p): p is string => p !== null).join(' ');
    return `<polyline points="${pts((n) => n.actualShare)}" fill="none" stroke="${color}" stroke-width="2.5"/>
<polyline points="${pts((n) => n.predictedShare)}" fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="6 4"/>
<text x="630" y="${30 + k * 18}" class="k" style="fill:${color}">■ ${esc(node)}</text>`;
  }).join('\n');
  const axis = [0, 0.25, 0.5, 0.75, 1].map((v) => `<line x1="40" x2="620" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="4" y="${y(v) + 4}" class="v">${v * 100}%</text>`).join('');
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="predicted and actual load share per node over time">${axis}${lines}
<line x1="40" x2="70" y1="231" y2="231" stroke="#555" stroke-width="2.5"/><text x="76" y="235" class="v">actual share</text>
<line x1="180" x2="210" y1="231" y2="231" stroke="#555" stroke-width="2" stroke-dasharray="6 4"/><text x="216" y="235" class="v">predicted share (${windows.length} window${windows.length === 1 ? '' : 's'})</text></svg>`;
}

/** The page's stylesheet (exported so a test can render a chart alone exactly as the report does). */
export const STYLE = `body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222;background:#fff}
h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
code,pre{background:#f4f4f4;padding:2px 4px}pre{padding:8px;white-space:pre-wrap}
svg{max-width:100%;height:auto}
.l{font-size:13px;fill:#222}.v{font-size:12px;fill:#555}.k{font-size:12px}.ok{color:#2a7d2a}.warn{color:#b03a2e}
`;

/** One self-contained page: inline CSS and SVG, nothing fetched from the network. */
export function renderHtml(r: ReportData): string {
  const tables = r.tables.map((t) => `<section><h2>${esc(t.table)}</h2>
<p>${esc(t.kind)}${t.distributionColumn ? ` by <code>${esc(t.distributionColumn)}</code>` : ''}, ${t.shardCount} shards${t.colocatedWith.length ? `, colocated with ${t.colocatedWith.map((c) => `<code>${esc(c)}</code>`).join(', ')}` : ''}.
Size skew (busiest/mean node): <b class="${t.sizeSkew > HOT_FACTOR ? 'warn' : 'ok'}">${esc(skew(t))}</b>.</p>
${t.unreachableNodes.map((n) => `<p class="warn">Warning: ${esc(n)} is unreachable; its size and load are unknown.</p>`).join('\n')}
${nodeBars(t)}
${t.hotShards.length ? `<p>Hot shards: ${t.hotShards.map((h) => `${esc(h.shardId)} (${pct(h.predictedShare)} on ${esc(h.node)})`).join(', ')}</p>` : ''}
${t.isolatedTenants.length ? `<p>Isolated tenants: ${t.isolatedTenants.map(esc).join(', ')}</p>` : ''}</section>`).join('\n');
  const loads = r.loads.map((l) => `<tr><td>${l.jobId}</td><td>${esc(l.table)}</td><td class="${l.status === 'committed' ? 'ok' : 'warn'}">${esc(l.status)}</td><td>${l.rows ?? '-'}</td><td>${esc(l.path ?? '-')}${l.reason ? ` <small>(${esc(l.reason)})</small>` : ''}</td><td>${l.seconds?.toFixed(2) ?? '-'}</td></tr>`).join('');
  const health = r.nodeHealth.map((h) => `<tr><td>${esc(h.node)}</td><td>${h.busySeconds.toFixed(1)}</td><td>${h.xactsPerSecond.toFixed(0)}</td><td>${pct(h.cacheHitRatio)}</td><td>${h.waitingBackends}</td><td>${pct(h.connectionsUsed)}</td><td class="${(h.hostCpuBusy ?? 0) > 0.85 ? 'warn' : 'ok'}">${pct(h.hostCpuBusy)}</td><td>${pct(h.hostMemoryUsed)}</td><td>${h.capacity.toFixed(2)}</td></tr>`).join('');
  const s = r.summary;
  const summary = `<section><h2>Cluster summary</h2><p>${esc(summaryHeadline(s))}</p>
<p>Prediction error: <b class="${(s.wape ?? 0) > 0.15 ? 'warn' : 'ok'}">WAPE ${s.wape === null ? 'n/a' : s.wape.toFixed(3)}</b>${s.maxShareError === null ? '' : `, largest node share error ${pointsOf(s.maxShareError)}`}${s.mape === null ? '' : ` (MAPE ${s.mape.toFixed(3)})`};
busiest/mean node load <b>${times(s.busiestOverMean.actual)}</b> in the latest window, ${times(s.busiestOverMean.predicted)} predicted next.</p>
${s.nodes.length ? `<table><tr><th>node</th><th>shards</th><th>actual load</th><th>predicted load</th></tr>${s.nodes.map((n) => `<tr><td>${esc(n.node)}</td><td>${n.shards}</td><td>${pct(n.actualShare)}</td><td>${pct(n.predictedShare)}</td></tr>`).join('')}</table>` : ''}
${s.hottestShards.length ? `<p>Hottest shards:</p><ul>${s.hottestShards.map((h) => `<li>shard ${esc(h.shardId)} of <code>${esc(h.table)}</code> on ${esc(h.node)}: ${pct(h.predictedShare)} of predicted load${h.tenants.length ? `; tenants ${h.tenants.map((t) => `<code>${esc(t)}</code>`).join(', ')}` : '; no tenant known'}</li>`).join('')}</ul>` : ''}
<p>${s.actionsTaken} action${s.actionsTaken === 1 ? '' : 's'} taken, ${s.pending} recommendation${s.pending === 1 ? '' : 's'} pending.</p></section>`;
  const actions = r.actions.map((a) => `<li>${esc(a.takenAt)} <b>${esc(a.kind)}</b> ${esc(a.detail)}</li>`).join('');
  const recs = r.recommendations.map((x) => `<li>${esc(x.detail)}${x.sql ? `<pre>${esc(x.sql)}</pre>` : ''}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>citus-adaptive-load report</title>
<style>
${STYLE}</style></head><body>
<h1>citus-adaptive-load report</h1><p>Generated ${esc(r.generatedAt)}.</p>
${summary}
${tables || '<p>No Citus tables.</p>'}
<section><h2>Predicted vs actual load</h2>${overTime(r)}
${r.windows.length ? `<p>Latest WAPE: ${r.windows[r.windows.length - 1]!.wape?.toFixed(3) ?? 'n/a'}, largest node share error: ${pct(r.windows[r.windows.length - 1]!.maxShareError)}, MAPE: ${r.windows[r.windows.length - 1]!.mape?.toFixed(3) ?? 'n/a'}</p>` : ''}
${incompleteWindows(r)}</section>
<section><h2>Nodes in the last window</h2>${health ? `<table><tr><th>node</th><th>busy s</th><th>xact/s</th><th>cache hits</th><th>waiting</th><th>connections</th><th>host CPU</th><th>host memory</th><th>capacity</th></tr>${health}</table>` : '<p>No monitoring windows yet.</p>'}</section>
<section><h2>Loads</h2>${loads ? `<table><tr><th>job</th><th>table</th><th>status</th><th>rows</th><th>path</th><th>seconds</th></tr>${loads}</table>` : '<p>None yet.</p>'}</section>
<section><h2>Actions</h2>${actions ? `<ul>${actions}</ul>` : '<p>None yet.</p>'}</section>
<section><h2>Recommendations</h2>${recs ? `<ul>${recs}</ul>` : '<p>Nothing to recommend.</p>'}</section>
</body></html>
`;
}
