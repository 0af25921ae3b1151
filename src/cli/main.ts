#!/usr/bin/env node
/** Command-line wiring only: every command calls a handler, every handler calls the library. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { CommonFlags, LoadFlags } from './handlers.js';
import type { AnalyzeFlags, PlanFlags } from './plan-handlers.js';
import type { DaemonFlags, MonitorFlags, RebalanceFlags, TuneFlags } from './monitor-handlers.js';
import type { ReportFlags } from './report-handler.js';
import { reportFailure } from './format-error.js';
import { schemaArgv, schemaProgram } from './schema-commands.js';
import { DEFAULT_REBALANCE_THRESHOLD, DEFAULT_RETAIN_DAYS, DEFAULT_SCHEDULE } from '../rebalance/policy.js';

// Handlers load on demand: `--help` and every command pay only for what they use.
const handlers = () => import('./handlers.js');
const planHandlers = () => import('./plan-handlers.js');
const monitorHandlers = () => import('./monitor-handlers.js');

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Numeric options are checked as commander parses them, so a bad one is a usage error (exit 2). */
const integer = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n)) throw new InvalidArgumentError('It must be an integer.');
  return n;
};
const number = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('It must be a number.');
  return n;
};

/**
 * A busiest/mean node load ratio: at least 1 by definition, so a threshold below 1 (or NaN, which
 * no load ever passes) cannot mean what was intended.
 */
const ratio = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 1) {
    throw new InvalidArgumentError(`It must be a number of at least 1 (the busiest node's load over the mean node's, e.g. ${DEFAULT_REBALANCE_THRESHOLD}).`);
  }
  return n;
};

/** Exit status 2: the command line is wrong (README: 0 loaded, 1 the load failed, 2 the command line is wrong). */
const USAGE_EXIT = 2;

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--coordinator <url>', 'coordinator: postgres:// URL or libpq keyword/value string (default: DATABASE_URL, then PGHOST/PGPORT/PGUSER/PGDATABASE)')
    .option('--node-map <name:port=host:port>', 'reach a node the cluster advertises as name:port at host:port (repeatable)', collect)
    .option('--config <file>', 'JSON file with coordinator and nodeMap')
    .option('--connect-timeout <s>', 'seconds to wait for a connection (default: connect_timeout, PGCONNECT_TIMEOUT, else 10)', Number)
    .option('--statement-timeout <s>', 'seconds one statement (a COPY batch, PREPARE, a read) may take on any node (default 300)', Number)
    .option('--lock-timeout <s>', "seconds to wait for a lock: Citus's shard locks, another load into a unique-keyed table (default 60)", Number)
    .option('--json', 'print one JSON object on stdout');
}

const program = new Command()
  .name('citus-adaptive-load')
  .description('Load files into Citus: route every row to its shard and COPY straight into the workers, atomically.')
  .version('0.1.0')
  .showHelpAfterError()
  // Commander exits 1 on its own usage errors; throw instead (subcommands inherit this, so it
  // comes before them) and exit 2 below.
  .exitOverride();

/** COPY's format options, and the header: the same for every command that reads an input file. */
function formatOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--format <format>', 'input format').choices(['csv', 'text']).default('csv'))
    .option('--delimiter <char>', "field delimiter (default ',' for csv, tab for text)")
    .option('--quote <char>', 'CSV quote character (default ")')
    .option('--escape <char>', 'CSV escape character (default: the quote)')
    .option('--null <string>', "string that means NULL (default '' for csv, \\N for text)")
    .option('--header', 'the first line is a header (default: detected)')
    .option('--no-header', 'the first line is data');
}

function sampleOptions(cmd: Command): Command {
  return cmd
    .option('--sample-rows <n>', 'rows to sample (default 20000: every quantile and share within ±1% at 95% confidence)', integer)
    .option('--seed <n>', 'seed for the sample (default 1)', integer);
}

connectionOptions(sampleOptions(formatOptions(program.command('load', { isDefault: true })
  .description('load a file (or a staging table, --from-table) into a table (the default command)')
  .argument('[file]', 'input file, - for stdin; .gz is decompressed (none with --from-table)')
  .requiredOption('-t, --table <table>', 'target table (schema-qualified or on search_path)')))
  .option('--encoding <name>', 'input encoding, as PostgreSQL names it (default UTF8)')
  .option('--columns <list>', 'comma-separated table columns the fields hold, in order')
  .option('--distribution-column <column>', 'distribute a missing or local table by this column (default: the profile chooses)')
  .option('--shard-count <n>', 'shard count when distributing (default: the profile chooses)', integer)
  .option('--profile <file>', 'use this sharding profile instead of planning one')
  .option('--save-profile <file>', 'write the planned sharding profile to this file')
  .option('--keep-keys', 'choose only among columns every primary/unique key includes, instead of widening keys')
  .option('--recheck-layout', 'compare an existing layout with a fresh profile even if one from the last day is stored')
  .option('--expected-rows <n>', 'plan for the rows the table will hold, not the file\'s (default: the file\'s)', integer)
  .option('--isolate-tenants', 'existing distributed table: isolate the input\'s heavy tenants (and move them) before loading, instead of only advising')
  .option('--max-errors <n>', 'reject up to n bad rows and load the rest (default 0)', integer)
  .option('--rejects <file>', 'write rejected rows with their reasons (JSON lines)')
  .option('--max-row-bytes <n>', 'fail on a row longer than n bytes, e.g. after an unclosed quote (default 67108864)', integer)
  .option('--connections-per-node <n>', 'COPY connections per worker (default 4)', integer)
  .option('--batch-size <bytes>', 'bytes per COPY batch (default 1048576, less with very many shards)', integer)
  .option('--via-coordinator', "load through Citus's coordinator COPY instead of straight into the shards")
  .option('--from-table <table>', 'load the rows of this table (a staging table, local or Citus) instead of a file')
  .addOption(new Option('--then <action>', 'with --from-table: what becomes of it with the load\'s commit (default keep)').choices(['keep', 'truncate', 'drop']))
  .option('--commit-every <n>', 'commit in chunks of n rows (500000) or bytes (256MB), each its own distributed transaction; resumable')
  .option('--resume [job]', 'continue an interrupted --commit-every load after its last committed chunk (default: the newest of this table and file)')
  .option('--restart', 'load the source from its start although an unfinished --commit-every job of it committed chunks (they would be loaded twice)')
  .option('-q, --quiet', 'no progress bar and no notices'))
  .action(async (file: string | undefined, flags: LoadFlags) => (await handlers()).runLoad(file, flags));

sampleOptions(formatOptions(program.command('analyze')
  .description('describe every column of a file from a sample (no database needed)')
  .argument('<file>', 'input file, - for stdin; .gz is decompressed')))
  .option('--json', 'print one JSON object on stdout')
  .action(async (file: string, flags: AnalyzeFlags) => (await planHandlers()).runAnalyze(file, flags));

sampleOptions(formatOptions(program.command('plan')
  .description('plan the sharding profile for loading a file into a table; reads the cluster, changes nothing')
  .argument('<file>', 'input file')
  .requiredOption('-t, --table <table>', 'target table')
  .option('--coordinator <url>', 'coordinator URL (default: DATABASE_URL, then PG* variables)')
  .option('--config <file>', 'JSON file with coordinator and nodeMap')
  .option('--distribution-column <column>', 'force the distribution column')
  .option('--shard-count <n>', 'force the shard count', integer)
  .option('--keep-keys', 'choose only among columns every primary/unique key includes')
  .option('--expected-rows <n>', 'plan for the rows the table will hold, not the file\'s', integer)
  .option('--save-profile <file>', 'write the profile to this file')
  .option('--json', 'print one JSON object on stdout')))
  .action(async (file: string, flags: PlanFlags) => (await planHandlers()).runPlan(file, flags));

connectionOptions(program.command('monitor')
  .description('compare predicted with actual load per node and shard since the last snapshot, update the model')
  .option('--once', 'one cycle (the only mode; the daemon runs it on a schedule)')
  .option('--rebalance', 'move shards when the predicted busiest/mean node load passes the threshold')
  .option('--threshold <ratio>', `busiest/mean node load that triggers a rebalance (default ${DEFAULT_REBALANCE_THRESHOLD})`, ratio)
  .option('--retain <duration>', `prune monitoring history older than this (e.g. 30d, 12h, off; default ${DEFAULT_RETAIN_DAYS}d)`))
  .action(async (flags: MonitorFlags) => (await monitorHandlers()).runMonitor(flags));

connectionOptions(program.command('daemon')
  .description('run the monitor on a cron schedule and run requests from SQL (one acting daemon at a time; SIGTERM stops it promptly)')
  .option('--schedule <cron>', `cron expression (default "${DEFAULT_SCHEDULE}")`)
  .option('--rebalance', 'act when imbalance passes the threshold')
  .option('--threshold <ratio>', `busiest/mean node load that triggers a rebalance (default ${DEFAULT_REBALANCE_THRESHOLD})`, ratio)
  .option('--allow-dir <dir>', 'directory whose files SQL requests may load (repeatable; default none: file requests are refused)', collect)
  .option('--request-timeout <seconds>', 'time limit of one SQL request (default 21600)', number)
  .option('--tick-timeout <seconds>', 'time limit of one monitor tick (default: the schedule interval, at most 600)', number)
  .option('--retain <duration>', `prune monitoring history older than this after each tick (e.g. 30d, 12h, off; default ${DEFAULT_RETAIN_DAYS}d)`))
  .action(async (flags: DaemonFlags) => (await monitorHandlers()).runDaemon(flags));

connectionOptions(program.command('rebalance')
  .description("move shards by the model's predicted load, with Citus's rebalancer and the adaptive_load strategy")
  .option('--dry-run', 'print the plan, move nothing')
  .option('--table <table>', "only this table's colocation group"))
  .action(async (flags: RebalanceFlags) => (await monitorHandlers()).runRebalance(flags));

connectionOptions(program.command('tune')
  .description('size worker settings (max_parallel_workers_per_gather, work_mem) from node capacity and predicted load')
  .option('--apply', 'ALTER SYSTEM and reload on the workers (each change recorded with its undo); changes nothing when a worker does not answer')
  .option('--skip-unreachable', 'with --apply: change the workers that answer, each recorded separately'))
  .action(async (flags: TuneFlags) => (await monitorHandlers()).runTune(flags));

program.command('report')
  .description('per table: layout, size and load per node, hot shards, predicted vs actual load, loads, actions, recommendations')
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'html', 'markdown']).default('text'))
  .option('--out <file>', 'write to this file instead of stdout')
  .option('--table <table>', 'only this table')
  .option('--coordinator <url>', 'coordinator URL (default: DATABASE_URL, then PG* variables)')
  .option('--config <file>', 'JSON file with coordinator and nodeMap')
  .action(async (flags: ReportFlags) => (await import('./report-handler.js')).runReport(flags));

connectionOptions(program.command('migrate')
  .description('create or upgrade the adaptive_load metadata schema on the coordinator'))
  .action(async (flags: CommonFlags) => (await handlers()).runMigrate(flags));

connectionOptions(program.command('recover')
  .description('finish or roll back what an interrupted load left prepared on the nodes'))
  .action(async (flags: CommonFlags) => (await handlers()).runRecover(flags));

// `plan --schema` / `load --schema` take many sources: their own program (schema-commands.ts).
const schemaArgs = schemaArgv(process.argv);
(schemaArgs ? schemaProgram() : program).parseAsync(schemaArgs ?? process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Commander has printed the message (or the help, or the version: exit code 0).
    if (err.exitCode !== 0 && process.argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify({ ok: false, error: { kind: 'UsageError', message: err.message.replace(/^error: /, '') } })}\n`);
    }
    process.exitCode = err.exitCode === 0 ? 0 : USAGE_EXIT;
    return;
  }
  // What no handler caught (a handler that failed to load...) is reported the same way as what they do.
  reportFailure(process.argv.includes('--json'), err);
});
