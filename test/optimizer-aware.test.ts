import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { embeddingModel, mlp, type Case } from './cases.js';
import { dot, expectClose, layerVariables, perExampleGradients, targetGradient } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const LR = 0.01;
type Kind = 'adam' | 'rmsprop' | 'adagrad' | 'nesterov';

function optimizerOf(kind: Kind): tf.Optimizer {
  switch (kind) {
    case 'adam':
      return tf.train.adam(LR, 0.8, 0.95);
    case 'rmsprop':
      return tf.train.rmsprop(LR, 0.7);
    case 'adagrad':
      return tf.train.adagrad(LR, 0.2);
    case 'nesterov':
      return tf.train.momentum(LR, 0.6, true);
  }
}

function recompile(c: Case, kind: Kind): Case {
  c.model.compile({ optimizer: optimizerOf(kind), loss: c.model.loss as string });
  return c;
}

/** Optimizer state per slot name, read through tf.js' public `getWeights()`. */
async function slots(optimizer: tf.Optimizer): Promise<Map<string, Float64Array>> {
  const named = await optimizer.getWeights();
  return new Map(named.map((w) => [w.name, Float64Array.from(w.tensor.dataSync())]));
}

/**
 * The reference factor Q per parameter (relative to lr), written from each optimizer's published
 * update rule with the state read before the step; `t` is the 1-based step number (Adam's bias correction).
 */
function referenceFactors(kind: Kind, state: Map<string, Float64Array>, vars: tf.Variable[], grad: Float64Array, t: number): Float64Array {
  const q = new Float64Array(grad.length);
  let at = 0;
  for (const v of vars) {
    for (let j = 0; j < v.size; j++) {
      const g2 = grad[at + j]! ** 2;
      if (kind === 'adam') {
        const vt = 0.95 * (state.get(`${v.name}/v`)?.[j] ?? 0) + 0.05 * g2;
        q[at + j] = (0.2 / (1 - 0.8 ** t)) / (Math.sqrt(vt / (1 - 0.95 ** t)) + 1e-7);
      } else if (kind === 'rmsprop') {
        const ms = 0.7 * (state.get(`${v.name}/rms`)?.[j] ?? 0) + 0.3 * g2;
        q[at + j] = 1 / Math.sqrt(ms + 1e-7);
      } else if (kind === 'adagrad') {
        q[at + j] = 1 / Math.sqrt((state.get(`${v.name}/accumulator`)?.[j] ?? 0.2) + g2 + 1e-7);
      } else {
        q[at + j] = 1.6;
      }
    }
    at += v.size;
  }
  return q;
}

/**
 * Two plain steps (so the optimizer has state), then one attributed step with `update: 'optimizer'`,
 * checked against one backward pass per example and the reference factors.
 */
async function checkAgainstBruteForce(c: Case, kind: Kind, methods: ('shapley1' | 'tracin_we')[]): Promise<void> {
  recompile(c, kind);
  for (let i = 0; i < 2; i++) await c.model.trainOnBatch(c.x, c.y);
  const n = c.x.shape[0]!;
  const forward = (x: tf.Tensor) => c.model.apply(x, { training: true }) as tf.Tensor;
  const check = async (vars: tf.Variable[]) => {
    const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
    const batch = g.reduce((s, gi) => s.map((v, j) => v + gi[j]! / n), new Float64Array(g[0]!.length));
    const q = referenceFactors(kind, await slots(c.model.optimizer), vars, batch, 3);
    const expected = Object.fromEntries(
      Object.entries(c.targets).map(([k, t]) => {
        const gT = targetGradient(forward, c.loss, t.xs, t.ys, vars).map((v, j) => v * q[j]!);
        return [k, g.map((gi) => (LR / n) * dot(gT, gi))];
      }),
    );
    return expected;
  };
  const all = await check(layerVariables(c.model));
  const emb = c.embeddingLayers ? await check(layerVariables(c.model, c.embeddingLayers)) : null;
  const run = attach(c.model, { targets: c.targets, methods, update: 'optimizer' });
  expect(run.info.optimizer.attribution).toBe('optimizer-aware');
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  await run.step(
    Array.from({ length: n }, (_, i) => i),
    () => c.model.trainOnBatch(c.x, c.y),
  );
  await run.close();
  for (const name of Object.keys(c.targets)) {
    if (methods.includes('shapley1')) expectClose(records[0]!.columns[`shapley1:${name}`]!, all[name]!, 1e-3);
    if (methods.includes('tracin_we')) expectClose(records[0]!.columns[`tracin_we:${name}`]!, emb![name]!, 1e-3);
  }
}

/** `<g_T, w_before - w_after>` over every weight, with tf.js' own update. */
function realChange(vars: tf.Variable[], before: Float32Array[], gT: Float64Array): number {
  let at = 0;
  let s = 0;
  vars.forEach((v, k) => {
    const after = v.dataSync();
    for (let j = 0; j < v.size; j++) s += gT[at + j]! * (before[k]![j]! - after[j]!);
    at += v.size;
  });
  return s;
}

describe("update: 'optimizer'", () => {
  for (const kind of ['adam', 'rmsprop', 'adagrad', 'nesterov'] as const) {
    it(`${kind}: equals the brute-force value lr <Q g_T, G_i> with Q from the optimizer's state (dense layers, two targets)`, async () => {
      await checkAgainstBruteForce(mlp(['relu', 'softmax'], true), kind, ['shapley1']);
    });
  }

  it('adam: embedding layers, shapley1 and tracin_we; per-token scores add up to tracin_we', async () => {
    await checkAgainstBruteForce(embeddingModel(), 'adam', ['shapley1', 'tracin_we']);
    const c = recompile(embeddingModel(), 'adam');
    const run = attach(c.model, { targets: c.targets, methods: ['tracin_we'], update: 'optimizer', tokens: { topK: 100 } });
    for (let i = 0; i < 3; i++) await run.step([0, 1, 2, 3, 4, 5, 6, 7], () => c.model.trainOnBatch(c.x, c.y));
    const scores = await run.close();
    const tokens = scores.tokens['tracin_we:val']!;
    scores.columns['tracin_we:val']!.forEach((v, i) => expect(tokens[i]!.reduce((s, t) => s + t.score, 0)).toBeCloseTo(v, 6));
  });

  it("adds up, over the batch, to the target loss's first-order change under tf.js' own update (RMSProp and Adagrad every step, Adam at its first step)", async () => {
    for (const [kind, steps] of [
      ['rmsprop', 3],
      ['adagrad', 3],
      ['adam', 1],
    ] as const) {
      const c = recompile(mlp(['tanh', 'softmax'], true), kind);
      const vars = layerVariables(c.model);
      const forward = (x: tf.Tensor) => c.model.apply(x, { training: true }) as tf.Tensor;
      const run = attach(c.model, { targets: { val: c.targets['val']! }, methods: ['shapley1'], update: 'optimizer' });
      const records: StepRecord[] = [];
      run.records$.subscribe((r) => records.push(r));
      for (let s = 0; s < steps; s++) {
        const gT = targetGradient(forward, c.loss, c.targets['val']!.xs, c.targets['val']!.ys, vars);
        const before = vars.map((v) => Float32Array.from(v.dataSync()));
        await run.step([0, 1, 2, 3, 4, 5, 6], () => c.model.trainOnBatch(c.x, c.y));
        await run.flush();
        const predicted = records[s]!.columns['shapley1:val']!.reduce((a, b) => a + b, 0);
        expect(predicted).toBeCloseTo(realChange(vars, before, gT), 5);
      }
      await run.close();
    }
  });

  it('second order with the optimizer update: closer to the real change of the target loss than first order', async () => {
    const c = mlp(['tanh', 'softmax'], true);
    c.model.compile({ optimizer: tf.train.rmsprop(0.0125, 0.7), loss: 'categoricalCrossentropy' });
    const forward = (x: tf.Tensor) => c.model.apply(x, { training: true }) as tf.Tensor;
    const targetLoss = () => tf.tidy(() => tf.sum(c.loss(c.targets['val']!.ys, forward(c.targets['val']!.xs))).dataSync()[0]!);
    const run = attach(c.model, { targets: { val: c.targets['val']! }, methods: ['shapley1', 'shapley2'], update: 'optimizer' });
    const records: StepRecord[] = [];
    run.records$.subscribe((r) => records.push(r));
    const before = targetLoss();
    await run.step([0, 1, 2, 3, 4, 5, 6], () => c.model.trainOnBatch(c.x, c.y));
    await run.close();
    const real = before - targetLoss();
    const sum = (k: string) => records[0]!.columns[k]!.reduce((a, b) => a + b, 0);
    const errFirst = Math.abs(sum('shapley1:val') - real);
    const errSecond = Math.abs(sum('shapley2:val') - real);
    // Measured: first-order error shrinks as lr^2, second-order as lr^3 (10x apart at this lr).
    expect(errSecond).toBeLessThan(errFirst / 5);
  });

  it('rejects optimizers it cannot follow, and bad values', () => {
    const c = mlp(['relu', 'softmax'], true);
    c.model.compile({ optimizer: tf.train.adadelta(0.1), loss: 'categoricalCrossentropy' });
    expect(() => attach(c.model, { targets: c.targets, update: 'optimizer' })).toThrow(/update.*Adadelta is not supported/s);
    expect(() => attach(c.model, { targets: c.targets, update: 'adam' as 'sgd' })).toThrow(InrunError);
    expect(() => attach(c.model, { targets: c.targets, update: 'adam' as 'sgd' })).toThrow(/update.*'sgd' or 'optimizer'/s);
  });
});
