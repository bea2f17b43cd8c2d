// The scale-out bench: TracIn in process and on 1, 2 and 4 `inrun worker` processes over BullMQ, the queue's overhead, a 100M-row estimate.
//
// TracIn over JSON-lines rows in this process and on worker processes through a throwaway Redis; the
// queue's own overhead per job; JSONL read rates and output sizes; CPU accounting against other load;
// and, computed from those numbers, an estimate for 100M training rows on N machines. Writes a section
// of docs/benchmarks.md. `--size small` is a smoke run (under a minute); full takes about 10 minutes.
//
//   npx tsx bench/scaleout.ts [--size full|small] [--lock-ms 30000] [--out docs/benchmarks.md]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Queue, type Job } from 'bullmq';
import { attach } from 'inrun';
import { distributedTracin, type DistributedTracInResult } from '@inrun/jobs';
import { tabularData, tabularMlp } from '../examples/tabular.js';
import { machine, median, writeSection } from './report.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: 'full' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
    // BullMQ's default: shard jobs yield to timers every batch, so workers renew their locks while they compute.
    'lock-ms': { type: 'string', default: '30000' },
  },
});
if (!['full', 'small'].includes(args.size)) throw new Error(`--size is full or small, got ${args.size}`);
/** Training rows, queries, shards per run, worker counts; the tiny run that isolates the queue's overhead; rounds of it. */
const SIZE = {
  full: { train: 100_000, queries: 100, shards: 16, workers: [1, 2, 4], tinyRows: 64, tinyShards: 16, rounds: 3 },
  small: { train: 4_000, queries: 20, shards: 4, workers: [1, 2, 4], tinyRows: 16, tinyShards: 8, rounds: 1 },
}[args.size as 'full' | 'small'];
const CHECKPOINTS = 3;
const K = 10;
const CLI = join(import.meta.dirname, '..', 'packages', 'cli', 'src', 'cli', 'inrun.ts');
// The estimate's machines: cores each, the rows to score, and the most rows one shard holds in memory.
const ESTIMATE = { rows: 100_000_000, coresPerMachine: 8, machines: [1, 10, 100], maxShardRows: 1_000_000, shardsPerWorker: 4 };

if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
  console.warn('bench/scaleout.ts: no redis-server binary (apt-get install -y redis-server): skipped, docs/benchmarks.md unchanged.');
  process.exit(0);
}
// The workers run on tf.js' default Node backend (cpu: no tfjs-node here); the in-process runs use the same.
await tf.setBackend('cpu');
const dir = mkdtempSync(join(tmpdir(), 'inrun-scaleout-bench-'));
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' / ');
const loadAtStart = load();

// ---- Setup: the tabular MLP trained 3 epochs with a checkpoint after each; rows and queries as JSON lines.
const checkpoints = join(dir, 'ckpt');
{
  const fitRows = 4096;
  const data = tabularData({ rows: fitRows, seed: 1 });
  const model = tabularMlp();
  const run = attach(model, { checkpoints: { dir: checkpoints, everyEpochs: 1 }, seed: 1 });
  await run.fit(data.xs, data.ys, { ids: Array.from({ length: fitRows }, (_, i) => i), epochs: CHECKPOINTS, batchSize: 64, verbose: 0 });
  await run.close();
  tf.dispose([data.xs, data.ys]);
  model.dispose();
}

/** `rows` seeded rows of the tabular data (its own rule labels them) as JSON lines, 4 decimals per feature. */
function writeRows(path: string, rows: number, seed: number, prefix: string): void {
  const data = tabularData({ rows, seed });
  const xs = data.xs.dataSync();
  const features = data.xs.shape[1];
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const x = Array.from(xs.subarray(r * features, (r + 1) * features), (v) => Math.round(v * 1e4) / 1e4);
    lines.push(JSON.stringify({ id: `${prefix}${r}`, xs: x, ys: data.labels[r] ? [0, 1] : [1, 0] }));
  }
  writeFileSync(path, lines.join('\n') + '\n');
  tf.dispose([data.xs, data.ys]);
}
const files = { warm: join(dir, 'warm.jsonl'), train: join(dir, 'train.jsonl'), queries: join(dir, 'queries.jsonl'), tiny: join(dir, 'tiny.jsonl'), tinyQueries: join(dir, 'tiny-queries.jsonl') };
writeRows(files.warm, 1024, 6, 'w');
writeRows(files.train, SIZE.train, 7, 't');
writeRows(files.queries, SIZE.queries, 8, 'q');
writeRows(files.tiny, SIZE.tinyRows, 9, 's');
writeRows(files.tinyQueries, 2, 10, 'p');
console.log(`setup done: ${SIZE.train} rows, ${SIZE.queries} queries, ${CHECKPOINTS} checkpoints in ${dir}; load ${loadAtStart}`);

// ---- JSONL read rates: scanning lines (what a shard does before its range) and parsing them (its own rows).
async function readRates(path: string): Promise<{ scanLinesPerS: number; parseRowsPerS: number; bytesPerRow: number }> {
  let started = performance.now();
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })) if (line.trim() !== '') n++;
  const scan = (performance.now() - started) / 1000;
  const lines = readFileSync(path, 'utf8').split('\n');
  started = performance.now();
  let sink = 0;
  for (const line of lines) if (line !== '') sink += (JSON.parse(line) as { xs: number[] }).xs.length;
  const parse = (performance.now() - started) / 1000;
  if (sink === 0) throw new Error('no rows parsed');
  return { scanLinesPerS: n / scan, parseRowsPerS: n / parse, bytesPerRow: statSync(path).size / n };
}
const rates = await readRates(files.train);
console.log(`JSONL: scan ${Math.round(rates.scanLinesPerS)} lines/s, parse ${Math.round(rates.parseRowsPerS)} rows/s, ${rates.bytesPerRow.toFixed(0)} B/row`);

// ---- Redis and workers.
async function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts `command`, resolving once its stdout says `ready` (rejecting if it exits first). */
async function startProcess(command: string, argv: readonly string[], ready: string): Promise<ChildProcess> {
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${command} ${argv.join(' ')} exited with ${String(code)}`)));
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes(ready)) resolve();
    });
  });
  child.removeAllListeners('exit');
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const port = await freePort();
const redisUrl = `redis://127.0.0.1:${port}`;
const connection = { host: '127.0.0.1', port };
const redis = await startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], 'Ready to accept connections');

// ---- CPU accounting (Linux /proc; NaN elsewhere): the machine's busy seconds minus this bench's own
// processes' (this one, the workers, redis-server) = what other work took while a configuration ran.
const TICKS_PER_S = 100;
function machineBusySeconds(): number {
  try {
    const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq!) / TICKS_PER_S;
  } catch {
    return NaN;
  }
}
function processSeconds(pid: number | undefined): number {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${String(pid)}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return NaN;
  }
}
const childSeconds = (children: readonly ChildProcess[]): number => children.reduce((s, c) => s + processSeconds(c.pid), 0);
function selfSeconds(): number {
  const self = process.cpuUsage();
  return (self.user + self.system) / 1e6;
}

/** `n` `inrun worker` processes (concurrency 1) on `queue`, each ready (tf.js loaded, connected). */
async function startWorkers(n: number, queue: string): Promise<ChildProcess[]> {
  return Promise.all(Array.from({ length: n }, () => startProcess(process.execPath, ['--import', 'tsx', CLI, 'worker', '--redis', redisUrl, '--queue', queue, '--concurrency', '1', '--lock-ms', args['lock-ms']], 'inrun worker on')));
}

// ---- One configuration: wall time, the jobs' own timestamps (BullMQ's), output sizes.
interface JobTimes {
  readonly name: string;
  readonly enqueued: number;
  readonly started: number;
  readonly finished: number;
  /** Times a worker started it: more than 1 when a worker lost its lock (stalled) or it failed and was retried. */
  readonly starts: number;
}

interface Measured {
  readonly label: string;
  readonly workers: number;
  readonly shards: number;
  readonly seconds: number;
  readonly load: string;
  /** Cores other processes on the machine kept busy on average while this ran. */
  readonly otherCores: number;
  /** CPU seconds of this bench's processes while this ran: the bench process, and the workers. */
  readonly cpu: { readonly bench: number; readonly workers: number };
  readonly jobs: readonly JobTimes[];
  readonly result: DistributedTracInResult;
}

async function jobTimes(queueName: string): Promise<JobTimes[]> {
  const queue = new Queue(queueName, { connection });
  try {
    const jobs: Job[] = await queue.getJobs(['completed']);
    return jobs.map((j) => ({ name: j.name, enqueued: j.timestamp, started: j.processedOn ?? NaN, finished: j.finishedOn ?? NaN, starts: j.attemptsStarted })).sort((a, b) => a.started - b.started);
  } finally {
    await queue.close();
  }
}

let configs = 0;
async function measure(label: string, workers: number, shards: number, train: string, queries: string): Promise<Measured> {
  const name = `bench-${configs++}`;
  const procs = await startWorkers(workers, name);
  const out = join(dir, name);
  try {
    const before = { busy: machineBusySeconds(), bench: selfSeconds(), workers: childSeconds(procs), redis: childSeconds([redis]) };
    const started = performance.now();
    // As the CLI runs it: self-influence streamed to its file, never held here.
    const result = await distributedTracin({ checkpoints, train, queries, out, k: K, shards, keepSelfInfluence: false, ...(workers === 0 ? {} : { queue: { connection, queueName: name, timeoutMs: 1_800_000 } }) });
    const seconds = (performance.now() - started) / 1000;
    const cpu = { bench: selfSeconds() - before.bench, workers: childSeconds(procs) - before.workers };
    const otherCores = (machineBusySeconds() - before.busy - cpu.bench - cpu.workers - (childSeconds([redis]) - before.redis)) / seconds;
    const m = { label, workers, shards, seconds, load: load(), otherCores, cpu, jobs: workers === 0 ? [] : await jobTimes(name), result };
    console.log(`${label.padEnd(36)} ${seconds.toFixed(2)} s  load ${m.load}  other processes ${otherCores.toFixed(2)} cores`);
    return m;
  } finally {
    await Promise.all(procs.map(stop));
  }
}

/** Proponent and opponent ids of every query: the configurations must agree. */
const ranking = (r: DistributedTracInResult): string => JSON.stringify(r.result.queries.map((q) => [q.proponents.map((p) => p.id), q.opponents.map((p) => p.id)]));

const runs: Measured[] = [];
let overhead: { inProcess: number[]; queue: number[]; gaps: number[]; jobs: number } = { inProcess: [], queue: [], gaps: [], jobs: 0 };
try {
  // Warm-up, untimed: this process' first TracIn pass runs cold code (the workers' first jobs do too, inside their runs).
  await distributedTracin({ checkpoints, train: files.warm, queries: files.queries, out: join(dir, 'warm'), k: K });
  // The queue's own overhead: shards of a few rows each, so that the work is nothing; rounds alternate.
  for (let r = 0; r < SIZE.rounds; r++) {
    const local = await measure(`tiny: in process, ${SIZE.tinyShards} shards`, 0, SIZE.tinyShards, files.tiny, files.tinyQueries);
    const queued = await measure(`tiny: queue, 1 worker, ${SIZE.tinyShards} shards`, 1, SIZE.tinyShards, files.tiny, files.tinyQueries);
    const order = queued.jobs;
    overhead = {
      inProcess: [...overhead.inProcess, local.seconds],
      queue: [...overhead.queue, queued.seconds],
      // One worker runs the jobs one after another: the gap from one's end to the next's start is the hand-off.
      gaps: [...overhead.gaps, ...order.slice(1).map((j, i) => (j.started - order[i]!.finished) / 1000)],
      jobs: SIZE.tinyShards + 1,
    };
  }
  runs.push(await measure('in process, 1 shard', 0, 1, files.train, files.queries));
  for (const w of SIZE.workers) runs.push(await measure(`queue, ${w} worker${w > 1 ? 's' : ''}, ${SIZE.shards} shards`, w, SIZE.shards, files.train, files.queries));
  runs.push(await measure(`in process, ${SIZE.shards} shards`, 0, SIZE.shards, files.train, files.queries));
} finally {
  await stop(redis);
}

// ---- Derived numbers.
const base = runs[0]!;
const one = runs.find((r) => r.workers === 1)!;
const two = runs.find((r) => r.workers === 2)!;
const shardJobs = (m: Measured) => m.jobs.filter((j) => j.name === 'tracin-shard');
const mergeJob = (m: Measured) => m.jobs.find((j) => j.name === 'tracin-merge')!;
const jobSeconds = (m: Measured) => shardJobs(m).reduce((s, j) => s + (j.finished - j.started) / 1000, 0);
const pairs = SIZE.train * CHECKPOINTS * SIZE.queries;
const sameRanking = (m: Measured) => (ranking(m.result) === ranking(base.result) ? 'yes' : 'NO');
const bytes = (paths: readonly string[]) => paths.reduce((s, p) => s + statSync(p).size, 0);

const perJobOverhead = (median(overhead.queue) - median(overhead.inProcess)) / overhead.jobs;
const handOff = median(overhead.gaps);
// Per training row (every checkpoint, every query), in CPU seconds: what a core of its own would take,
// whatever else the machine ran. The worker's CPU splits between its shard jobs and the merge job by
// their BullMQ durations; the caller's CPU is reading the parts back for the result it returns.
const mergeSeconds = (mergeJob(one).finished - mergeJob(one).started) / 1000;
const perRow = (one.cpu.workers * jobSeconds(one)) / (jobSeconds(one) + mergeSeconds) / SIZE.train;
const mergePerRow = (one.cpu.workers * mergeSeconds) / (jobSeconds(one) + mergeSeconds) / SIZE.train;
const tailPerRow = one.cpu.bench / SIZE.train;
const selfBytesPerRow = statSync(one.result.selfInfluence).size / SIZE.train;
const partBytesPerRow = bytes(one.result.parts) / SIZE.train;
const queriesBytes = statSync(one.result.queries).size;

const fmt = (s: number): string => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
const si = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));

const table = [
  '| configuration | wall s | speedup vs in process, 1 shard | training rows/s | row x checkpoint x query / s | shard-job seconds summed | CPU seconds: bench process + workers | jobs started again (lost lock or retried) | same top-k as in process | cores this bench got (its CPU s / wall s) | cores other processes took | load avg, 1 min, after |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...runs.map(
    (m) =>
      `| ${m.label} | ${m.seconds.toFixed(1)} | ${(base.seconds / m.seconds).toFixed(2)}x | ${Math.round(SIZE.train / m.seconds).toLocaleString('en-US')} | ${si(pairs / m.seconds)} | ${m.workers === 0 ? '-' : jobSeconds(m).toFixed(1)} | ${m.cpu.bench.toFixed(1)} + ${m.cpu.workers.toFixed(1)} | ${m.workers === 0 ? '-' : m.jobs.reduce((n, j) => n + j.starts - 1, 0)} | ${sameRanking(m)} | ${((m.cpu.bench + m.cpu.workers) / m.seconds).toFixed(2)} | ${m.otherCores.toFixed(2)} | ${m.load.split(' ')[0]!} |`,
  ),
].join('\n');

// ---- The estimate: R rows on M machines of c cores, one worker per core.
const estimateRows = ESTIMATE.machines.map((machines) => {
  const workers = machines * ESTIMATE.coresPerMachine;
  const shards = Math.max(ESTIMATE.shardsPerWorker * workers, Math.ceil(ESTIMATE.rows / ESTIMATE.maxShardRows));
  const shardRows = ESTIMATE.rows / shards;
  const compute = shardRows * perRow;
  // One JSONL file: each shard reads the lines before its range (half the file on average).
  const scan = ESTIMATE.rows / 2 / rates.scanLinesPerS;
  const rounds = Math.ceil(shards / workers);
  const merge = ESTIMATE.rows * (mergePerRow + tailPerRow);
  const wall = (split: boolean) => rounds * (compute + (split ? 0 : scan) + perJobOverhead) + merge;
  return { machines, workers, shards, shardRows, compute, scan, merge, oneFile: wall(false), split: wall(true) };
});
const estimateTable = [
  `| machines (${ESTIMATE.coresPerMachine} cores each) | workers | shards | rows per shard | one shard's compute | merge (one process) | wall, one JSONL file | wall, files pre-split per shard | core-hours (pre-split) |`,
  '|---|---|---|---|---|---|---|---|---|',
  ...estimateRows.map(
    (e) =>
      `| ${e.machines} | ${e.workers} | ${e.shards} | ${si(e.shardRows)} | ${fmt(e.compute)} | ${fmt(e.merge)} | ${fmt(e.oneFile)} | ${fmt(e.split)} | ${((e.workers * e.split) / 3600).toFixed(0)} |`,
  ),
].join('\n');

const R = ESTIMATE.rows;
writeSection(
  args.out,
  'scaleout',
  `## Scale-out: TracIn shards on BullMQ workers

\`bench/scaleout.ts\`${args.size === 'small' ? ' (`--size small`: a smoke run, not the numbers to quote)' : ''}, measured ${machine()}; tf.js cpu backend (what \`inrun worker\` runs
without tfjs-node), in the bench process and in every worker. Load average (1/5/15 min) at the start: ${loadAtStart}.
The machine was shared with other work while this ran: "other processes' CPU" is the machine's busy
time (\`/proc/stat\`) less this bench's own processes' (bench, workers, redis-server) over the wall time, in
cores (of 2); the load average counts this bench's own processes too.

**The job.** The tabular MLP 20-64-64-2 (\`examples/tabular.ts\`) trained ${CHECKPOINTS} epochs with \`attach\`
and a checkpoint after each; ${SIZE.train.toLocaleString('en-US')} training rows and ${SIZE.queries} queries as JSON lines
(${rates.bytesPerRow.toFixed(0)} bytes a row), the same files for every configuration; TracInCP over all ${CHECKPOINTS} checkpoints
and every layer, top ${K} proponents and opponents per query and self-influence:
${si(pairs)} (training row, checkpoint, query) products. \`distributedTracin\` in this process (no queue), or
on \`inrun worker\` child processes (concurrency 1 each) through a throwaway \`redis-server\` on a free port
(\`--save '' --appendonly no\`), started and ready before the clock starts, with \`--lock-ms ${args['lock-ms']}\`
(shard jobs give timers a turn every batch, so a worker renews its lock while it computes; "jobs started
again" counts any job that lost its lock anyway). Wall time is the
\`distributedTracin\` call: shards, the merge job, and the caller reading the parts back for the result it returns.
Shard-job seconds are BullMQ's own timestamps (\`processedOn\` to \`finishedOn\`) summed over the shard jobs.

**This machine has 2 cores, which caps the speedup at 2x**: 4 workers on 2 cores share them (their
shard-job seconds grow as they time-slice) and cannot beat 2; measured, not assumed. Throughput follows
the cores the bench got: where other processes compete, more processes win a larger share of the 2
cores (the scheduler shares by process), so more workers can look faster without the work scaling. The
CPU seconds say what sharding and the queue cost in work, whatever the load.

${table}

Load average (1/5/15 min) at the end: ${load()}.

**The queue's own overhead per job**: ${SIZE.tinyShards} shards of a ${SIZE.tinyRows}-row file and 2 queries (the
work is nearly nothing) in process and on the queue with 1 worker, ${SIZE.rounds} round(s) alternating:
in process ${median(overhead.inProcess).toFixed(2)} s, on the queue ${median(overhead.queue).toFixed(2)} s (medians), so
**${(perJobOverhead * 1000).toFixed(0)} ms per job** ((queue - in process) / ${overhead.jobs} jobs, the merge included; it covers
enqueueing the flow, the hand-offs and the completion events). From BullMQ's timestamps, one worker
starts its next job a median **${(handOff * 1000).toFixed(1)} ms** after finishing the last.

**Reading rows.** One core scans ${si(rates.scanLinesPerS)} JSONL lines/s (readline, what a shard does to skip to its
range) and parses ${si(rates.parseRowsPerS)} rows/s (\`JSON.parse\`, its own rows). Outputs: shard parts
${partBytesPerRow.toFixed(1)} bytes per training row (self-influence rows plus ${SIZE.shards} x ${SIZE.queries} x 2k top-k rows),
\`self_influence.parquet\` ${selfBytesPerRow.toFixed(1)} bytes per training row, \`queries.parquet\` ${si(queriesBytes)}B
whatever the rows.

### Estimate: ${si(R)} training rows on N machines

Computed by the bench from the numbers above (same model, ${CHECKPOINTS} checkpoints, ${SIZE.queries} queries, k = ${K}):

${estimateTable}

Assumptions and where each number comes from:
- One worker per core, ${ESTIMATE.coresPerMachine}-core machines with cores like these, each core the workers' own: a core
  scores ${si(1 / perRow)} training rows/s over ${CHECKPOINTS} checkpoints and ${SIZE.queries} queries (the 1-worker run's CPU seconds per
  row, its share for shard jobs, reading its rows included: CPU time, so other work on the machine does
  not inflate it). Cores add linearly (here 2 workers ran ${(one.seconds / two.seconds).toFixed(2)}x as fast as 1 while other processes
  took ${two.otherCores.toFixed(2)} of the 2 cores). The cost grows linearly with rows and checkpoints, and with queries in
  the product part of each row.
- Shards: at least ${ESTIMATE.shardsPerWorker} per worker (a worker that draws the last shard idles at most a shard's time)
  and at most ${si(ESTIMATE.maxShardRows)} rows each (a shard holds its rows as tensors); the queue adds ${(perJobOverhead * 1000).toFixed(0)} ms a job.
- One JSONL file: every shard reads the file's lines up to its range, on average half the file
  (${fmt(R / 2 / rates.scanLinesPerS)} at the scan rate above), which dominates as shards shrink. Files pre-split per
  shard (or a row format that seeks) remove it; the shared storage is assumed to keep up
  (${si(R * rates.bytesPerRow)}B of JSONL read once).
- The merge runs in one process: ${fmt(R * mergePerRow)} for the merge job and ${fmt(R * tailPerRow)} for the caller
  (the bench process's CPU: enqueueing, events, the result; it reads no part, the merge job returns the lists), both as CPU
  seconds per training row of the 1-worker run scaled up (a conservative reading of the caller's share), a serial step that
  no number of machines shortens. Self-influence goes from the parts to \`self_influence.parquet\` through DuckDB
  (streamed, sorted out of core), so neither process holds ${si(R)} rows of it (\`keepSelfInfluence: false\`, as the CLI runs).
- Outputs: ${si(R * partBytesPerRow)}B of shard parts and ${si(R * selfBytesPerRow)}B of \`self_influence.parquet\`.
- Core-hours count every worker for the whole wall time (the merge included).`,
);
console.log(`\nwritten to ${args.out}`);
rmSync(dir, { recursive: true, force: true });
