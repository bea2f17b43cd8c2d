// trak(): exact against a brute-force TRAK (one backward per example, the same dense projection, an explicit inverse).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, loadCheckpoint, trak, InrunError } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, layerVariables, losses, perExampleGradients } from './helpers.js';
import { denseProjection, invert } from './trak-brute.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const N = 20;
const Q = 3;
const x = tf.randomNormal([N, 12], 0, 1, 'float32', 1);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 7) % 3), 'int32'), 3);
const qx = tf.randomNormal([Q, 12], 0, 1, 'float32', 2);
const qy = tf.oneHot(tf.tensor1d([0, 1, 2], 'int32'), 3);
const ids = Array.from({ length: N }, (_, i) => `t${i}`);

/** One run: 2 epochs with a checkpoint after each; returns the checkpoint folder. */
async function trainRun(seed: number): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'inrun-trak-')), 'ckpt');
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 6, activation: 'tanh', inputShape: [12], kernelInitializer: tf.initializers.glorotNormal({ seed }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.3), loss: 'categoricalCrossentropy' });
  const run = attach(model, { checkpoints: { dir, everyEpochs: 1 }, seed });
  await run.fit(x, y, { ids, epochs: 2, batchSize: 5, verbose: 0 });
  await run.close();
  return dir;
}

/** Brute-force TRAK of one checkpoint: n x q scores, and the lambda used. */
async function bruteCheckpoint(path: string, dim: number, seed: number, lambda: number | null): Promise<number[][]> {
  const model = await loadCheckpoint(path);
  const vars = layerVariables(model);
  const forward = (t: tf.Tensor) => model.apply(t) as tf.Tensor;
  const P = await denseProjection(model, dim, 2 * seed + 1);
  const D = P[0]!.length;
  const project = (g: Float64Array) => Array.from({ length: D }, (_, a) => g.reduce((s, v, r) => s + v * P[r]![a]!, 0));
  // p_y per row, and grad f = grad(log p - log(1 - p)) = -grad loss / (1 - p).
  const py = async (xs: tf.Tensor, ys: tf.Tensor) => Array.from(await tf.sum(tf.mul(forward(xs), ys), 1).data());
  const phiOf = async (xs: tf.Tensor, ys: tf.Tensor) => {
    const p = await py(xs, ys);
    return { phi: perExampleGradients(forward, losses.categorical, xs, ys, vars).map((g, i) => project(g).map((v) => -v / (1 - p[i]!))), p };
  };
  const train = await phiOf(x, y);
  const query = await phiOf(qx, qy);
  const K = Array.from({ length: D }, (_, a) => Array.from({ length: D }, (_, b) => train.phi.reduce((s, row) => s + row[a]! * row[b]!, 0)));
  // trak()'s default: the mean diagonal of Phi^T Phi (docs/evaluation.md, the LDS lambda sweep).
  const lam = lambda ?? K.reduce((s, row, a) => s + row[a]!, 0) / D;
  K.forEach((row, a) => (row[a]! += lam));
  const inv = invert(K);
  model.dispose();
  return train.phi.map((phiI, i) =>
    query.phi.map((phiQ) => {
      let s = 0;
      for (let a = 0; a < D; a++) for (let b = 0; b < D; b++) s += phiQ[a]! * inv[a]![b]! * phiI[b]!;
      return s * (1 - train.p[i]!);
    }),
  );
}

const steps = (dir: string) => [3, 7].map((s) => join(dir, `step-${String(s).padStart(9, '0')}`));

describe('TRAK from checkpoints', () => {
  it('equals a brute-force TRAK, averaged over checkpoints and ensembled over runs', async () => {
    const dirs = [await trainRun(3), await trainRun(11)];
    const dim = 3;
    for (const lambda of [null, 0.05]) {
      const expected = new Float64Array(N * Q);
      for (const [r, dir] of dirs.entries()) {
        for (const path of steps(dir)) {
          // Run r projects with seed 7 + 1000 r (TrakOptions.seed).
          const s = await bruteCheckpoint(path, dim, 7 + 1000 * r, lambda);
          s.forEach((row, i) => row.forEach((v, j) => (expected[i * Q + j]! += v / 2 / dirs.length)));
        }
      }
      const result = await trak({
        runs: dirs,
        train: { xs: x, ys: y, ids },
        queries: { xs: qx, ys: qy },
        dim,
        seed: 7,
        k: 3,
        batchSize: 6,
        matrix: true,
        ...(lambda === null ? {} : { lambda }),
      });
      expect(result.runs.map((r) => r.map((c) => c.step))).toEqual([[3, 7], [3, 7]]);
      expect(result.runs[0]![0]!.dim).toBe(3 * 3 + 3 * 3);
      if (lambda !== null) expect(result.runs[0]![0]!.lambda).toBe(lambda);
      expectClose(result.matrix!, expected, 1e-4);
      // Top-k lists agree with the matrix.
      result.queries.forEach((query, j) => {
        const ranked = ids.map((id, i) => ({ id, score: expected[i * Q + j]! })).sort((a, b) => b.score - a.score);
        expect(query.proponents.map((p) => p.id)).toEqual(ranked.filter((r) => r.score > 0).slice(0, 3).map((r) => r.id));
        expect(query.opponents.map((p) => p.id)).toEqual(ranked.filter((r) => r.score < 0).reverse().slice(0, 3).map((r) => r.id));
      });
    }
    // One run given as checkpoints equals runs: [dir].
    const one = await trak({ checkpoints: dirs[0]!, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, dim, seed: 7, matrix: true });
    const asRuns = await trak({ runs: [steps(dirs[0]!)], train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, dim, seed: 7, matrix: true });
    expectClose(one.matrix!, asRuns.matrix!, 1e-6);
    // The default seed 0 (which tf.js alone treats as unseeded) gives the same scores every call.
    const first = await trak({ checkpoints: dirs[0]!, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, dim, matrix: true });
    const second = await trak({ checkpoints: dirs[0]!, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, dim, matrix: true });
    expect(Array.from(second.matrix!)).toEqual(Array.from(first.matrix!));
  });

  it('holds no tensors after it returns', async () => {
    const dir = await trainRun(5);
    const call = () => trak({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, dim: 4 });
    await call();
    const before = tf.memory().numTensors;
    await call();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('bad options give InrunError naming the field', async () => {
    const dir = await trainRun(5);
    const base = { train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy } };
    const cases: [Record<string, unknown>, string][] = [
      [{ checkpoints: dir, dim: 0 }, 'dim'],
      [{ checkpoints: dir, dim: 2.5 }, 'dim'],
      [{ checkpoints: dir, lambda: -1 }, 'lambda'],
      [{ checkpoints: dir, lambda: Number.NaN }, 'lambda'],
      [{ checkpoints: dir, k: 0 }, 'k'],
      [{ checkpoints: dir, batchSize: -3 }, 'batchSize'],
      [{ checkpoints: dir, output: 'logit' }, 'output'],
      [{ checkpoints: dir, seed: 0.5 }, 'seed'],
      [{ checkpoints: dir, seed: -1 }, 'seed'],
      [{ checkpoints: dir, sketches: 'always' }, 'sketches'],
      [{ checkpoints: dir, runs: [dir] }, 'runs'],
      [{}, 'runs'],
      [{ runs: [] }, 'runs'],
      [{ runs: [join(dir, 'nowhere')] }, 'runs[0]'],
    ];
    for (const [extra, field] of cases) {
      const error = await trak({ ...base, ...extra } as never).catch((e: unknown) => e);
      expect(error, field).toBeInstanceOf(InrunError);
      expect(error).toMatchObject({ field, code: expect.stringMatching(/invalid_option|bad_checkpoint/) as unknown });
    }
    // A singular kernel (more projected dimensions than rows, lambda 0) names lambda.
    await expect(trak({ ...base, checkpoints: dir, dim: 32, lambda: 0 })).rejects.toMatchObject({ field: 'lambda' });
  });
});
