// The seams of model.fit/fitDataset: seeded id-carrying batches and the callbacks inrun adds.
import * as tf from '@tensorflow/tfjs';
import { InrunError, preview } from '../errors.js';
import type { ExampleId } from '../types.js';

/** mulberry32: a small, fast, seeded 32-bit PRNG (deterministic shuffles across runs and machines). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates permutation of `0..n-1`. */
export function permutation(n: number, random: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = p[i]!;
    p[i] = p[j]!;
    p[j] = tmp;
  }
  return p;
}

/** Minimal structural view of a tf.data.Dataset, as `fitDataset` uses it. */
export interface DatasetLike<T> {
  readonly size: number | null;
  iterator(): Promise<{ next(): Promise<IteratorResult<T>> }>;
}

export interface Batch {
  readonly xs: tf.Tensor | tf.Tensor[];
  readonly ys: tf.Tensor | tf.Tensor[];
  readonly ids: readonly ExampleId[];
}

/**
 * Batches of in-memory tensors for `run.fit`, shuffled each epoch by a permutation seeded with
 * (seed, epoch), or in order. Keyed by the epoch, so a run resumed at epoch e sees the batches the
 * uninterrupted run saw. Rows are gathered like `model.fit` gathers them; ids travel with their rows.
 */
export function arrayBatches(
  xs: readonly tf.Tensor[],
  ys: readonly tf.Tensor[],
  ids: readonly ExampleId[],
  batchSize: number,
  shuffle: boolean,
  seed: number,
  epoch: () => number,
): DatasetLike<Batch> {
  const n = ids.length;
  const single = (list: tf.Tensor[]) => (list.length === 1 ? list[0]! : list);
  return {
    size: Math.ceil(n / batchSize),
    iterator: () => {
      const random = seededRandom((seed ^ Math.imul(epoch() + 1, 0x9e3779b1)) >>> 0);
      const order = shuffle ? permutation(n, random) : Int32Array.from({ length: n }, (_, i) => i);
      let at = 0;
      return Promise.resolve({
        next: (): Promise<IteratorResult<Batch>> => {
          if (at >= n) return Promise.resolve({ done: true, value: undefined });
          const rows = order.subarray(at, Math.min(at + batchSize, n));
          at += rows.length;
          const indices = tf.tensor1d(rows, 'int32');
          const batch: Batch = {
            xs: single(xs.map((x) => tf.gather(x, indices))),
            ys: single(ys.map((y) => tf.gather(y, indices))),
            ids: Array.from(rows, (r) => ids[r]!),
          };
          indices.dispose();
          return Promise.resolve({ done: false, value: batch });
        },
      });
    },
  };
}

/** Reads a batch's `ids` field: an array, a typed array or a 1-D tensor (freed after reading). */
export async function readBatchIds(ids: unknown, field: string): Promise<ExampleId[]> {
  if (ids instanceof tf.Tensor) {
    try {
      if (ids.rank !== 1) throw new InrunError(`expected a 1-D tensor of ids, got ${preview(ids)}`, { field, code: 'invalid_input' });
      const values = await ids.data();
      return Array.from(values as ArrayLike<number | string>);
    } finally {
      ids.dispose();
    }
  }
  if (Array.isArray(ids)) return ids as ExampleId[];
  if (ArrayBuffer.isView(ids) && !(ids instanceof DataView)) return Array.from(ids as unknown as ArrayLike<number>);
  throw new InrunError(
    `each dataset element needs an ids field ({ xs, ys, ids }) with one id per row, got ${preview(ids)}`,
    { field, code: 'invalid_input' },
  );
}

type CallbackArg = tf.ModelFitArgs['callbacks'];

function isCallbackInstance(cb: unknown): cb is tf.Callback {
  return typeof (cb as { setParams?: unknown }).setParams === 'function';
}

/**
 * `first`, then the user's callbacks, as instances. `first` runs before the user's callbacks, so
 * that inrun's epoch bookkeeping is current inside them (a checkpoint taken in `onEpochEnd` records
 * the epoch that just ended). tf.js treats a callback list as all instances or all plain configs
 * (it looks at the first entry), so configs are wrapped here.
 */
export function withCallback(user: CallbackArg, yieldEvery: tf.ModelFitArgs['yieldEvery'], first: tf.Callback): tf.Callback[] {
  const list: unknown[] = user == null ? [] : Array.isArray(user) ? user : [user];
  return [
    first,
    ...list.map((cb) =>
      isCallbackInstance(cb) ? cb : (new tf.CustomCallback(cb as tf.CustomCallbackArgs, yieldEvery) as unknown as tf.Callback),
    ),
  ];
}
