// The `inrun` command line: report, query, curate, compare and merge over stored runs, TracIn jobs and workers, with exit codes per error.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { InrunError, type InrunErrorCode, STORE_TABLES, STORE_VIEWS, type StoreTable, type StoreView, VERSION } from '@inrun/store';
import { compareRuns } from '../report/compare.js';
import { curate } from '../report/curate.js';
import { formatNumber } from '../report/html.js';
import { mergeStores, type OnConflict } from '../dataset/merge.js';
import { writeReport } from '../report/report.js';
import { openStore } from '../read/open-store.js';
import type { CliIo } from './io.js';
import { addJobCommands } from './job-commands.js';
import { type Format, writeRows } from './output.js';
import { progressBar } from './progress.js';

/**
 * Exit codes of `inrun`: 0 done; 1 an unexpected failure (a bug: please report it); 2 a bad command
 * line (unknown command or option, bad value, unknown run, column or target); 3 bad input (no store
 * at the path, not an inrun store, a failing query, a bad row file); 4 a store written by a newer inrun.
 */
export const EXIT_CODES = { ok: 0, failure: 1, usage: 2, input: 3, newer: 4 } as const;

// A damaged checkpoint or a model inrun cannot read is bad input, like a bad row file.
const exitOf: Partial<Record<InrunErrorCode, number>> = {
  invalid_option: EXIT_CODES.usage,
  invalid_input: EXIT_CODES.input,
  shape_mismatch: EXIT_CODES.input,
  bad_checkpoint: EXIT_CODES.input,
  unsupported_layer: EXIT_CODES.input,
  unsupported_model: EXIT_CODES.input,
  invalid_state: EXIT_CODES.newer,
};

/** Where the CLI writes; tests pass their own. */

/** `inrun query --help`'s list of tables and views, made from the store schema (packages/store/src/schema.ts). */
function tablesHelp(): string {
  const all = [...STORE_TABLES, ...STORE_VIEWS].filter((t) => t.only === undefined && !('optional' in t && t.optional === true));
  const shape = (t: StoreTable | StoreView) => `${t.name}(${t.columns.map((c) => c.name).join(', ')}${'moreColumns' in t && t.moreColumns !== undefined ? ', ...' : ''})`;
  // Views say what they answer; a table's columns say it already.
  const line = (t: StoreTable | StoreView) => `  ${shape(t)}${'rowPer' in t ? '' : `: ${t.description}`}`;
  const parquet = STORE_VIEWS.filter((v) => v.only === 'parquet').map((v) => `${v.name} (${v.description})`);
  const optional = STORE_TABLES.filter((t) => t.optional === true);
  return `
Tables and views (the same names for a SQLite file, a Parquet folder and a merged dataset; docs/schema.md):
${all.map(line).join('\n')}
Parquet folders also have ${parquet.join(', ')}.
SQLite files are read with SQLite's SQL (better-sqlite3), Parquet folders and merged datasets with DuckDB's.
${optional.map(shape).join(', ')} (untrac's rows) is there where they were written.

Example:
  inrun query runs/demo.sqlite "SELECT source, COUNT(*) AS n, SUM(value) AS value FROM example_scores WHERE run_id = (SELECT run_id FROM latest_run) AND column_name = 'shapley1:val' GROUP BY source ORDER BY value"`;
}

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
  return n;
};

/** Builds the program; actions write through `io`. */
export function program(io: CliIo): Command {
  const cli = new Command('inrun')
    .description('Read what inrun runs stored: an HTML report, SQL, a curation manifest, run-to-run stability; merge many runs into one dataset.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showSuggestionAfterError()
    .addHelpText('after', `\nExit codes: 0 done, 1 unexpected failure, 2 bad command line (option, run, column), 3 bad input (no store, not a store, failing query, bad row file), 4 store from a newer inrun.`);

  cli
    .command('report')
    .description('Write one self-contained HTML page of a run: sources, distributions, helpful and harmful examples, curation curves.')
    .argument('<store>', 'a SQLite file, a Parquet folder or a merged dataset written by inrun')
    .option('--run <id>', 'the run to report (default: the newest)')
    .option('--target <name>', 'the target whose columns lead the report (default: that of the first shapley1 column)')
    .option('--out <file>', 'the HTML file to write', 'report.html')
    .option('--top <n>', 'rows in each most-helpful / most-harmful table', positiveInt('--top'), 25)
    .action(async (store: string, o: { run?: string; target?: string; out: string; top: number }) => {
      const bar = progressBar();
      try {
        const r = await writeReport(store, { out: o.out, top: o.top, progress: bar.update, ...(o.run === undefined ? {} : { run: o.run }), ...(o.target === undefined ? {} : { target: o.target }) });
        bar.stop();
        io.out(`Wrote ${r.out} (${formatNumber(Math.round(r.bytes / 1024))} KiB) for run ${r.runId}.\n`);
      } finally {
        bar.stop();
      }
    });

  cli
    .command('query')
    .description('Run SQL over a store: SQLite files through better-sqlite3, Parquet folders through DuckDB.')
    .argument('<store>', 'a SQLite file, a Parquet folder or a merged dataset written by inrun')
    .argument('<sql>', 'the query')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
    .addHelpText('after', tablesHelp())
    .action(async (path: string, sql: string, o: { format: Format }) => {
      const store = await openStore(path);
      try {
        await writeRows(store.iterate(sql), o.format, io.out);
      } finally {
        await store.close();
      }
    });

  cli
    .command('curate')
    .description('Write the manifest of examples to drop, and print the predicted change of the target loss.')
    .argument('<store>', 'a SQLite file, a Parquet folder or a merged dataset written by inrun')
    .requiredOption('--drop <spec>', 'lowest:10% | lowest:N | label-lowest:5% | label-lowest:N | negative | self-top:5% | self-top:N | source:NAME')
    .requiredOption('--out <file>', 'the manifest: .csv or .jsonl')
    .option('--column <name>', 'the column that ranks examples (default: the first shapley1 column; self-top uses tracin_self)')
    .option('--run <id>', 'the run (default: the newest)')
    .addHelpText('after', '\nThe manifest lists example_id, source, label, column, score, rank, value (the first-order value) and value_per_target_row (value / the target rows: its share of the change of the mean loss).\nThe predicted change is the sum of the dropped first-order values: first order, from one run (it ignores\nhow the rest of training would change without them); retrain to confirm.')
    .action(async (store: string, o: { drop: string; out: string; column?: string; run?: string }) => {
      const r = await curate(store, { drop: o.drop, out: o.out, ...(o.column === undefined ? {} : { column: o.column }), ...(o.run === undefined ? {} : { run: o.run }) });
      io.out(`Wrote ${r.out}: ${r.dropped} of ${r.examples} examples of run ${r.runId} to drop (ranked by ${r.column}).\n`);
      io.out(
        r.predictedChange === null
          ? 'No first-order (shapley1) column: no predicted effect.\n'
          : `Predicted change of the target loss: ${formatNumber(r.predictedChange)} (sum of their ${r.valueColumn}, the loss summed over the target's ${r.targetRows ?? '?'} rows; negative = the loss would fall)${r.predictedChangePerRow === null ? '' : `, ${formatNumber(r.predictedChangePerRow)} per target row (the change of the mean loss)`}. First order, from one run: retrain to confirm.\n`,
      );
    });

  cli
    .command('compare')
    .description("Rank stability of two runs: Spearman's rho and top-k / bottom-k overlap per shared column.")
    .argument('<storeA>', 'a SQLite file or Parquet folder')
    .argument('<storeB>', 'another (or the same, with --run-b)')
    .option('--run-a <id>', 'the run of storeA (default: the newest)')
    .option('--run-b <id>', 'the run of storeB (default: the newest)')
    .option('-k <n>', 'size of the top and bottom sets', positiveInt('-k'), 100)
    .action(async (a: string, b: string, o: { runA?: string; runB?: string; k: number }) => {
      const r = await compareRuns(a, b, { k: o.k, ...(o.runA === undefined ? {} : { runA: o.runA }), ...(o.runB === undefined ? {} : { runB: o.runB }) });
      io.out(`Run A ${r.runA}, run B ${r.runB}: examples matched by id.\n`);
      const rows = r.columns.map((c) => ({ column: c.column, examples: c.examples, spearman: c.spearman, k: c.k, 'top-k overlap': c.topOverlap, 'bottom-k overlap': c.bottomOverlap }));
      await writeRows(rows, 'table', io.out);
    });
  cli
    .command('merge')
    .description('Merge many runs\' stores into one Hive-partitioned Parquet dataset (<out>/<table>/run=<id>/) that query, report and DuckDB read.')
    .argument('<stores...>', 'SQLite files, Parquet folders or merged datasets written by inrun')
    .requiredOption('--out <dir>', 'the dataset folder: new, empty, or a dataset an earlier merge wrote (its runs stay; the new ones are added)')
    .addOption(new Option('--on-conflict <what>', 'a run id already in the dataset or an earlier store: refuse the merge, keep the first, or take the last').choices(['error', 'skip', 'replace']).default('error'))
    .option('--rows-per-file <n>', 'rows per part file, the most held in memory at once (default 200000)', positiveInt('--rows-per-file'))
    .addHelpText('after', '\nAll or nothing: a failing merge leaves the dataset as it was. Read it with inrun query <out> "SQL" (the same tables as one store),\nor in DuckDB: SELECT * FROM read_parquet(\'<out>/scores/*/*.parquet\', hive_partitioning = true). docs/scale-out.md.')
    .action(async (stores: string[], o: { out: string; onConflict: OnConflict; rowsPerFile?: number }) => {
      const r = await mergeStores(stores, { out: o.out, onConflict: o.onConflict, ...(o.rowsPerFile === undefined ? {} : { rowsPerFile: o.rowsPerFile }) });
      const rows = r.runs.map((m) => ({ run: m.runId, store: m.store, ...m.rows, files: m.files, replaced: m.replaced ? 'yes' : '' }));
      if (rows.length > 0) await writeRows(rows, 'table', io.out);
      for (const s of r.skipped) io.out(`Skipped run ${s.runId} of ${s.store} (--on-conflict ${o.onConflict}).\n`);
      for (const u of r.unmatchedSourceInfluence) io.out(`Left out ${u.rows} source_influence rows of ${u.store}: their runs are not in that store.\n`);
      io.out(`Merged ${r.runs.length} run${r.runs.length === 1 ? '' : 's'} into ${r.out}.\n`);
    });

  addJobCommands(cli, io, positiveInt);
  return cli;
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit code; never throws. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    await program(io).parseAsync([...argv], { from: 'user' });
    return EXIT_CODES.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version end parsing with an "error" that is not one.
      if (e.exitCode === 0) return EXIT_CODES.ok;
      return EXIT_CODES.usage;
    }
    if (e instanceof InrunError) {
      io.err(`${e.message}\n`);
      return exitOf[e.code] ?? EXIT_CODES.failure;
    }
    io.err(`inrun: unexpected failure (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_CODES.failure;
  }
}
