// `queries.parquet`: each query's top-k proponents and opponents, one row per (query, kind, rank); written by the TracIn merge and by `inrun trak`.
import type { Influence } from 'inrun/internal';
import { writeParquetFile } from '@inrun/store/internal';
import type { ExampleId } from '@inrun/store';

/** One query's lists, as `tracin()` and `trak()` return them. */
export interface QueryLists {
  readonly id: ExampleId;
  readonly proponents: readonly Influence[];
  readonly opponents: readonly Influence[];
}

/** Writes `query_id`, `kind` (proponent | opponent), `rank` from 1, `train_id` and `score`; ids as strings. */
export function writeQueriesFile(path: string, queries: readonly QueryLists[]): void {
  const queryId: string[] = [];
  const kind: string[] = [];
  const rank: number[] = [];
  const trainId: string[] = [];
  const score: number[] = [];
  for (const q of queries) {
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
  writeParquetFile(path, [
    { name: 'query_id', type: 'STRING', data: queryId },
    { name: 'kind', type: 'STRING', data: kind },
    { name: 'rank', type: 'INT32', data: rank },
    { name: 'train_id', type: 'STRING', data: trainId },
    { name: 'score', type: 'DOUBLE', data: score },
  ]);
}
