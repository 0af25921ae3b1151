import { writeFileSync } from 'node:fs';
import { InvalidConfigurationError } from '../errors.js';
import { migrate } from '../store/migrate.js';
import { collectReport } from '../report/report-data.js';
import { renderHtml } from '../report/render-html.js';
import { renderMarkdown } from '../report/render-markdown.js';
import { renderText } from '../report/render-text.js';
import { fail, withCoordinator, type CommonFlags } from './handlers.js';

export interface ReportFlags extends CommonFlags {
  format: 'text' | 'json' | 'html' | 'markdown';
  out?: string;
  table?: string;
}

export async function runReport(flags: ReportFlags): Promise<void> {
  try {
    const data = await withCoordinator(flags, async (db) => {
      await migrate(db);
      return collectReport(db, flags.table);
    });
    const render = { text: renderText, markdown: renderMarkdown, html: renderHtml, json: (d: typeof data) => `${JSON.stringify(d, null, 2)}\n` }[flags.format];
    if (!render) throw new InvalidConfigurationError(`--format must be text, json, html or markdown, not ${flags.format}`);
    const body = render(data);
    if (flags.out) writeFileSync(flags.out, body);
    else process.stdout.write(body);
  } catch (err) {
    fail(flags, err);
  }
}
