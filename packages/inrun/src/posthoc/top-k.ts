// Top-k proponents and opponents per query, kept in order as scores stream in (TracIn, and the per-checkpoint merge of its jobs).
import type { ExampleId } from '../types.js';

/** One training example's score for a query. */
export interface Influence {
  readonly id: ExampleId;
  readonly score: number;
}

/** Top-k lists per query, updated block by block (memory: 2k per query, never the train x query matrix). */
export class TopK {
  readonly best: Influence[][];
  readonly worst: Influence[][];

  constructor(
    queries: number,
    private readonly k: number,
  ) {
    this.best = Array.from({ length: queries }, () => []);
    this.worst = Array.from({ length: queries }, () => []);
  }

  add(q: number, id: ExampleId, score: number): void {
    if (score > 0) insert(this.best[q]!, { id, score }, (a, b) => b.score - a.score, this.k);
    if (score < 0) insert(this.worst[q]!, { id, score }, (a, b) => a.score - b.score, this.k);
  }
}

function insert(list: Influence[], item: Influence, order: (a: Influence, b: Influence) => number, k: number): void {
  if (list.length === k && order(item, list[k - 1]!) >= 0) return;
  let at = list.length;
  while (at > 0 && order(item, list[at - 1]!) < 0) at--;
  list.splice(at, 0, item);
  if (list.length > k) list.pop();
}

