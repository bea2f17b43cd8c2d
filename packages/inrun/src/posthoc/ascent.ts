// Gradient ascent on labelled rows with a fresh optimizer, guarded against divergence; mean loss of rows.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { ModelAdapter } from '../model/adapter.js';
import { permutation, seededRandom } from '../hooks/fit.js';
import { yieldTurn } from '../event-loop.js';

/** Checked rows: tensors with a shared first (row) axis. */
export interface Rows {
  readonly xs: readonly tf.Tensor[];
  readonly ys: readonly tf.Tensor[];
  readonly rows: number;
}

export interface AscentOptions {
  readonly optimizer: () => tf.Optimizer;
  readonly epochs: number;
  readonly batchSize: number;
  readonly maxSteps: number;
  /** Stop when the moving average of batch losses exceeds this. */
  readonly ceiling: number;
  /** The moving average's starting value (the rows' mean loss before the ascent). */
  readonly startLoss: number;
  readonly seed: number;
  readonly onStep?: () => void;
}

export interface AscentResult {
  readonly steps: number;
  readonly stopped: 'non-finite' | 'loss-ceiling' | null;
}

/** Steps an ascent of `rows` rows takes. */
export function ascentSteps(rows: number, o: Pick<AscentOptions, 'epochs' | 'batchSize' | 'maxSteps'>): number {
  return Math.min(o.maxSteps, o.epochs * Math.ceil(rows / o.batchSize));
}

/**
 * Gradient ascent on the mean loss of `data` over `variables`: seeded shuffles, one epoch after
 * another, with an optimizer from the factory (disposed at the end). The guard watches each step's
 * batch loss, computed at the weights before that step: when it is not finite, or when its moving
 * average (weight 0.1 on the newest) exceeds the ceiling, the weights go back to those before the
 * previous step (the last ones whose loss was seen to be sane) and the ascent stops. Single-row
 * losses are noisy, hence the average. The caller restores the weights it started from.
 */
export async function ascend(model: ModelAdapter, variables: readonly tf.Variable[], data: Rows, o: AscentOptions): Promise<AscentResult> {
  const optimizer = o.optimizer();
  if (!(optimizer instanceof tf.Optimizer)) {
    throw new InrunError('the optimizer factory returned something other than a tf.Optimizer', { field: 'optimizer' });
  }
  if (optimizer === model.optimizer) {
    throw new InrunError("the optimizer factory returned the model's own optimizer; return a fresh one (its state must stay untouched)", { field: 'optimizer' });
  }
  const planned = ascentSteps(data.rows, o);
  const random = seededRandom(o.seed);
  // Weights before the previous step and before this one: clones share the data until a step assigns.
  let previous: tf.Tensor[] | null = null;
  let current: tf.Tensor[] | null = null;
  let average = o.startLoss;
  let steps = 0;
  let stopped: AscentResult['stopped'] = null;
  try {
    let order: Int32Array = new Int32Array(0);
    let at = 0;
    while (steps < planned) {
      if (at >= order.length) {
        order = permutation(data.rows, random);
        at = 0;
      }
      const pick = order.subarray(at, Math.min(at + o.batchSize, order.length));
      at += pick.length;
      if (previous !== null) tf.dispose(previous);
      previous = current;
      current = variables.map((v) => tf.clone(v));
      const cost = tf.tidy(() => {
        const idx = tf.tensor1d(pick, 'int32');
        const xs = data.xs.map((x) => tf.gather(x, idx));
        const ys = data.ys.map((y) => tf.gather(y, idx));
        return optimizer.minimize(() => tf.neg(tf.mean(model.perExampleLoss(ys, model.forward(xs)))) as tf.Scalar, true, [...variables])!;
      });
      const loss = -cost.dataSync()[0]!;
      cost.dispose();
      average = 0.9 * average + 0.1 * loss;
      const bad = !Number.isFinite(loss) ? 'non-finite' : average > o.ceiling ? 'loss-ceiling' : null;
      if (bad !== null) {
        const back = previous ?? current;
        variables.forEach((v, i) => v.assign(back[i]!));
        steps = Math.max(0, steps - 1);
        stopped = bad;
        break;
      }
      steps++;
      o.onStep?.();
      // An ascent runs for minutes on a large source: timers (a queued job's lock renewal, progress) get a turn each step.
      await yieldTurn();
    }
  } finally {
    tf.dispose([...(previous ?? []), ...(current ?? [])]);
    optimizer.dispose();
  }
  return { steps, stopped };
}

/** Mean per-example loss of the first `limit` rows (all by default), `batchSize` rows per forward pass. */
export function meanLoss(model: ModelAdapter, data: Rows, batchSize: number, limit = data.rows): number {
  const rows = Math.min(limit, data.rows);
  let sum = 0;
  for (let start = 0; start < rows; start += batchSize) {
    const n = Math.min(batchSize, rows - start);
    const part = tf.tidy(() => {
      const xs = data.xs.map((x) => tf.slice(x, start, n));
      const ys = data.ys.map((y) => tf.slice(y, start, n));
      return tf.sum(model.perExampleLoss(ys, model.forward(xs)));
    });
    sum += part.dataSync()[0]!;
    part.dispose();
  }
  return sum / rows;
}
