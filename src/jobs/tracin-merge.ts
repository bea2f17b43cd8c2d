// The TracIn merge step: shards' top-k lists per query and self-influence into one result and two Parquet files.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointFolders, type Influence, type SourceInfluence, type TracInResult } from '../posthoc/tracin.js';
import { readCheckpointInfo } from '../run/checkpoint.js';
import { readParquetFile, writeParquetFile } from '../store/parquet-file.js';
import type { ExampleId } from '../types.js';
import { readIds } from './rows.js';

/** What the merge needs: the shards' parts in training-row order, and what the shards were run with. */
export interface TracinMergeJob {
  readonly parts: readonly string[];
  readonly checkpoints: string;
  readonly queries: string;
  readonly k: number;
  readonly out: string;
}

/** Paths the merge wrote. */
export interface TracinOutputs {
  readonly queries: string;
  readonly selfInfluence: string;
  /** `<out>/sources.parquet` when the training rows had a `source`, else null. */
  readonly bySource: string | null;
}

interface PartRow {
  kind: string;
  query: number;
  rank: number;
  train_id: string;
  score: number;
}

/**
 * Combines the shards' parts into the single-process {@link TracInResult}. Each part's scores are
 * already summed over every checkpoint (a shard job covers all of them), so a query's global top k is
 * among the union of the shards' top-k lists: concatenated in shard order and stably sorted, ties keep
 * training order as single-process `tracin` does.
 */
export async function mergeTracinParts(job: Omit<TracinMergeJob, 'out'>): Promise<TracInResult> {
  const queryIds = await readIds(job.queries);
  const best: Influence[][] = queryIds.map(() => []);
  const worst: Influence[][] = queryIds.map(() => []);
  const selfIds: ExampleId[] = [];
  const selfValues: number[] = [];
  // Per source (first seen, in shard order: training order, as tracin() orders them): rows and per-query sums.
  const bySource = new Map<string, { examples: number; scores: Float64Array }>();
  for (const part of job.parts) {
    const rows = (await readParquetFile(part)) as unknown as PartRow[];
    for (const r of rows) {
      const id = JSON.parse(r.train_id) as ExampleId;
      if (r.kind === 'self') {
        selfIds.push(id);
        selfValues.push(r.score);
      } else if (r.kind === 'source') {
        const name = id as string;
        let s = bySource.get(name);
        if (s === undefined) bySource.set(name, (s = { examples: 0, scores: new Float64Array(queryIds.length) }));
        // A shard writes one row per source and query, each with the source's rows in the shard: count them once.
        if (r.query === 0) s.examples += r.rank;
        s.scores[r.query]! += r.score;
      } else (r.kind === 'proponent' ? best : worst)[r.query]!.push({ id, score: r.score });
    }
  }
  const top = (lists: Influence[][], sign: number): Influence[][] => lists.map((l) => l.sort((a, b) => sign * (b.score - a.score)).slice(0, job.k));
  const proponents = top(best, 1);
  const opponents = top(worst, -1);
  return {
    checkpoints: checkpointFolders(job.checkpoints).map((path) => {
      const info = readCheckpointInfo(path);
      return { path, step: info.step, learningRate: info.learningRate };
    }),
    queries: queryIds.map((id, j) => ({ id, proponents: proponents[j]!, opponents: opponents[j]! })),
    selfInfluence: { ids: selfIds, values: Float64Array.from(selfValues) },
    sources:
      bySource.size === 0
        ? null
        : [...bySource].map(([source, s]): SourceInfluence => ({ source, examples: s.examples, scores: s.scores, mean: s.scores.reduce((a, b) => a + b, 0) / queryIds.length })),
  };
}

/**
 * Writes a result as `<out>/queries.parquet` (`query_id`, `kind` proponent | opponent, `rank` from 1,
 * `train_id`, `score`) and `<out>/self_influence.parquet` (`train_id`, `value`); ids as strings. With
 * sources, also `<out>/sources.parquet` (`query_id`, `source`, `examples`, `score`: the source's rows'
 * scores summed for that query).
 */
export function writeTracinOutputs(result: TracInResult, out: string): TracinOutputs {
  mkdirSync(out, { recursive: true });
  const queryId: string[] = [];
  const kind: string[] = [];
  const rank: number[] = [];
  const trainId: string[] = [];
  const score: number[] = [];
  for (const q of result.queries) {
    for (const [name, list] of [['proponent', q.proponents], ['opponent', q.opponents]] as const) {
      list.forEach((p, r) => {
        queryId.push(String(q.id));
        kind.push(name);
        rank.push(r + 1);
        trainId.push(String(p.id));
        score.push(p.score);
      });
    }
  }
  const outputs = { queries: join(out, 'queries.parquet'), selfInfluence: join(out, 'self_influence.parquet') };
  writeParquetFile(outputs.queries, [
    { name: 'query_id', type: 'STRING', data: queryId },
    { name: 'kind', type: 'STRING', data: kind },
    { name: 'rank', type: 'INT32', data: rank },
    { name: 'train_id', type: 'STRING', data: trainId },
    { name: 'score', type: 'DOUBLE', data: score },
  ]);
  const self = result.selfInfluence;
  writeParquetFile(outputs.selfInfluence, [
    { name: 'train_id', type: 'STRING', data: (self?.ids ?? []).map(String) },
    { name: 'value', type: 'DOUBLE', data: Array.from(self?.values ?? []) },
  ]);
  if (result.sources === null) return { ...outputs, bySource: null };
  const sources = result.sources;
  const rows = result.queries.flatMap((q, j) => sources.map((s) => ({ query: String(q.id), source: s.source, examples: s.examples, score: s.scores[j]! })));
  const bySource = join(out, 'sources.parquet');
  writeParquetFile(bySource, [
    { name: 'query_id', type: 'STRING', data: rows.map((r) => r.query) },
    { name: 'source', type: 'STRING', data: rows.map((r) => r.source) },
    { name: 'examples', type: 'INT32', data: rows.map((r) => r.examples) },
    { name: 'score', type: 'DOUBLE', data: rows.map((r) => r.score) },
  ]);
  return { ...outputs, bySource };
}

/** The merge job: merges the parts and writes the outputs. */
export async function runTracinMerge(job: TracinMergeJob): Promise<TracinOutputs> {
  return writeTracinOutputs(await mergeTracinParts(job), job.out);
}
