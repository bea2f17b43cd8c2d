// withIds: wraps a fitDataset dataset so that each element's ids are queued for the step that consumes it.
import { readBatchIds, type DatasetLike } from '../hooks/fit.js';
import type { ExampleId } from '../types.js';

/** What the run does around each element fitDataset fetches. */
export interface ElementHooks {
  /** Before the next element is fetched (the back-pressure point: fitDataset awaits it before every step). */
  readonly beforeNext: () => Promise<void>;
  /** After a fetch, between steps; `ended` when the dataset ran out (an epoch ended). */
  readonly afterNext: (ended: boolean) => Promise<void>;
  /** An element's ids and labels, right before its step. */
  readonly onElement: (ids: readonly ExampleId[], ys: unknown) => void;
}

/** The dataset fitDataset iterates: elements `{ xs, ys, ids }` lose their ids, which go to `hooks.onElement`. */
export function withIds(source: DatasetLike<unknown>, hooks: ElementHooks): DatasetLike<unknown> {
  return {
    get size() {
      return source.size;
    },
    iterator: async () => {
      const it = await source.iterator();
      return {
        next: async (): Promise<IteratorResult<unknown>> => {
          await hooks.beforeNext();
          const item = await it.next();
          const ended = item.done === true || item.value == null;
          await hooks.afterNext(ended);
          if (ended) return item;
          const { ids, ...rest } = item.value as { ids?: unknown; ys?: unknown };
          const list = await readBatchIds(ids, 'dataset element ids');
          hooks.onElement(list, rest.ys);
          return { done: false, value: rest };
        },
      };
    },
  };
}
