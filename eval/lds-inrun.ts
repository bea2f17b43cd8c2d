// In-run values for the LDS harness: one attributed replay of the full run with every chosen test digit as its own target.
import * as tf from '@tensorflow/tfjs';
import { attach, type Method, type TargetData } from 'inrun';
import { trainSeeded } from './train.js';

/** What the attributed replay trains: the full run's model, rows, step count, seed and batch size. */
export interface InrunReplay {
  readonly model: tf.LayersModel;
  readonly train: { readonly xs: tf.Tensor; readonly ys: tf.Tensor };
  readonly test: { readonly xs: tf.Tensor; readonly ys: tf.Tensor };
  /** Test rows scored, each its own one-row target (`t<row>`). */
  readonly queries: readonly number[];
  readonly steps: number;
  readonly seed: number;
  readonly batchSize: number;
  readonly methods: readonly ('shapley1' | 'shapley2')[];
  readonly update: 'sgd' | 'optimizer';
}

/**
 * Trains `model` on every row in the full run's seeded order under `attach` and returns one n x q
 * matrix (row-major, training order) per method: the value of training row i toward test row
 * `queries[j]`. A target's loss is the sum over its rows (docs/methods.md#targets), so a one-row target
 * per test digit gives exactly that digit's value, and targets of one shape share one target pass: the
 * cheapest exact way to a score per (training row, test row). `distinct` keeps a row from appearing
 * twice in the batch that spans two passes (run.step needs distinct ids), so this replay's order can
 * differ from the plain full run's at pass boundaries only.
 */
export async function inrunMatrices(r: InrunReplay): Promise<Map<string, Float32Array>> {
  const q = r.queries.length;
  const targets: Record<string, TargetData> = {};
  const slices: tf.Tensor[] = [];
  for (const j of r.queries) {
    const xs = tf.slice(r.test.xs, j, 1);
    const ys = tf.slice(r.test.ys, j, 1);
    slices.push(xs, ys);
    targets[`t${j}`] = { xs, ys };
  }
  const run = attach(r.model, { targets, methods: r.methods as Method[], update: r.update, seed: 1, delivery: { stepRecords: false } });
  try {
    await trainSeeded(r.model, r.train, [...Array(r.train.xs.shape[0]).keys()], {
      steps: r.steps,
      seed: r.seed,
      batchSize: r.batchSize,
      distinct: true,
      around: async (rows, step) => await run.step(rows, step),
    });
    const scores = await run.close();
    const n = r.train.xs.shape[0]!;
    const out = new Map<string, Float32Array>();
    for (const method of r.methods) {
      const matrix = new Float32Array(n * q);
      r.queries.forEach((row, j) => {
        const column = scores.columns[`${method}:t${row}`]!;
        scores.ids.forEach((id, k) => (matrix[Number(id) * q + j] = column[k]!));
      });
      out.set(method, matrix);
    }
    return out;
  } finally {
    tf.dispose(slices);
  }
}
