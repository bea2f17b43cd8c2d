// The TRAK merge: sums the shards' partial kernels per checkpoint, solves once, scores every shard's rows, writes queries.parquet and stores each row's summed score as a run.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError, parquetSink, sqliteSink, type ExampleId, type Sink } from '@inrun/store';
import { addScores, defaultLambda, solveQueries, TopK, yieldTurn, type TrakCheckpoint, type TrakResult } from 'inrun/internal';
import { writeQueriesFile } from './queries-file.js';
import type { TrakPartIndex } from './trak-shard.js';
import { writeTrakRun } from './trak-store.js';

/** The merge job: the parts' index files (shard order = training order), and the settings only the merge needs. */
export interface TrakMergeJob {
  /** `trak-part.json` of each shard, in shard order. */
  readonly parts: readonly string[];
  readonly k: number;
  /** Ridge term. @defaultValue `TRAK_LAMBDA_SCALE` x the mean diagonal of the summed kernel, per checkpoint */
  readonly lambda?: number;
  /** Writes `queries.parquet` here, and the scores as run `runId` of the Parquet store `out` (`<out>/<runId>/`). */
  readonly out: string;
  /** The run's id (its parts' folder is `<out>/run=<runId>/`); the stored run's id too. */
  readonly runId: string;
  /** Also store the run in this SQLite file (created, or one `sqliteSink` wrote). @defaultValue none */
  readonly sqlite?: string;
}

/** What the merge returns (through Redis too): the file, the training row count, and the result (lists only). */
export interface TrakMergeReturn {
  readonly queries: string;
  readonly trainingRows: number;
  readonly result: TrakResult;
}

/**
 * Merges the parts: per checkpoint, Phi^T Phi is the sum of the shards' (a sum over training rows),
 * lambda and the solve x_j = (Phi^T Phi + lambda I)^-1 phi_q_j follow once; then each shard's rows
 * are scored (phi_i . x_j Q_ii, averaged over checkpoints and runs as `trak()`) into top-k lists, one
 * part in memory at a time. Equals `trak()` on all rows up to the order of the kernel's sums.
 */
export async function runTrakMerge(job: TrakMergeJob): Promise<TrakMergeReturn> {
  job.parts.forEach((path, i) => {
    if (!path.endsWith('.json')) throw new InrunError(`parts[${i}] is not a trak-part .json index: ${path}`, { code: 'invalid_input', field: `parts[${i}]` });
  });
  const parts = job.parts.map((path) => ({ path, index: JSON.parse(readFileSync(path, 'utf8')) as TrakPartIndex }));
  const first = parts[0];
  if (first === undefined) throw new InrunError('no TRAK parts to merge', { code: 'invalid_input', field: 'parts' });
  for (const p of parts) {
    const same = JSON.stringify(p.index.checkpoints.map(({ at: _, ...c }) => c)) === JSON.stringify(first.index.checkpoints.map(({ at: _, ...c }) => c));
    if (!same || JSON.stringify(p.index.queryIds) !== JSON.stringify(first.index.queryIds)) {
      throw new InrunError(`the part ${p.path} was computed over other checkpoints, projections or queries than ${first.path}`, { code: 'invalid_state', field: 'parts' });
    }
  }
  const q = first.index.queryIds.length;
  const checkpoints = first.index.checkpoints;
  // Per checkpoint: the summed kernel, lambda, and the solved queries.
  const solved = checkpoints.map((c, i) => {
    const d = c.dim;
    const gram = new Float64Array(d * d);
    for (const p of parts) {
      const part = read(p.path, p.index.checkpoints[i]!.at, d * d);
      for (let a = 0; a < gram.length; a++) gram[a]! += part[a]!;
    }
    const lambda = job.lambda ?? defaultLambda(gram, d);
    const x = solveQueries(gram, d, lambda, read(first.path, c.at + d * d, q * d), q, c.path);
    return { lambda, x };
  });
  const runs = first.index.runs;
  const top = new TopK(q, job.k);
  const stored = { ids: [] as ExampleId[], totals: [] as number[], sources: [] as string[], labels: [] as number[] };
  let trainingRows = 0;
  for (const p of parts) {
    const n = p.index.rows;
    trainingRows += n;
    stored.ids.push(...p.index.trainIds);
    stored.sources.push(...(p.index.sources ?? []));
    stored.labels.push(...(p.index.labels ?? []));
    const total = new Float64Array(n * q);
    p.index.checkpoints.forEach((c, i) => {
      const d = c.dim;
      const start = c.at + d * d + q * d;
      addScores(read(p.path, start, n * d), read(p.path, start + n * d, n), n, solved[i]!.x, q, d, 1 / runs[c.run]! / runs.length, total);
    });
    for (let r = 0; r < n; r++) {
      let sum = 0;
      for (let j = 0; j < q; j++) {
        top.add(j, p.index.trainIds[r]!, total[r * q + j]!);
        sum += total[r * q + j]!;
      }
      stored.totals.push(sum);
    }
    // A queued merge's worker renews its job lock on a timer (docs/scale-out.md).
    await yieldTurn();
  }
  const result: TrakResult = {
    runs: runs.map((_, r) => checkpoints.flatMap((c, i) => (c.run === r ? [{ path: c.path, step: c.step, dim: c.dim, lambda: solved[i]!.lambda, from: c.from } satisfies TrakCheckpoint] : []))),
    queries: first.index.queryIds.map((id, j) => ({ id, proponents: top.best[j]!, opponents: top.worst[j]! })),
    matrix: null,
  };
  const queries = join(job.out, 'queries.parquet');
  writeQueriesFile(queries, result.queries);
  // Sources and labels are stored only where every part has them (one row file: all or none).
  const every = (list: readonly unknown[]) => list.length === trainingRows;
  const sinks: Sink[] = [parquetSink(job.out), ...(job.sqlite === undefined ? [] : [sqliteSink(job.sqlite)])];
  await writeTrakRun(sinks, {
    runId: job.runId,
    ids: stored.ids,
    totals: Float32Array.from(stored.totals),
    sources: every(stored.sources) ? stored.sources : null,
    labels: every(stored.labels) ? stored.labels : null,
    queries: q,
    step: Math.max(...checkpoints.map((c) => c.step)),
    tfjsVersion: first.index.tfjsVersion,
    backend: first.index.backend,
    meta: { method: 'TRAK', runs: runs.length, checkpoints: result.runs.flat().map((c) => `${c.path} (step ${c.step}, dim ${c.dim}, lambda ${c.lambda}, from ${c.from})`).join('; '), queries: first.index.queryIds.length, k: job.k },
  });
  return { queries, trainingRows, result };
}

/** `count` numbers from `trak-part.f64` beside the index `path`, from number `at`. */
function read(path: string, at: number, count: number): Float64Array {
  const out = new Float64Array(count);
  const fd = openSync(path.replace(/\.json$/, '.f64'), 'r');
  try {
    const bytes = new Uint8Array(out.buffer);
    let done = 0;
    while (done < bytes.length) {
      const got = readSync(fd, bytes, done, bytes.length - done, at * 8 + done);
      if (got === 0) throw new InrunError(`the TRAK part ${path} is cut short`, { code: 'invalid_state', field: 'parts' });
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
