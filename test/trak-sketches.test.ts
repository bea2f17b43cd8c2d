// trak() from the run's stored in-run sketches: equal to a brute-force TRAK of the gradients the run sketched (at the weights of the step each example was last seen), with the same projection.
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, loadCheckpoint, trak } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, layerVariables, losses, perExampleGradients } from './helpers.js';
import { denseProjection, invert } from './trak-brute.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const N = 40;
const Q = 3;
const SIZE = 3;
const SEED = 5;
const x = tf.randomNormal([N, 12], 0, 1, 'float32', 21);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 7) % 3), 'int32'), 3);
const qx = tf.randomNormal([Q, 12], 0, 1, 'float32', 22);
const qy = tf.oneHot(tf.tensor1d([0, 1, 2], 'int32'), 3);
const ids = Array.from({ length: N }, (_, i) => `t${i}`);
const at = (dir: string, step: number) => join(dir, `step-${String(step).padStart(9, '0')}`);

/** Two epochs of 5 shuffled steps at lr 0.3 with sketches, a checkpoint after every step; and the initial weights. */
async function trainRun(): Promise<{ dir: string; initial: tf.Tensor[] }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'inrun-trak-sketch-')), 'ckpt');
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 6, activation: 'tanh', inputShape: [12], kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.3), loss: 'categoricalCrossentropy' });
  const initial = model.getWeights().map((w) => w.clone());
  const run = attach(model, { checkpoints: { dir, everySteps: 1 }, sketch: { size: SIZE, seed: SEED }, seed: 9 });
  await run.fit(x, y, { ids, epochs: 2, batchSize: 8, verbose: 0 });
  await run.close();
  return { dir, initial };
}

/**
 * Brute-force TRAK at checkpoint `path` from what the run sketched: example i's loss gradient at the
 * weights before the step it was last seen in (sketches.json `steps`), one backward per example, the
 * dense projection of (size, seed); p_i and the queries' margin gradients at the checkpoint's weights.
 */
async function bruteFromSketches(dir: string, path: string, initial: tf.Tensor[], output: 'margin' | 'loss', lambda: number | null): Promise<number[][]> {
  const meta = JSON.parse(readFileSync(join(path, 'sketches.json'), 'utf8')) as { ids: string[]; steps: number[] };
  const model = await loadCheckpoint(path);
  const vars = layerVariables(model);
  const forward = (t: tf.Tensor) => model.apply(t) as tf.Tensor;
  const P = await denseProjection(model, SIZE, SEED);
  const D = P[0]!.length;
  const project = (g: Float64Array) => Array.from({ length: D }, (_, a) => g.reduce((s, v, r) => s + v * P[r]![a]!, 0));
  const py = async (xs: tf.Tensor, ys: tf.Tensor) => Array.from(await tf.sum(tf.mul(forward(xs), ys), 1).data());
  const pTrain = await py(x, y);
  const pQuery = await py(qx, qy);
  const qGrad = perExampleGradients(forward, losses.categorical, qx, qy, vars);
  const phiQ = qGrad.map((g, j) => project(g).map((v) => (output === 'margin' ? -v / (1 - pQuery[j]!) : -v)));
  const weights = model.getWeights().map((w) => w.clone());
  const phi: number[][] = [];
  for (let i = 0; i < N; i++) {
    const step = meta.steps[meta.ids.indexOf(ids[i]!)]!;
    const before = step === 0 ? initial : (await loadCheckpoint(at(dir, step - 1))).getWeights();
    model.setWeights(before);
    const [xi, yi] = [tf.slice(x, i, 1), tf.slice(y, i, 1)];
    const g = perExampleGradients(forward, losses.categorical, xi, yi, vars)[0]!;
    phi.push(project(g).map((v) => (output === 'margin' ? -v / (1 - pTrain[i]!) : -v)));
  }
  model.setWeights(weights);
  const K = Array.from({ length: D }, (_, a) => Array.from({ length: D }, (_, b) => phi.reduce((s, row) => s + row[a]! * row[b]!, 0)));
  // trak()'s default: the mean diagonal of Phi^T Phi (docs/evaluation.md, the LDS lambda sweep).
  const lam = lambda ?? K.reduce((s, row, a) => s + row[a]!, 0) / D;
  K.forEach((row, a) => (row[a]! += lam));
  const inv = invert(K);
  model.dispose();
  return phi.map((phiI, i) =>
    phiQ.map((q) => {
      let s = 0;
      for (let a = 0; a < D; a++) for (let b = 0; b < D; b++) s += q[a]! * inv[a]![b]! * phiI[b]!;
      return s * (output === 'margin' ? 1 - pTrain[i]! : 1);
    }),
  );
}

describe('TRAK from the stored in-run sketches', () => {
  it('equals a brute-force TRAK of the sketched gradients (same projection), and differs from recomputing them', async () => {
    const { dir, initial } = await trainRun();
    const checkpoints = [at(dir, 4), at(dir, 9)];
    for (const [output, lambda] of [['margin', null], ['margin', 0.05], ['loss', null]] as const) {
      const expected = new Float64Array(N * Q);
      for (const path of checkpoints) {
        const s = await bruteFromSketches(dir, path, initial, output, lambda);
        s.forEach((row, i) => row.forEach((v, j) => (expected[i * Q + j]! += v / checkpoints.length)));
      }
      const options = { checkpoints, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, output, matrix: true, batchSize: 7, ...(lambda === null ? {} : { lambda }) };
      const stored = await trak(options);
      expect(stored.runs[0]!.map((c) => c.from)).toEqual(['sketches', 'sketches']);
      expect(stored.runs[0]![0]!.dim).toBe(SIZE * SIZE + SIZE * 3);
      expectClose(stored.matrix!, expected, 1e-4);
      // Ignoring the sketches (the same projection: trak's seed s draws from 2 s + 1 = SEED, dim SIZE) recomputes the
      // gradients at the checkpoints' weights: not what the run sketched, so far from the brute force above.
      const recomputed = await trak({ ...options, sketches: 'recompute', dim: SIZE, seed: (SEED - 1) / 2 });
      expect(recomputed.runs[0]!.map((c) => c.from)).toEqual(['checkpoint', 'checkpoint']);
      let scale = 0;
      let worst = 0;
      expected.forEach((v, i) => {
        scale = Math.max(scale, Math.abs(v));
        worst = Math.max(worst, Math.abs(recomputed.matrix![i]! - v));
      });
      expect(worst / scale).toBeGreaterThan(1e-2);
    }
  });

  it('refuses sketches that do not match: other layers, or none of the training ids', async () => {
    const { dir } = await trainRun();
    const base = { checkpoints: [at(dir, 9)], train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy } };
    await expect(trak({ ...base, layers: 'last' })).rejects.toMatchObject({ field: 'layers', code: 'bad_checkpoint' });
    const other = join(mkdtempSync(join(tmpdir(), 'inrun-trak-sketch-ids-')), 'step-000000009');
    cpSync(at(dir, 9), other, { recursive: true });
    const meta = JSON.parse(readFileSync(join(other, 'sketches.json'), 'utf8')) as { ids: string[] };
    writeFileSync(join(other, 'sketches.json'), JSON.stringify({ ...meta, ids: meta.ids.map((id) => `other-${id}`) }));
    await expect(trak({ ...base, checkpoints: [other] })).rejects.toMatchObject({ field: 'train.ids', code: 'bad_checkpoint' });
    // With layers: 'last' and sketches: 'recompute' the same checkpoint scores from its weights.
    const last = await trak({ ...base, layers: 'last', sketches: 'recompute' });
    expect(last.runs[0]![0]!.from).toBe('checkpoint');
  });
});
