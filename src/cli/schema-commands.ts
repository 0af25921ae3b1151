/**
 * Wiring of the schema forms of `plan` and `load`: `plan --schema NAME [SOURCES...]` and
 * `load --schema NAME SOURCES...`. They take a list of sources where the one-table commands take
 * one file and a table, so they get a program of their own, chosen when `--schema` is given.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { SchemaFlags } from './schema-handlers.js';

const schemaHandlers = () => import('./schema-handlers.js');

const integer = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n)) throw new InvalidArgumentError('It must be an integer.');
  return n;
};
const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * The command line for the schema program when it asks for a schema command (`plan` or `load`
 * with --schema; `load` is the default command, so options first mean `load`), else undefined.
 */
export function schemaArgv(argv: readonly string[]): string[] | undefined {
  const args = argv.slice(2);
  if (!args.some((a) => a === '--schema' || a.startsWith('--schema='))) return undefined;
  if (args[0] === 'plan' || args[0] === 'load') return [...argv];
  return args[0]?.startsWith('-') ? [...argv.slice(0, 2), 'load', ...args] : undefined;
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--schema <name>', 'the schema whose tables are planned (and loaded) together')
    .addOption(new Option('--format <format>', 'input format of every file').choices(['csv', 'text']).default('csv'))
    .option('--delimiter <char>', "field delimiter (default ',' for csv, tab for text)")
    .option('--quote <char>', 'CSV quote character (default ")')
    .option('--escape <char>', 'CSV escape character (default: the quote)')
    .option('--null <string>', "string that means NULL (default '' for csv, \\N for text)")
    .option('--encoding <name>', 'input encoding, as PostgreSQL names it (default UTF8)')
    .option('--header', 'line 1 of every file is a header (default: detected)')
    .option('--no-header', 'line 1 of every file is data')
    .option('--sample-rows <n>', 'rows to sample per file (default 20000)', integer)
    .option('--seed <n>', 'seed for the samples (default 1)', integer)
    .option('--coordinator <url>', 'coordinator: postgres:// URL or libpq keyword/value string (default: DATABASE_URL, then PG* variables)')
    .option('--node-map <name:port=host:port>', 'reach a node the cluster advertises as name:port at host:port (repeatable)', collect)
    .option('--config <file>', 'JSON file with coordinator and nodeMap')
    .option('--connect-timeout <s>', 'seconds to wait for a connection', Number)
    .option('--statement-timeout <s>', 'seconds one statement may take on any node (default 300)', Number)
    .option('--lock-timeout <s>', 'seconds to wait for a lock (default 60)', Number)
    .option('-q, --quiet', 'no notices')
    .option('--json', 'print one JSON object on stdout');
}

export function schemaProgram(): Command {
  const program = new Command().name('citus-adaptive-load').showHelpAfterError().exitOverride();
  common(program.command('plan')
    .description('plan a whole schema: colocation groups, reference tables, shard counts, heavy tenants, foreign keys, and the changes; changes nothing')
    .argument('[sources...]', 'files named after their tables, table=file pairs, or directories'))
    .action(async (sources: string[], flags: SchemaFlags) => (await schemaHandlers()).runSchemaPlan(sources, flags));
  common(program.command('load')
    .description('lay a whole schema out by its plan, in dependency order, and load every source straight into its shards')
    .argument('[sources...]', 'files named after their tables, table=file pairs, or directories; tables holding rows are sources too')
    .option('--commit-every <n>', "commit each table's load in chunks of n rows (500000) or bytes (256MB); a re-run resumes an interrupted table"))
    .action(async (sources: string[], flags: SchemaFlags) => (await schemaHandlers()).runSchemaLoad(sources, flags));
  return program;
}
