// Every method of one layer kind against brute force (one backward per example): the suite each kind's test file runs.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, loadCheckpoint, readCheckpointInfo, tracin, type StepRecord, type TracInResult } from 'inrun';
import { describe, expect, it } from 'vitest';
import { checkOneStep, type Case } from './cases.js';
import { dot, expectClose, layerVariables, perExampleGradients, targetGradient, weightsOf } from './helpers.js';

const LR = 0.05;

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `row${i}`);
}

function forwardOf(model: tf.LayersModel): (x: tf.Tensor) => tf.Tensor {
  return (x) => model.apply(x, { training: true }) as tf.Tensor;
}

function setSgd(model: tf.LayersModel, lr: number): void {
  model.compile({ optimizer: tf.train.sgd(lr), loss: model.loss as string });
}

/** One attributed step in a custom loop; returns its record. */
async function attributedStep(c: Case, options: Parameters<typeof attach>[1]): Promise<StepRecord> {
  const run = attach(c.model, { targets: c.targets, ...options });
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  await run.step(ids(c.x.shape[0]!), () => c.model.trainOnBatch(c.x, c.y));
  await run.close();
  expect(records).toHaveLength(1);
  return records[0]!;
}

/**
 * `shapley2 - shapley1 = -(lr/2) <G_i, H_T u>` with u = lr * sum_i G_i, H_T u from central differences
 * of the brute-force target gradient (docs/methods.md, "Second order").
 */
async function checkSecondOrder(c: Case): Promise<void> {
  setSgd(c.model, LR);
  const n = c.x.shape[0]!;
  const [name, target] = Object.entries(c.targets)[0]!;
  const forward = forwardOf(c.model);
  const vars = layerVariables(c.model);
  const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
  const u = new Float64Array(g[0]!.length);
  for (const gi of g) gi.forEach((v, j) => (u[j]! += (LR / n) * v));
  const w0 = vars.map((v) => v.clone());
  const gradAt = (eps: number) => {
    let at = 0;
    vars.forEach((v, k) => {
      v.assign(tf.tidy(() => tf.add(w0[k]!, tf.tensor(Float32Array.from(u.subarray(at, at + v.size), (q) => q * eps), v.shape))));
      at += v.size;
    });
    return targetGradient(forward, c.loss, target.xs, target.ys, vars);
  };
  // The secant inrun takes when double backward is unavailable, grad(w) - grad(w - u), and central
  // differences around w for the exact product; both equal H_T u on a model quadratic along u.
  const secant = [gradAt(0), gradAt(-1)];
  const central = [gradAt(0.5), gradAt(-0.5)];
  vars.forEach((v, k) => v.assign(w0[k]!));
  tf.dispose(w0);
  const run = attach(c.model, { targets: { [name]: target }, methods: ['shapley1', 'shapley2'] });
  const [p, m] = run.info.hvp === 'finite-difference' ? secant : central;
  const hu = p!.map((v, j) => v - m![j]!);
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  await run.step(ids(n), () => c.model.trainOnBatch(c.x, c.y));
  await run.close();
  const rec = records[0]!;
  const term = Array.from(rec.columns[`shapley2:${name}`]!, (v, i) => v - rec.columns[`shapley1:${name}`]![i]!);
  expectClose(term, g.map((gi) => -(LR / 2) * dot(gi.map((v) => v / n), hu)), 2e-3);
}

/** Adam (b1 0.8, b2 0.95) after two plain steps; Q from its state, as tf.js' Adam applies it at step 3. */
async function checkOptimizerAware(c: Case): Promise<void> {
  const lr = 0.01;
  c.model.compile({ optimizer: tf.train.adam(lr, 0.8, 0.95), loss: c.model.loss as string });
  for (let i = 0; i < 2; i++) await c.model.trainOnBatch(c.x, c.y);
  const n = c.x.shape[0]!;
  const forward = forwardOf(c.model);
  const vars = layerVariables(c.model);
  const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
  const state = new Map((await c.model.optimizer.getWeights()).map((w) => [w.name, w.tensor.dataSync()]));
  const q = new Float64Array(g[0]!.length);
  let at = 0;
  for (const v of vars) {
    const second = state.get(`${v.name}/v`);
    for (let j = 0; j < v.size; j++) {
      const grad = g.reduce((s, gi) => s + gi[at + j]! / n, 0);
      const vt = 0.95 * (second?.[j] ?? 0) + 0.05 * grad ** 2;
      q[at + j] = 0.2 / (1 - 0.8 ** 3) / (Math.sqrt(vt / (1 - 0.95 ** 3)) + 1e-7);
    }
    at += v.size;
  }
  const expected = Object.fromEntries(
    Object.entries(c.targets).map(([k, t]) => {
      const gT = targetGradient(forward, c.loss, t.xs, t.ys, vars).map((v, j) => v * q[j]!);
      return [k, g.map((gi) => (lr / n) * dot(gT, gi))];
    }),
  );
  const rec = await attributedStep(c, { methods: ['shapley1'], update: 'optimizer' });
  for (const name of Object.keys(c.targets)) expectClose(rec.columns[`shapley1:${name}`]!, expected[name]!, 1e-3);
}

/** Brute-force TracInCP over the checkpoints in `dir`: scores[train][query] and self-influence. */
async function bruteTracIn(dir: string, c: Case, queries: { xs: tf.Tensor; ys: tf.Tensor }) {
  const n = c.x.shape[0]!;
  const scores = Array.from({ length: n }, () => new Array<number>(queries.xs.shape[0]!).fill(0));
  const self = new Array<number>(n).fill(0);
  for (const folder of readdirSync(dir).filter((f) => f.startsWith('step-'))) {
    const path = join(dir, folder);
    const model = await loadCheckpoint(path);
    const lr = readCheckpointInfo(path).learningRate;
    const vars = layerVariables(model);
    const forward = (t: tf.Tensor) => model.apply(t) as tf.Tensor;
    const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
    const gq = perExampleGradients(forward, c.loss, queries.xs, queries.ys, vars);
    g.forEach((gi, i) => {
      gq.forEach((gj, j) => (scores[i]![j]! += lr * dot(gi, gj)));
      self[i]! += lr * dot(gi, gi);
    });
    model.dispose();
  }
  return { scores, self };
}

function expectTracIn(result: TracInResult, expected: { scores: number[][]; self: number[] | null }, names: readonly string[]): void {
  result.queries.forEach((query, j) => {
    const got = new Map([...query.proponents, ...query.opponents].map((p) => [p.id, p.score]));
    const want = expected.scores.map((s) => s[j]!);
    expectClose(names.map((id) => got.get(id) ?? 0), want, 1e-4);
  });
  if (expected.self !== null) expectClose(Array.from(result.selfInfluence!.values), expected.self, 1e-4);
}

/** tracin() from two epoch checkpoints vs brute force, exact and with sketches that keep every side whole. */
async function checkTracIn(c: Case): Promise<void> {
  setSgd(c.model, LR);
  const n = c.x.shape[0]!;
  const names = ids(n);
  const dir = join(mkdtempSync(join(tmpdir(), 'inrun-kind-')), 'ckpt');
  const run = attach(c.model, { checkpoints: { dir, everyEpochs: 1 }, seed: 3 });
  await run.fit(c.x, c.y, { ids: names, epochs: 2, batchSize: Math.ceil(n / 2), verbose: 0 });
  await run.close();
  const queries = Object.values(c.targets)[0]!;
  const expected = await bruteTracIn(dir, c, queries);
  const train = { xs: c.x, ys: c.y, ids: names };
  expectTracIn(await tracin({ checkpoints: dir, train, queries, k: n }), expected, names);
  // A sketch at least as wide as every side of every piece is an identity projection: exact.
  expectTracIn(await tracin({ checkpoints: dir, train, queries, k: n, sketch: { size: 4096 } }), { ...expected, self: null }, names);
}

/** Sketches logged during the run: a full-batch step at lr 0, then tracin from the stored sketches equals exact tracin. */
async function checkRunSketches(c: Case): Promise<void> {
  const optimizer = tf.train.sgd(0);
  c.model.compile({ optimizer, loss: c.model.loss as string });
  const n = c.x.shape[0]!;
  const names = ids(n);
  const dir = join(mkdtempSync(join(tmpdir(), 'inrun-kind-sketch-')), 'ckpt');
  const run = attach(c.model, { sketch: { size: 4096, seed: 1 } });
  await run.step(names, () => c.model.trainOnBatch(c.x, c.y));
  await run.checkpoint(dir);
  await run.close();
  const queries = Object.values(c.targets)[0]!;
  const stored = await tracin({ checkpoints: dir, train: 'sketches', queries, k: n, learningRates: [1] });
  const exact = await tracin({ checkpoints: dir, train: { xs: c.x, ys: c.y, ids: names }, queries, k: n, learningRates: [1] });
  const scores = exact.queries.map((q) => new Map([...q.proponents, ...q.opponents].map((p) => [p.id, p.score])));
  expectTracIn(stored, { scores: names.map((id) => scores.map((m) => m.get(id) ?? 0)), self: null }, names);
}

/** `model.fit` with and without inrun from the same initial weights: every weight bit-identical. */
async function checkBitIdentical(make: () => Case, optimizer: () => tf.Optimizer): Promise<void> {
  const plain = make();
  const attributed = make();
  for (const c of [plain, attributed]) c.model.compile({ optimizer: optimizer(), loss: c.model.loss as string });
  const n = plain.x.shape[0]!;
  const fitArgs = { epochs: 2, batchSize: Math.ceil(n / 2), shuffle: false, verbose: 0 } as const;
  await plain.model.fit(plain.x, plain.y, fitArgs);
  const run = attach(attributed.model, { targets: attributed.targets, methods: ['shapley1', 'tracin_self'] });
  await run.fit(attributed.x, attributed.y, { ...fitArgs, ids: ids(n) });
  await run.close();
  const [a, b] = [weightsOf(plain.model), weightsOf(attributed.model)];
  expect(b.length).toBe(a.length);
  a.forEach((w, i) => expect(Array.from(b[i]!)).toEqual(Array.from(w)));
}

/**
 * Registers the whole suite for one layer kind. `make` builds a fresh case (seeded weights, compiled
 * with SGD); `kind` is the layer kind the model must have covered, and every trainable weight must be.
 */
export function describeEveryMethod(label: string, make: () => Case, kind: string): void {
  describe(`${label}: every method equals brute force`, () => {
    it('covers every trainable parameter', () => {
      const c = make();
      const run = attach(c.model, { targets: c.targets });
      const { covered, coveredParams, trainableParams } = run.info.layers;
      expect(covered.some((l) => l.kind === kind)).toBe(true);
      expect(coveredParams).toBe(trainableParams);
      void run.close();
    });
    for (const ghostPath of ['pairwise', 'materialised', 'auto'] as const) {
      it(`shapley1 and tracin_self, two targets (${ghostPath})`, async () => {
        await checkOneStep(make(), { ghostPath, methods: ['shapley1', 'tracin_self'] });
      });
    }
    it('shapley2: the second-order term is -(lr/2) <G_i, H_T u>', async () => {
      await checkSecondOrder(make());
    });
    it("update: 'optimizer' (Adam): lr <Q g_T, G_i> with Q from the optimizer's state", async () => {
      await checkOptimizerAware(make());
    });
    it('tracin() from checkpoints: exact, and with sketches that keep every side whole', async () => {
      await checkTracIn(make());
    });
    it("sketches logged during the run: tracin({ train: 'sketches' }) equals exact", async () => {
      await checkRunSketches(make());
    });
    for (const [name, optimizer] of [
      ['SGD', () => tf.train.sgd(0.1)],
      ['Adam', () => tf.train.adam(0.01)],
    ] as const) {
      it(`weights bit-identical with and without inrun (${name} fit)`, async () => {
        await checkBitIdentical(make, optimizer);
      });
    }
  });
}
