import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, parquetSink, readSourceInfluence, sourceValues, sqliteSink, untrac, writeSourceInfluence, type UntracOptions } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { rng, weightsOf } from './helpers.js';

// A tiny 3-class task whose sources differ on purpose: "a" and "b" hold classes 0 and 1, "c" is the
// only source with class 2. The target is class-2 rows, so leaving "c" out obviously matters most.

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const DIM = 4;
const CENTRES = [
  [2, 0, 0, 0],
  [0, 2, 0, 0],
  [0, 0, 2, 0],
];

function rows(classes: readonly number[], n: number, seed: number): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  const random = rng(seed);
  const labels = Array.from({ length: n }, (_, i) => classes[i % classes.length]!);
  const xs = labels.flatMap((c) => CENTRES[c]!.map((m) => m + (random() - 0.5) * 2));
  return { xs: tf.tensor2d(xs, [n, DIM]), ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 3) as tf.Tensor2D };
}

const sources = { a: rows([0, 1], 40, 1), b: rows([0, 1], 40, 2), c: rows([2], 20, 3) };
const target = rows([2], 16, 4);
const names = ['a', 'b', 'c'] as const;

function build(): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 8, activation: 'tanh', inputShape: [DIM], kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  return model;
}

/** Trains on the named sources for a fixed number of steps (same count whatever is left out), seeded batches. */
async function train(model: tf.LayersModel, keep: readonly string[], steps = 60): Promise<void> {
  const xs = tf.concat(keep.map((s) => sources[s as keyof typeof sources].xs));
  const ys = tf.concat(keep.map((s) => sources[s as keyof typeof sources].ys));
  const random = rng(9);
  for (let step = 0; step < steps; step++) {
    const idx = tf.tensor1d(Array.from({ length: 16 }, () => Math.floor(random() * xs.shape[0]!)), 'int32');
    const [bx, by] = [tf.gather(xs, idx), tf.gather(ys, idx)];
    await model.trainOnBatch(bx, by);
    tf.dispose([idx, bx, by]);
  }
  tf.dispose([xs, ys]);
}

const targetLoss = (model: tf.LayersModel) => tf.tidy(() => tf.mean(tf.metrics.categoricalCrossentropy(target.ys, model.predict(target.xs) as tf.Tensor)).dataSync()[0]!);

const argmax = (v: Record<string, number>) => Object.entries(v).sort((x, y) => y[1] - x[1])[0]![0];

describe('untrac', () => {
  let model: tf.Sequential;
  const options = (extra: Partial<UntracOptions> = {}): UntracOptions => ({
    sources,
    targets: { target },
    optimizer: () => tf.train.adam(0.01),
    batchSize: 4,
    progress: false,
    ...extra,
  });

  beforeAll(async () => {
    model = build();
    await train(model, names);
  });

  it('leaves the weights and the model optimizer state bit-identical, and no tensors behind', async () => {
    const weights = weightsOf(model).map((w) => Float32Array.from(w));
    const state = (await model.optimizer.getWeights()).map((w) => ({ name: w.name, data: Float32Array.from(w.tensor.dataSync()) }));
    await untrac(model, options()); // warm-up: first-call caches
    const before = tf.memory().numTensors;
    await untrac(model, options());
    await untrac(model, options({ method: 'untrac-inv' }));
    expect(tf.memory().numTensors).toBe(before);
    expect(weightsOf(model)).toEqual(weights);
    const after = (await model.optimizer.getWeights()).map((w) => ({ name: w.name, data: Float32Array.from(w.tensor.dataSync()) }));
    expect(after).toEqual(state);
    expect(state.length).toBeGreaterThan(0);
  });

  it('gives timers a turn while it ascends (a queued job renews its lock on a timer)', async () => {
    let ticks = 0;
    const marks: number[] = [];
    const timer = setInterval(() => ticks++, 1);
    try {
      await untrac(model, options({ sources: { c: sources.c }, batchSize: 1, onProgress: () => marks.push(ticks) }));
    } finally {
      clearInterval(timer);
    }
    expect(marks.length).toBeGreaterThanOrEqual(20);
    expect(marks.at(-1)! - marks[0]!).toBeGreaterThan(0);
  });

  it('ascends: the unlearned source own loss rises, and the influence says so', async () => {
    const r = await untrac(model, options({ sources: { c: sources.c }, targets: { c: sources.c } }));
    const row = r.rows[0]!;
    expect(row.lossAfter).toBeGreaterThan(row.lossBefore * 1.5);
    expect(row.influence).toBeCloseTo(row.lossAfter - row.lossBefore, 10);
    expect(row.steps).toBe(5);
    expect(row.stopped).toBeNull();
  });

  it('ranks the source whose removal matters (the only class-2 source) first, like leave-source-out retraining', async () => {
    // Ground truth: retrain from the same initial weights without each source, same step count.
    const full = targetLoss(model);
    const truth: Record<string, number> = {};
    for (const left of names) {
      const retrained = build();
      await train(retrained, names.filter((s) => s !== left));
      truth[left] = targetLoss(retrained) - full;
      retrained.dispose();
    }
    expect(argmax(truth)).toBe('c');
    const forward = await untrac(model, options());
    // UnTrac-Inv's default batch: the whole target (16 rows), 5 steps.
    const wholeTarget = Object.fromEntries(Object.entries(options({ method: 'untrac-inv' })).filter(([k]) => k !== 'batchSize')) as unknown as UntracOptions;
    const inverse = await untrac(model, wholeTarget);
    expect(argmax(forward.influence['target']!)).toBe('c');
    expect(argmax(inverse.influence['target']!)).toBe('c');
    // Both say c helped the class-2 target (positive), by far the most.
    expect(forward.influence['target']!['c']).toBeGreaterThan(0);
    expect(inverse.influence['target']!['c']).toBeGreaterThan(0);
    expect(forward.rows.map((r) => `${r.target}/${r.source}/${r.method}`)).toEqual(['target/a/untrac', 'target/b/untrac', 'target/c/untrac']);
    expect(inverse.rows.every((r) => r.method === 'untrac-inv' && r.steps === 5)).toBe(true);
  });

  it('takes tf.data.Datasets of { xs, ys } batches with the same result as tensors', async () => {
    const asDataset = (d: { xs: tf.Tensor; ys: tf.Tensor }) => tf.data.zip({ xs: tf.data.array(tf.unstack(d.xs)), ys: tf.data.array(tf.unstack(d.ys)) }).batch(7);
    const fromTensors = await untrac(model, options({ sources: { c: sources.c }, targets: { target } }));
    const fromDatasets = await untrac(model, options({ sources: { c: asDataset(sources.c) }, targets: { target: asDataset(target) } }));
    expect(fromDatasets.influence).toEqual(fromTensors.influence);
  });

  it('reports progress after every step, and stops a diverging ascent with a flag instead of NaN', async () => {
    const seen: number[] = [];
    const r = await untrac(model, options({ onProgress: (p) => seen.push(p.steps), maxSteps: 3 }));
    expect(seen).toEqual([1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9]);
    expect(r.rows.every((x) => x.steps === 3)).toBe(true);

    const exploding = await untrac(model, options({ optimizer: () => tf.train.sgd(Number.POSITIVE_INFINITY) }));
    for (const row of exploding.rows) {
      expect(row.stopped).toBe('non-finite');
      expect(Number.isFinite(row.influence)).toBe(true);
    }
    const capped = await untrac(model, options({ optimizer: () => tf.train.adam(0.5), lossCeiling: 3 }));
    expect(capped.rows.some((row) => row.stopped === 'loss-ceiling')).toBe(true);
    for (const row of capped.rows) expect(Number.isFinite(row.influence)).toBe(true);
  });

  it('stops a diverging ascent on a softmax model with the default ceiling (one below the largest loss tf.js can produce)', async () => {
    // An untrained 3-class softmax model: its loss starts near ln 3, so the old default 10 x (1 + start)
    // lay above -ln(epsilon), the most a clipped cross-entropy can reach: that guard could never fire.
    const fresh = build();
    const largest = -Math.log(tf.backend().epsilon());
    const own = { c: sources.c };
    const r = await untrac(fresh, { sources: own, targets: own, optimizer: () => tf.train.adam(0.5), batchSize: 4, epochs: 20, progress: false });
    const row = r.rows[0]!;
    expect(10 * (1 + row.lossBefore)).toBeGreaterThan(largest);
    expect(row.stopped).toBe('loss-ceiling');
    expect(row.steps).toBeLessThan(100);
    expect(Number.isFinite(row.influence)).toBe(true);
    // The same ascent with the ceiling out of reach runs to its end: the default is what stopped it.
    const unguarded = await untrac(fresh, { sources: own, targets: own, optimizer: () => tf.train.adam(0.5), batchSize: 4, epochs: 20, progress: false, lossCeiling: largest + 1 });
    expect(unguarded.rows[0]!.stopped).toBeNull();
    expect(unguarded.rows[0]!.steps).toBe(100);
    fresh.dispose();
  });

  it('keeps the old default ceiling, 10 x (1 + the start loss), for a regression loss', async () => {
    const regression = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [DIM], kernelInitializer: tf.initializers.glorotNormal({ seed: 7 }) })] });
    regression.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const own = { c: { xs: sources.c.xs, ys: tf.sum(sources.c.xs, 1, true) } };
    const run = (extra: Partial<UntracOptions>) => untrac(regression, { sources: own, targets: own, optimizer: () => tf.train.sgd(0.3), batchSize: 4, epochs: 4, progress: false, ...extra });
    const byDefault = (await run({})).rows[0]!;
    expect(byDefault.stopped).toBe('loss-ceiling');
    const explicit = (await run({ lossCeiling: 10 * (1 + byDefault.lossBefore) })).rows[0]!;
    expect({ ...explicit, seconds: 0 }).toEqual({ ...byDefault, seconds: 0 });
    tf.dispose(own.c.ys);
    regression.dispose();
  });

  it('names the field at fault in bad input', async () => {
    const fails = async (extra: Partial<UntracOptions>, field: string, code: string) => {
      const error = await untrac(model, options(extra)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InrunError);
      expect((error as InrunError).field).toBe(field);
      expect((error as InrunError).code).toBe(code);
    };
    const empty = { xs: tf.zeros([0, DIM]), ys: tf.zeros([0, 3]) };
    await fails({ sources: { empty } }, 'sources.empty.xs', 'invalid_input');
    await fails({ sources: { wide: { xs: tf.zeros([3, DIM + 1]), ys: tf.zeros([3, 3]) } } }, 'sources.wide.xs', 'shape_mismatch');
    await fails({ sources: { short: { xs: tf.zeros([3, DIM]), ys: tf.zeros([2, 3]) } } }, 'sources.short.ys[0]', 'shape_mismatch');
    await fails({ targets: {} }, 'targets', 'invalid_option');
    await fails({ optimizer: tf.train.adam(0.01) as unknown as () => tf.Optimizer }, 'optimizer', 'invalid_option');
    await fails({ optimizer: () => model.optimizer }, 'optimizer', 'invalid_option');
    await fails({ method: 'untrac-reverse' as 'untrac' }, 'method', 'invalid_option');
    await fails({ batchSize: 0 }, 'batchSize', 'invalid_option');
    tf.dispose(Object.values(empty));
  });
});

describe('sourceValues', () => {
  it('sums a run values per source, with value and data shares; the class-2 source helps the class-2 target most; UnTrac rows stored beside the run', async () => {
    const model = build();
    const xs = tf.concat(names.map((s) => sources[s].xs));
    const ys = tf.concat(names.map((s) => sources[s].ys));
    const sourceOf = names.flatMap((s) => Array.from({ length: sources[s].xs.shape[0] }, () => s));
    const ids = sourceOf.map((_, i) => `e${i}`);
    const examples = ids.map((id, i) => ({ id, source: sourceOf[i]! }));
    const dir = mkdtempSync(join(tmpdir(), 'inrun-untrac-'));
    const store = { sqlite: join(dir, 'runs.sqlite'), parquet: join(dir, 'pq') };
    const run = attach(model, { targets: { target }, methods: ['shapley1', 'tracin_self'], examples, seed: 3, sinks: [sqliteSink(store.sqlite), parquetSink(store.parquet)] });
    await run.fit(xs, ys, { ids, epochs: 4, batchSize: 16, verbose: 0 });
    const scores = await run.close();
    const values = sourceValues(scores, examples);
    expect(Object.keys(values.table)).toEqual(['shapley1:target']); // tracin_self has no target
    const column = scores.columns['shapley1:target']!;
    for (const s of names) {
      const mine = scores.ids.flatMap((id, i) => (sourceOf[ids.indexOf(id as string)] === s ? [column[i]!] : []));
      const v = values.table['shapley1:target']![s]!;
      expect(v.examples).toBe(mine.length);
      expect(v.sum).toBeCloseTo(mine.reduce((a, b) => a + b, 0), 5);
      expect(v.mean).toBeCloseTo(v.sum / v.examples, 8);
      expect(v.dataShare).toBeCloseTo(mine.length / 100, 8);
    }
    const shares = values.rows.reduce((s, r) => s + r.valueShare, 0);
    expect(shares).toBeCloseTo(1, 5);
    const sums = Object.fromEntries(names.map((s) => [s, values.table['shapley1:target']![s]!.sum]));
    expect(argmax(sums)).toBe('c');
    // A map from id to source gives the same table; an unknown target is named.
    expect(sourceValues(scores, new Map(examples.map((e) => [e.id, e.source]))).rows).toEqual(values.rows);
    expect(() => sourceValues(scores, examples, { targets: ['val'] })).toThrow(expect.objectContaining({ field: 'targets[0]', code: 'invalid_option' }) as Error);

    // UnTrac's rows stored next to the run, in both stores, and read back as written (two writes accumulate).
    const result = await untrac(model, { sources, targets: { target }, optimizer: () => tf.train.adam(0.01), batchSize: 4, progress: false });
    for (const where of [{ sqlite: store.sqlite }, { parquet: store.parquet }]) {
      writeSourceInfluence(result.rows, { runId: run.id, ...where });
      writeSourceInfluence(result.rows.slice(0, 1), { runId: run.id, ...where });
      const back = await readSourceInfluence({ runId: run.id, ...where });
      expect(back.map(({ runId: _r, writtenAt: _w, ...row }) => row)).toEqual([...result.rows, result.rows[0]]);
      expect(back.every((r) => r.runId === run.id)).toBe(true);
      expect(await readSourceInfluence({ runId: 'other', ...where })).toEqual([]);
    }
    expect(() => writeSourceInfluence(result.rows, { runId: run.id })).toThrow(expect.objectContaining({ field: 'store' }) as Error);
    tf.dispose([xs, ys]);
    model.dispose();
  });
});
