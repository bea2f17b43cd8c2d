// The TracIn merge step: shards' top-k lists per query (or per-checkpoint scores, summed first) and self-influence into one result and its Parquet files.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '@inrun/store';
import { SourceSums } from 'inrun/internal';
import { TopK } from 'inrun/internal';
import { checkpointFolders, type Influence, type SourceInfluence, type TracInResult } from 'inrun/internal';
import { readCheckpointInfo } from 'inrun/internal';
import { readParquetFile, writeParquetFile } from '@inrun/store/internal';
import type { ExampleId } from '@inrun/store';
import { readIds } from './row-files.js';
import { writeQueriesFile } from './queries-file.js';
import { writeSelfInfluence } from './self-influence-file.js';

/** What the merge needs: the shards' parts in training-row order, and what the shards were run with. */
export interface TracinMergeJob {
  readonly parts: readonly string[];
  readonly checkpoints: string;
  readonly queries: string;
  readonly k: number;
  readonly out: string;
  /**
   * The parts are per (shard, checkpoint), shard-major (each shard's checkpoints in step order), and
   * hold every score: the merge sums each shard's checkpoints, then ranks. @defaultValue false
   */
  readonly perCheckpoint?: boolean;
}

/** Paths the merge wrote. */
export interface TracinOutputs {
  readonly queries: string;
  readonly selfInfluence: string;
  /** `<out>/sources.parquet` when the training rows had a `source`, else null. */
  readonly bySource: string | null;
  /** Rows of `self_influence.parquet`: every training row. */
  readonly trainingRows: number;
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
export async function mergeTracinParts(job: Omit<TracinMergeJob, 'out'>, keepSelfInfluence = true): Promise<TracInResult> {
  const queryIds = await readIds(job.queries);
  const best: Influence[][] = queryIds.map(() => []);
  const worst: Influence[][] = queryIds.map(() => []);
  const selfIds: ExampleId[] = [];
  const selfValues: number[] = [];
  // Sources first seen in shard order: training order, as tracin() orders them.
  const bySource = new SourceSums(queryIds.length);
  for await (const rows of shardRows(job, queryIds.length)) {
    for (const r of rows) {
      // Self rows are one per training row: their ids are parsed only when they are kept.
      if (r.kind === 'self') {
        if (keepSelfInfluence) {
          selfIds.push(JSON.parse(r.train_id) as ExampleId);
          selfValues.push(r.score);
        }
      } else if (r.kind === 'source') {
        // A shard writes one row per source and query, each with the source's rows in the shard: count them once.
        bySource.addSum(bySource.slot(JSON.parse(r.train_id) as string), r.query === 0 ? r.rank : 0, r.query, r.score);
      } else (r.kind === 'proponent' ? best : worst)[r.query]!.push({ id: JSON.parse(r.train_id) as ExampleId, score: r.score });
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
    selfInfluence: keepSelfInfluence ? { ids: selfIds, values: Float64Array.from(selfValues) } : null,
    sources: bySource.size === 0 ? null : bySource.list(),
    matrix: null,
  };
}

/** Each shard's rows in the form of a whole-shard part: read as they are, or summed over its per-checkpoint parts first. */
async function* shardRows(job: Omit<TracinMergeJob, 'out'>, queries: number): AsyncGenerator<PartRow[]> {
  if (job.perCheckpoint !== true) {
    for (const part of job.parts) yield (await readParquetFile(part)) as unknown as PartRow[];
    return;
  }
  const c = checkpointFolders(job.checkpoints).length;
  if (job.parts.length % c !== 0) throw new InrunError(`${job.parts.length} parts are not whole shards of ${c} checkpoints each`, { code: 'internal', field: 'parts' });
  for (let at = 0; at < job.parts.length; at += c) yield await summedShard(job.parts.slice(at, at + c), queries, job.k);
}

/**
 * One shard's per-checkpoint parts summed (float64) into TracInCP scores, then ranked as `tracin()`
 * ranks (positive scores only for proponents, ties in training order), self-influence and per-source
 * sums added up: the rows a whole-shard part would hold.
 */
async function summedShard(paths: readonly string[], queries: number, k: number): Promise<PartRow[]> {
  let ids: string[] = [];
  let sources: string[] | null = null;
  let sums = new Float64Array(0);
  let self = new Float64Array(0);
  const columns = Array.from({ length: queries }, (_, j) => `query_${j}`);
  for (const [c, path] of paths.entries()) {
    const rows = await readParquetFile(path);
    if (c === 0) {
      ids = rows.map((r) => r.train_id as string);
      sources = rows.length > 0 && typeof rows[0]!.source === 'string' ? rows.map((r) => r.source as string) : null;
      sums = new Float64Array(ids.length * queries);
      self = new Float64Array(ids.length);
    } else if (rows.length !== ids.length || rows.some((r, i) => r.train_id !== ids[i])) {
      throw new InrunError(`${path} does not hold the rows of ${paths[0]!} (same shard, another checkpoint)`, { code: 'internal', field: 'parts' });
    }
    rows.forEach((r, i) => {
      self[i]! += r.self as number;
      columns.forEach((name, j) => (sums[i * queries + j]! += r[name] as number));
    });
  }
  const top = new TopK(queries, k);
  ids.forEach((id, i) => {
    for (let j = 0; j < queries; j++) top.add(j, id, sums[i * queries + j]!);
  });
  const out: PartRow[] = [];
  top.best.forEach((list, j) => list.forEach((p, rank) => out.push({ kind: 'proponent', query: j, rank, train_id: p.id as string, score: p.score })));
  top.worst.forEach((list, j) => list.forEach((p, rank) => out.push({ kind: 'opponent', query: j, rank, train_id: p.id as string, score: p.score })));
  ids.forEach((id, i) => out.push({ kind: 'self', query: -1, rank: i, train_id: id, score: self[i]! }));
  if (sources !== null) {
    const bySource = new SourceSums(queries);
    sources.forEach((name, i) => bySource.addRow(bySource.slot(name), sums, i * queries));
    for (const s of bySource.list()) s.scores.forEach((score, j) => out.push({ kind: 'source', query: j, rank: s.examples, train_id: JSON.stringify(s.source), score }));
  }
  return out;
}

/**
 * Writes `<out>/queries.parquet` (`query_id`, `kind` proponent | opponent, `rank` from 1, `train_id`,
 * `score`), `<out>/self_influence.parquet` (`train_id`, `value`, training order; streamed from the
 * parts, whatever `result` holds) and, with sources, `<out>/sources.parquet` (`query_id`, `source`,
 * `examples`, `score`: the source's rows' scores summed for that query); ids as strings.
 */
export async function writeTracinOutputs(result: TracInResult, job: TracinMergeJob): Promise<TracinOutputs> {
  const out = job.out;
  mkdirSync(out, { recursive: true });
  const queries = join(out, 'queries.parquet');
  writeQueriesFile(queries, result.queries);
  const selfInfluence = join(out, 'self_influence.parquet');
  const trainingRows = await writeSelfInfluence(selfInfluence, job.parts, job.perCheckpoint === true ? checkpointFolders(job.checkpoints).length : null);
  if (result.sources === null) return { queries, selfInfluence, bySource: null, trainingRows };
  const sources = result.sources;
  const rows = result.queries.flatMap((q, j) => sources.map((s) => ({ query: String(q.id), source: s.source, examples: s.examples, score: s.scores[j]! })));
  const bySource = join(out, 'sources.parquet');
  writeParquetFile(bySource, [
    { name: 'query_id', type: 'STRING', data: rows.map((r) => r.query) },
    { name: 'source', type: 'STRING', data: rows.map((r) => r.source) },
    { name: 'examples', type: 'INT32', data: rows.map((r) => r.examples) },
    { name: 'score', type: 'DOUBLE', data: rows.map((r) => r.score) },
  ]);
  return { queries, selfInfluence, bySource, trainingRows };
}

/** What the merge job returns through Redis: the paths, and the small part of the result (JSON: lists, sources' sums as arrays). */
export interface TracinMergeReturn extends TracinOutputs {
  readonly lists: Omit<TracInResult, 'sources' | 'selfInfluence' | 'matrix'> & { readonly sources: readonly (Omit<SourceInfluence, 'scores'> & { readonly scores: readonly number[] })[] | null };
}

/**
 * The merge job: merges the top-k lists (and per-source sums) and writes the outputs; self-influence
 * goes from the parts to its file, never through memory. Returns the lists too (k per query: small
 * enough for Redis), so a queued caller need not read the parts again.
 */
export async function runTracinMerge(job: TracinMergeJob): Promise<TracinMergeReturn> {
  const merged = await mergeTracinParts(job, false);
  const outputs = await writeTracinOutputs(merged, job);
  const { checkpoints, queries, sources } = merged;
  return { ...outputs, lists: { checkpoints, queries, sources: sources?.map((s) => ({ ...s, scores: Array.from(s.scores) })) ?? null } };
}

/** The result from a merge job's return (no self-influence: that stays in its file). */
export function resultOf(merged: TracinMergeReturn): TracInResult {
  const { sources, ...lists } = merged.lists;
  return { ...lists, sources: sources?.map((s) => ({ ...s, scores: Float64Array.from(s.scores) })) ?? null, selfInfluence: null, matrix: null };
}
