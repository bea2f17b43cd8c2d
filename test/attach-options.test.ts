// attach() options grouped by concern: defaults applied once, the deprecated flat keys mapped (warned once, refused with their grouped key), bad grouped input named.
import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type AttachOptions, type Sink } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../packages/inrun/src/attach/options.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function tiny() {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return { model, x: tf.randomNormal([2, 3], 0, 1, 'float32', 1), y: tf.oneHot(tf.tensor1d([1, 0], 'int32'), 2) };
}

function attachError(options: AttachOptions): InrunError {
  const { model } = tiny();
  try {
    void attach(model, options).close();
  } catch (e) {
    expect(e).toBeInstanceOf(InrunError);
    return e as InrunError;
  }
  throw new Error('attach accepted the options');
}

/** Process warnings emitted while `work` runs (Node emits them on the next tick). */
async function warningsDuring(work: () => void): Promise<Error[]> {
  const list: Error[] = [];
  const on = (w: Error) => list.push(w);
  process.on('warning', on);
  try {
    work();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', on);
  }
  return list;
}

/** A sink that logs every call: which calls, with how many records, in order. */
function loggingSink(log: string[], failWrites = false): Sink {
  return {
    name: 'log',
    open: () => void log.push('open'),
    writeSteps: (records) => {
      if (failWrites) throw new Error('disk full');
      log.push(`steps:${records.map((r) => r.step).join(',')}`);
    },
    writeScores: (_scores, _run, at) => void log.push(`scores:${at.step}:${at.final}`),
    close: () => void log.push('close'),
  };
}

async function train(options: AttachOptions, steps: number): Promise<string[]> {
  const log: string[] = [];
  const { model, x, y } = tiny();
  const run = attach(model, { ...options, sinks: [loggingSink(log)] });
  for (let s = 0; s < steps; s++) await run.step([2 * s, 2 * s + 1], () => model.trainOnBatch(x, y));
  await run.close();
  tf.dispose([x, y]);
  return log;
}

describe('attach options grouped by concern', () => {
  // First in the file: the warned-about keys are remembered per process (here, per test file).
  it('a deprecated flat key warns once per key, as a DeprecationWarning naming its grouped key', async () => {
    const warnings = await warningsDuring(() => {
      resolveOptions({ sinkErrors: 'continue' });
      resolveOptions({ sinkErrors: 'stop', totalsEvery: 5 });
      resolveOptions({ sinkErrors: 'continue', totalsEvery: 6 });
    });
    const deprecations = warnings.filter((w) => w.name === 'DeprecationWarning');
    expect(deprecations.map((w) => w.message).sort()).toEqual([
      expect.stringMatching(/sinkErrors is deprecated; use delivery\.onError/) as unknown,
      expect.stringMatching(/totalsEvery is deprecated; use delivery\.totalsEvery/) as unknown,
    ]);
    expect(deprecations.every((w) => (w as Error & { code?: string }).code === 'INRUN_FLAT_OPTION')).toBe(true);
    // Grouped keys never warn.
    expect(await warningsDuring(() => resolveOptions({ delivery: { onError: 'continue', timeoutMs: 5, flushEvery: 2, stepRecords: true } }))).toEqual([]);
  });

  it('every default is applied once, as documented', () => {
    const resolved = resolveOptions({ runId: 'r', seed: 1 });
    expect(resolved.delivery).toEqual({ policy: 'block', capacity: 256, onError: 'stop', timeoutMs: 60_000, flushEvery: 32, totalsEvery: 1000, stepRecords: true });
    expect(resolved.tokens).toEqual({ layer: undefined, vocabulary: undefined, topK: 5, ignore: [] });
    expect(resolved.metrics).toBeNull();
    expect(resolved.checkpoints).toBeNull();
    expect(resolved.sketch).toBeNull();
    expect(resolveOptions({ metrics: true }).metrics).toEqual({ meterProvider: null, sourceLimit: 10, attributes: {} });
    expect(resolveOptions({ metrics: { sourceLimit: 3 } }).metrics).toEqual({ meterProvider: null, sourceLimit: 3, attributes: {} });
    expect(resolveOptions({ sketch: { size: 4 } }).sketch).toEqual({ size: 4, seed: 0 });
  });

  it('each flat key resolves exactly as its grouped key', () => {
    const flat = resolveOptions({ runId: 'r', seed: 1, sinkErrors: 'continue', sinkTimeoutMs: 50, flushEvery: 3, totalsEvery: 7, stepRecords: false, delivery: { policy: 'drop' } });
    const grouped = resolveOptions({ runId: 'r', seed: 1, delivery: { policy: 'drop', onError: 'continue', timeoutMs: 50, flushEvery: 3, totalsEvery: 7, stepRecords: false } });
    expect(flat).toEqual(grouped);
    expect(grouped.delivery).toEqual({ policy: 'drop', capacity: 256, onError: 'continue', timeoutMs: 50, flushEvery: 3, totalsEvery: 7, stepRecords: false });
  });

  it('grouped delivery keys reach the run: the sink sees the same calls as with the flat keys, and other calls than by default', async () => {
    const grouped = await train({ delivery: { flushEvery: 2, totalsEvery: 3 } }, 6);
    const flat = await train({ flushEvery: 2, totalsEvery: 3 }, 6);
    const byDefault = await train({}, 6);
    expect(grouped).toEqual(flat);
    expect(grouped.filter((c) => c.startsWith('steps:'))).toEqual(['steps:0,1', 'steps:2,3', 'steps:4,5']);
    expect(grouped.filter((c) => c.startsWith('scores:') && c.endsWith(':false')).length).toBeGreaterThan(0);
    expect(byDefault.filter((c) => c.startsWith('steps:'))).toEqual(['steps:0,1,2,3,4,5']);
    expect(byDefault.filter((c) => c.startsWith('scores:') && c.endsWith(':false'))).toEqual([]);
    const none = await train({ delivery: { stepRecords: false } }, 3);
    expect(none.filter((c) => c.startsWith('steps:'))).toEqual([]);
  });

  it("delivery.onError: 'continue' trains on past a failing sink; the default stops", async () => {
    const { model, x, y } = tiny();
    const log: string[] = [];
    const run = attach(model, { sinks: [loggingSink(log, true)], delivery: { flushEvery: 1, onError: 'continue' } });
    for (let s = 0; s < 4; s++) await run.step([s], () => model.trainOnBatch(tf.slice(x, 0, 1), tf.slice(y, 0, 1)));
    await run.close();
    expect(run.stats().delivery.failures.map((f) => f.sink)).toEqual(['log']);
    const other = tiny();
    const stopping = attach(other.model, { sinks: [loggingSink([], true)], delivery: { flushEvery: 1 } });
    const error = await (async () => {
      for (let s = 0; s < 4; s++) await stopping.step([s], () => other.model.trainOnBatch(tf.slice(other.x, 0, 1), tf.slice(other.y, 0, 1)));
    })().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    await stopping.close().catch(() => undefined);
  });

  it('a flat key and its grouped key together: an InrunError naming both', () => {
    const pairs: [AttachOptions, string, string][] = [
      [{ sinkErrors: 'stop', delivery: { onError: 'continue' } }, 'sinkErrors', 'delivery.onError'],
      [{ sinkTimeoutMs: 10, delivery: { timeoutMs: 10 } }, 'sinkTimeoutMs', 'delivery.timeoutMs'],
      [{ flushEvery: 4, delivery: { flushEvery: 8 } }, 'flushEvery', 'delivery.flushEvery'],
      [{ totalsEvery: 0, delivery: { totalsEvery: 0 } }, 'totalsEvery', 'delivery.totalsEvery'],
      [{ stepRecords: true, delivery: { stepRecords: false } }, 'stepRecords', 'delivery.stepRecords'],
    ];
    for (const [options, flat, grouped] of pairs) {
      const error = attachError(options);
      expect(error).toMatchObject({ code: 'invalid_option', field: grouped });
      expect(error.message).toContain(flat);
      expect(error.message).toContain(grouped);
    }
  });

  it('bad grouped input: an InrunError with the code and the grouped field', () => {
    const cases: [unknown, string][] = [
      [{ delivery: 'fast' }, 'delivery'],
      [{ delivery: { onError: 'ignore' } }, 'delivery.onError'],
      [{ delivery: { timeoutMs: 0 } }, 'delivery.timeoutMs'],
      [{ delivery: { flushEvery: 1.5 } }, 'delivery.flushEvery'],
      [{ delivery: { totalsEvery: -1 } }, 'delivery.totalsEvery'],
      [{ delivery: { stepRecords: 'no' } }, 'delivery.stepRecords'],
      [{ delivery: { policy: 'wait' } }, 'delivery.policy'],
      [{ delivery: { capacity: 0 } }, 'delivery.capacity'],
      [{ delivery: { onerror: 'stop' } }, 'delivery.onerror'],
      [{ checkpoints: { dir: '/tmp/x', everySteps: 1, every: 2 } }, 'checkpoints.every'],
      [{ sketch: { size: 4, sead: 1 } }, 'sketch.sead'],
      [{ metrics: { sourcelimit: 3 } }, 'metrics.sourcelimit'],
      [{ metrics: { attributes: 'job' } }, 'metrics.attributes'],
      [{ tokens: { ignore: 'pad' } }, 'tokens.ignore'],
      [{ tokens: { topk: 3 } }, 'tokens.topk'],
    ];
    for (const [options, field] of cases) expect(attachError(options as AttachOptions)).toMatchObject({ code: 'invalid_option', field });
    // A bad flat value is still named by its flat key; metrics need step records whichever key turns them off.
    expect(attachError({ sinkTimeoutMs: 0 })).toMatchObject({ code: 'invalid_option', field: 'sinkTimeoutMs' });
    expect(attachError({ metrics: true, delivery: { stepRecords: false } })).toMatchObject({ code: 'invalid_option', field: 'metrics' });
  });
});
