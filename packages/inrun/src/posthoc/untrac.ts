// untrac(): dataset-level influence by unlearning (UnTrac and UnTrac-Inv, Isonuma & Titov 2024).
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { adaptModel, type ModelAdapter } from '../model/adapter.js';
import type { FunctionalModel } from '../types.js';
import { ascend, ascentSteps, meanLoss, type Rows } from './ascent.js';
import { requestTargets } from '../unlearn/request.js';
import { namedRows } from './untrac-data.js';
import { resolveUntracOptions, type ResolvedUntracOptions, type UntracOptions, type UntracRow } from './untrac-options.js';
import { progressTracker, type ProgressTracker } from './untrac-progress.js';
import { defaultLossCeiling } from './untrac-ceiling.js';

/** What {@link untrac} returns. */
export interface UntracResult {
  readonly method: 'untrac' | 'untrac-inv';
  /** `influence[target][source]`: positive = the source lowered the target's loss (docs/methods.md). */
  readonly influence: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** One row per target and source, targets in the order given, then sources. */
  readonly rows: readonly UntracRow[];
  readonly seconds: number;
}

/**
 * Dataset-level influence by unlearning (Isonuma & Titov 2024, "Unlearning Traces the Influential
 * Training Data of Language Models"). `'untrac'`: for each source, gradient ascent on it from the
 * trained weights, then influence = each target's mean loss after minus before. `'untrac-inv'`: for
 * each target, gradient ascent on it, then influence = each source's mean loss (its first `evalRows`
 * rows) after minus before. Positive = the source lowered the target's loss, as everywhere in inrun.
 *
 * Each ascent starts from the model's weights and uses a fresh optimizer from the factory; the
 * weights are restored afterwards, bit for bit, and the model's own optimizer is never used. The
 * forward passes run in inference mode (no dropout). A diverging ascent stops early and is flagged in
 * its rows (`stopped`) instead of giving NaN. docs/methods.md says when to use which method.
 */
export async function untrac(model: tf.LayersModel | FunctionalModel, options: UntracOptions): Promise<UntracResult> {
  const started = performance.now();
  const o = resolveUntracOptions(options);
  const adapter = adaptModel(model, undefined);
  const variables = ascentVariables(model, options.variables);
  const sources = await namedRows('sources', options.sources, adapter);
  try {
    const targets = await namedRows('targets', requestTargets(options.targets), adapter);
    try {
      const [unlearned, measured] = o.method === 'untrac' ? [sources, targets] : [targets, sources];
      const batchOf = (r: Rows) => o.batchSize ?? Math.min(r.rows, 256);
      const planned = unlearned.names.map((n) => ascentSteps(unlearned.rows.get(n)!.rows, { ...o, batchSize: batchOf(unlearned.rows.get(n)!) }));
      const progress = progressTracker(unlearned.names.length, planned.reduce((a, b) => a + b, 0), o.progress, o.onProgress);
      try {
        const evalLimit = o.method === 'untrac' ? Number.POSITIVE_INFINITY : o.evalRows;
        const lossOf = (name: string) => meanLoss(adapter, measured.rows.get(name)!, o.evalBatchSize, evalLimit);
        const lossesNow = async () => {
          const losses = new Map<string, number>();
          for (const n of measured.names) losses.set(n, await lossOf(n));
          return losses;
        };
        const before = await lossesNow();
        const rows: UntracRow[] = [];
        for (const [i, name] of unlearned.names.entries()) {
          const t0 = performance.now();
          const data = unlearned.rows.get(name)!;
          progress.begin(name, planned[i]!);
          const { steps, stopped, after } = await withRestore(variables, async () => {
            const result = await ascendOn(adapter, variables, data, o, batchOf(data), progress);
            return { ...result, after: await lossesNow() };
          });
          progress.end();
          const seconds = (performance.now() - t0) / 1000;
          for (const other of measured.names) {
            const [target, source] = o.method === 'untrac' ? [other, name] : [name, other];
            const lossBefore = before.get(other)!;
            const lossAfter = after.get(other)!;
            rows.push({ target, source, method: o.method, influence: lossAfter - lossBefore, lossBefore, lossAfter, steps, seconds: seconds / measured.names.length, stopped });
          }
        }
        return { method: o.method, influence: influenceTable(rows, targets.names, sources.names), rows: orderRows(rows, targets.names, sources.names), seconds: (performance.now() - started) / 1000 };
      } finally {
        progress.stop();
      }
    } finally {
      tf.dispose([...targets.owned]);
    }
  } finally {
    tf.dispose([...sources.owned]);
  }
}

/** The weights an ascent moves: the given variables, or the LayersModel's trainable weights. */
function ascentVariables(model: tf.LayersModel | FunctionalModel, given: readonly tf.Variable[] | undefined): readonly tf.Variable[] {
  if (given !== undefined) {
    if (!Array.isArray(given) || given.length === 0 || !given.every((v) => v instanceof tf.Variable)) {
      throw new InrunError('expected a non-empty array of tf.Variables', { field: 'variables' });
    }
    return given;
  }
  if (model instanceof tf.LayersModel) return model.trainableWeights.map((w) => w.read() as tf.Variable);
  throw new InrunError("a hand-written model's weights are unknown to inrun: pass them as variables", { field: 'variables', code: 'unsupported_model' });
}

/** Runs `body`, then puts `variables` back to their values before it (bit-exact: the same tensor data). */
async function withRestore<T>(variables: readonly tf.Variable[], body: () => Promise<T>): Promise<T> {
  const saved = variables.map((v) => tf.clone(v));
  try {
    return await body();
  } finally {
    variables.forEach((v, i) => v.assign(saved[i]!));
    tf.dispose(saved);
  }
}

async function ascendOn(model: ModelAdapter, variables: readonly tf.Variable[], data: Rows, o: ResolvedUntracOptions, batchSize: number, progress: ProgressTracker) {
  const startLoss = await meanLoss(model, data, o.evalBatchSize);
  return ascend(model, variables, data, {
    optimizer: o.optimizer,
    epochs: o.epochs,
    batchSize,
    maxSteps: o.maxSteps,
    ceiling: o.lossCeiling ?? defaultLossCeiling(model, startLoss),
    startLoss,
    seed: o.seed,
    onStep: () => progress.step(),
  });
}

function orderRows(rows: readonly UntracRow[], targets: readonly string[], sources: readonly string[]): UntracRow[] {
  const key = (r: UntracRow) => targets.indexOf(r.target) * sources.length + sources.indexOf(r.source);
  return [...rows].sort((a, b) => key(a) - key(b));
}

function influenceTable(rows: readonly UntracRow[], targets: readonly string[], sources: readonly string[]): Record<string, Record<string, number>> {
  const table = Object.fromEntries(targets.map((t) => [t, Object.fromEntries(sources.map((s) => [s, Number.NaN]))])) as Record<string, Record<string, number>>;
  for (const r of rows) table[r.target]![r.source] = r.influence;
  return table;
}
