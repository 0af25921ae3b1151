/**
 * The house rule (.dependency-cruiser.cjs): a src module imports only from its own pipeline stage
 * or a lower one, and there are no import cycles. Runs dependency-cruiser's CLI on the TypeScript
 * sources (type-only imports count) and fails listing every violation, one per line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  type: string;
  from: string;
  to: string;
  rule: { name: string };
  cycle?: { name: string }[];
}

interface Summary {
  violations: Violation[];
  totalCruised: number;
}

/** Cruises `src` under `cwd` with the repository's rules. */
function cruise(cwd: string): Summary {
  const r = spawnSync(process.execPath, [CLI, 'src', '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'json'],
    { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  // Exit status is the number of errors; only unparsable output means the cruise itself failed.
  let parsed: { summary: Summary };
  try {
    parsed = JSON.parse(r.stdout) as { summary: Summary };
  } catch {
    throw new Error(`dependency-cruiser did not run (status ${r.status}): ${r.stderr || r.stdout}`);
  }
  return parsed.summary;
}

function describeViolation(v: Violation): string {
  if (v.type === 'cycle' && v.cycle) return `${v.rule.name}: ${v.from} -> ${v.cycle.map((c) => c.name).join(' -> ')}`;
  return `${v.rule.name}: ${v.from} -> ${v.to}`;
}

describe('module dependencies', () => {
  it('src imports only from its own stage or lower, without cycles', () => {
    const summary = cruise(ROOT);
    // A resolver or include mistake would cruise nothing and pass: src has dozens of modules.
    assert.ok(summary.totalCruised > 50, `only ${summary.totalCruised} modules cruised`);
    const lines = summary.violations.map(describeViolation).sort();
    assert.deepEqual(lines, [], `${lines.length} dependency violation(s):\n  ${lines.join('\n  ')}`);
  });

  it('the rules catch an upward import, an upward type-only import, a cycle and a folder in no stage', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cal-depcruise-'));
    try {
      cpSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
      const files: Record<string, string> = {
        'src/store/a.ts': "import { b } from '../load/b.js';\nexport const a = b;\n",
        'src/load/b.ts': 'export const b = 1;\n',
        'src/connect/c.ts': "import type { D } from '../catalog/d.js';\nexport type C = D;\n",
        'src/catalog/d.ts': 'export type D = number;\n',
        'src/plan/e.ts': "import { f } from './f.js';\nexport const e = () => f;\n",
        'src/plan/f.ts': "import { e } from './e.js';\nexport const f = () => e;\n",
        'src/load/g.ts': "import { h } from '../newstage/h.js';\nexport const g = h;\n",
        'src/newstage/h.ts': 'export const h = 1;\n',
        'src/cli/i.ts': "import { a } from '../store/a.js';\nexport const i = a;\n",
        'src/index.ts': "export { i } from './cli/i.js';\n",
      };
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), text);
      }
      const found = cruise(dir).violations.map(describeViolation).sort();
      assert.deepEqual(found, [
        'base-imports-later-stage: src/connect/c.ts -> src/catalog/d.ts',
        'module-without-stage: src/load/g.ts -> src/newstage/h.ts',
        'no-circular: src/plan/e.ts -> src/plan/f.ts -> src/plan/e.ts',
        'store-imports-later-stage: src/store/a.ts -> src/load/b.ts',
      ]);
      // Not flagged: src/cli and src/index.ts import downward (and anything they like).
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
