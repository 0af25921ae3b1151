#!/usr/bin/env node
/** Command-line wiring only: every command calls a handler, every handler calls the library. */
import { Command, Option } from 'commander';
import { runLoad, runMigrate, runRecover, type CommonFlags, type LoadFlags } from './handlers.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--coordinator <url>', 'coordinator URL (default: DATABASE_URL, then PGHOST/PGPORT/PGUSER/PGDATABASE)')
    .option('--node-map <name:port=host:port>', 'reach a node the cluster advertises as name:port at host:port (repeatable)', collect)
    .option('--config <file>', 'JSON file with coordinator and nodeMap')
    .option('--json', 'print one JSON object on stdout');
}

const program = new Command()
  .name('citus-adaptive-load')
  .description('Load files into Citus: route every row to its shard and COPY straight into the workers, atomically.')
  .version('0.1.0')
  .showHelpAfterError();

connectionOptions(program.command('load', { isDefault: true })
  .description('load a file into a table (the default command)')
  .argument('<file>', 'input file, - for stdin; .gz is decompressed')
  .requiredOption('-t, --table <table>', 'target table (schema-qualified or on search_path)')
  .addOption(new Option('--format <format>', 'input format').choices(['csv', 'text']).default('csv'))
  .option('--delimiter <char>', "field delimiter (default ',' for csv, tab for text)")
  .option('--quote <char>', 'CSV quote character (default ")')
  .option('--escape <char>', 'CSV escape character (default: the quote)')
  .option('--null <string>', "string that means NULL (default '' for csv, \\N for text)")
  .option('--encoding <name>', 'input encoding, as PostgreSQL names it (default UTF8)')
  .option('--header', 'the first line is a header (default: detected by comparing it with the table columns)')
  .option('--no-header', 'the first line is data')
  .option('--columns <list>', 'comma-separated table columns the fields hold, in order')
  .option('--distribution-column <column>', 'distribute a local table by this column before loading')
  .option('--shard-count <n>', 'shard count when distributing', Number)
  .option('--max-errors <n>', 'reject up to n bad rows and load the rest (default 0)', Number)
  .option('--rejects <file>', 'write rejected rows with their reasons (JSON lines)')
  .option('--connections-per-node <n>', 'COPY connections per worker (default 4)', Number)
  .option('--batch-size <bytes>', 'bytes per COPY batch (default 1048576, less with very many shards)', Number)
  .option('--via-coordinator', "load through Citus's coordinator COPY instead of straight into the shards")
  .option('-q, --quiet', 'no progress bar and no notices'))
  .action((file: string, flags: LoadFlags) => runLoad(file, flags));

connectionOptions(program.command('migrate')
  .description('create or upgrade the adaptive_load metadata schema on the coordinator'))
  .action((flags: CommonFlags) => runMigrate(flags));

connectionOptions(program.command('recover')
  .description('finish or roll back what an interrupted load left prepared on the nodes'))
  .action((flags: CommonFlags) => runRecover(flags));

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`citus-adaptive-load: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
