/**
 * The house rule of issue 12, checked by test/architecture/dependencies.test.ts:
 * src is one pipeline, and a module may import only from its own stage or a lower one. A later
 * stage may use an earlier one's results; an earlier stage never reaches forward, so each stage
 * can be read (and tested) knowing only what comes before it. And no import cycles, at all.
 *
 * Type-only imports count: a type an earlier stage needs belongs in that stage (or lower), or
 * the reader of the earlier stage still has to open the later one to understand it.
 *
 * src/index.ts (the public surface) and src/cli (the top) may import anything. Tests, scripts
 * and bench are outside the rule: they drive the pipeline from outside.
 */

// Lowest first. Each entry is the path regex of the stage's modules (relative to the repo root).
const STAGES = [
  ['base', '^src/(connect/|errors\\.ts$|trace\\.ts$|json-schema\\.ts$)'],
  ['catalog', '^src/catalog/'],
  ['input', '^src/input/'],
  ['routing', '^src/routing/'],
  ['plan', '^src/plan/'],
  ['store', '^src/store/'],
  ['load', '^src/load/'],
  ['workload', '^src/workload/'],
  ['rebalance', '^src/rebalance/'],
  ['pipeline', '^src/pipeline/'],
  ['monitor', '^src/monitor/'],
  ['report', '^src/report/'],
  ['cli', '^src/cli/'],
];

const TOP = ['^src/index\\.ts$'];

// One rule per stage: from that stage to any later one. The rule's name names both ends so a
// violation reads as "store-imports-later-stage: src/store/x.ts -> src/load/y.ts".
const stageRules = STAGES.slice(0, -1).map(([name, path], i) => ({
  name: `${name}-imports-later-stage`,
  severity: 'error',
  comment: `A ${name} module imports from a later stage (${STAGES.slice(i + 1).map(([n]) => n).join(', ')}). `
    + 'Move what it needs down to this stage or lower.',
  from: { path },
  to: { path: STAGES.slice(i + 1).map(([, p]) => `(${p})`).join('|').concat(TOP.map((p) => `|(${p})`).join('')) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: the modules cannot be read (or loaded) one before the other.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...stageRules,
    {
      // A new folder under src must be given its place in STAGES before it can be imported
      // from anywhere, or the rule would silently not apply to it.
      name: 'module-without-stage',
      severity: 'error',
      comment: 'A src module in no stage: add its folder to STAGES in .dependency-cruiser.cjs.',
      from: { path: '^src/' },
      to: {
        path: '^src/',
        pathNot: [...STAGES.map(([, p]) => p), ...TOP],
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Only src is under the rule (tests, scripts and bench drive it from outside).
    includeOnly: '^src/',
    // Parse the TypeScript source, not its JavaScript: type-only imports count too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
  },
};
