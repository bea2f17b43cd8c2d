// LearningCheck: whether the model learnt its targets between attach and close (values are noise when it did not).
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter } from '../model/adapter.js';
import { classificationLabels, lossNames, type ClassificationLabels } from '../model/loss-kinds.js';
import type { TargetGroup, TargetSet } from '../scoring/targets.js';

/** How one target fared between attach and close (in `run.info.meta.learning`). */
export interface TargetLearning {
  readonly target: string;
  /** Mean target loss per row at attach (the weights training started from). */
  readonly startLoss: number;
  /** Mean target loss per row at close. */
  readonly endLoss: number;
  /** Share of target rows (of positions, for sequence outputs) predicted right at close, or null when the loss is not a classification loss inrun knows. */
  readonly accuracy: number | null;
  /** Accuracy of always guessing the target's majority label: the chance level `accuracy` is compared with, or null. */
  readonly chance: number | null;
  /** Why the values toward this target are noise, or null when the model learnt it. */
  readonly notLearned: string | null;
}

/** The verdict `close()` writes to `run.info.meta.learning` (and warns about when a target was not learnt). */
export interface LearningReport {
  /** False when any target was not learnt. */
  readonly learned: boolean;
  readonly targets: readonly TargetLearning[];
}

/**
 * How far above chance an accuracy must be to count as learnt: a tenth of the way from chance to
 * perfect (0.55 on a balanced binary target, 0.73 on a target that is 70% one label).
 */
export const ABOVE_CHANCE = 0.1;

type Labels = ClassificationLabels;

/** The label form of a one-output LayersModel compiled with a classification loss by name, or null. */
function labelsOf(model: ModelAdapter): Labels | null {
  const lm = model.layersModel;
  if (lm === null || lm.outputs.length !== 1) return null;
  const names = lossNames(lm);
  return names.length === 1 ? classificationLabels(names[0]) : null;
}

/** Mean over every axis but the first. */
function perRow(t: tf.Tensor): tf.Tensor1D {
  return (t.rank === 1 ? t : tf.mean(t, Array.from({ length: t.rank - 1 }, (_, i) => i + 1))) as tf.Tensor1D;
}

/** Per row: the share of positions predicted right `[rows]`, and each label's share of the positions `[rows, K]`. */
function rowAccuracy(labels: Labels, y: tf.Tensor, p: tf.Tensor): { correct: tf.Tensor1D; shares: tf.Tensor2D } {
  if (labels === 'binary') {
    const truth = tf.cast(tf.greater(tf.reshape(y, p.shape), 0.5), 'float32');
    const share = perRow(truth);
    return { correct: perRow(tf.cast(tf.equal(truth, tf.cast(tf.greater(p, 0.5), 'float32')), 'float32')), shares: tf.stack([share, tf.sub(1, share)], 1) as tf.Tensor2D };
  }
  const classes = p.shape[p.rank - 1]!;
  const truth = labels === 'sparse' ? tf.cast(tf.reshape(y, p.shape.slice(0, -1)), 'int32') : tf.argMax(y, -1);
  const correct = perRow(tf.cast(tf.equal(truth, tf.argMax(p, -1)), 'float32'));
  // float32, not oneHot's int32: the mean over the middle axis transposes its input, and tf.js 4.22's
  // webgpu transpose of int32 fails to compile, which drops the GPU commands queued with it (here the
  // first training step's): docs/layers.md, "GPU backends".
  const onehot = tf.oneHot(tf.reshape(truth, [-1]), classes, 1, 0, 'float32');
  return { correct, shares: tf.mean(tf.reshape(onehot, [p.shape[0]!, -1, classes]), 1) as tf.Tensor2D };
}

/** `[members, 3]` for one group: mean loss, accuracy and chance per target (accuracy and chance NaN without labels). */
function groupStats(model: ModelAdapter, labels: Labels | null, group: TargetGroup): tf.Tensor2D {
  const predictions = model.forward(group.xs);
  const membership = group.layout.membership;
  const counts = tf.sum(membership, 0);
  const perTarget = (rows: tf.Tensor1D) => tf.div(tf.reshape(tf.matMul(tf.reshape(rows, [1, group.rows]), membership), [-1]), counts);
  const loss = perTarget(model.perExampleLoss(group.ys, predictions));
  if (labels === null) {
    const none = tf.fill(loss.shape, Number.NaN);
    return tf.stack([loss, none, none], 1) as tf.Tensor2D;
  }
  const { correct, shares } = rowAccuracy(labels, group.ys[0]!, predictions[0]!);
  const chance = tf.div(tf.max(tf.matMul(membership, shares, true, false), 1), counts);
  return tf.stack([loss, perTarget(correct), chance], 1) as tf.Tensor2D;
}

/**
 * Measures every target at attach (kept on the device, no read) and again at close, reading both in
 * one asynchronous read. A target is not learnt when its mean loss at close is not below the one at
 * attach, or, for classification losses, when its accuracy is within {@link ABOVE_CHANCE} of always
 * guessing its majority label: values toward it then rank examples by noise.
 */
export class LearningCheck {
  private readonly labels: Labels | null;
  private start: tf.Tensor2D | null;

  constructor(
    private readonly model: ModelAdapter,
    private readonly targets: TargetSet,
  ) {
    this.labels = labelsOf(model);
    this.start = tf.tidy(() => this.measure());
  }

  private measure(): tf.Tensor2D {
    const parts = this.targets.groups.map((g) => groupStats(this.model, this.labels, g));
    return (parts.length === 1 ? parts[0]! : tf.concat(parts, 0)) as tf.Tensor2D;
  }

  /** The verdict at the current weights (call before the targets are freed); frees the attach measurement. */
  async finish(): Promise<LearningReport> {
    const start = this.start;
    if (start === null) throw new Error('LearningCheck.finish() called twice');
    this.start = null;
    const both = tf.tidy(() => tf.concat([start, this.measure()], 0));
    start.dispose();
    let values: Float32Array;
    try {
      values = (await both.data()) as Float32Array;
    } finally {
      both.dispose();
    }
    const k = this.targets.names.length;
    const targets = this.targets.names.map((target, i) => {
      const [startLoss, endLoss, accuracy, chance] = [values[3 * i]!, values[3 * (k + i)]!, values[3 * (k + i) + 1]!, values[3 * (k + i) + 2]!];
      const known = this.labels !== null && Number.isFinite(accuracy) && Number.isFinite(chance);
      return { target, startLoss, endLoss, accuracy: known ? accuracy : null, chance: known ? chance : null, notLearned: verdict(startLoss, endLoss, known ? accuracy : null, chance) };
    });
    return { learned: targets.every((t) => t.notLearned === null), targets };
  }

  /** Frees the attach measurement (a run released without `finish`). */
  dispose(): void {
    this.start?.dispose();
    this.start = null;
  }
}

function verdict(startLoss: number, endLoss: number, accuracy: number | null, chance: number): string | null {
  if (!(endLoss < startLoss)) return `its mean loss went from ${startLoss.toFixed(4)} at attach to ${endLoss.toFixed(4)}, not below its start`;
  if (accuracy !== null && accuracy < chance + ABOVE_CHANCE * (1 - chance)) {
    return `its accuracy is ${accuracy.toFixed(3)}, near the ${chance.toFixed(3)} of always guessing its majority label`;
  }
  return null;
}

/** The warning `close()` gives when a target was not learnt. */
export function notLearnedWarning(runId: string, report: LearningReport): string | null {
  const bad = report.targets.filter((t) => t.notLearned !== null);
  if (bad.length === 0) return null;
  const what = bad.map((t) => `target "${t.target}": ${t.notLearned}`).join('; ');
  return (
    `inrun: run "${runId}": the model has not learnt what the values are measured against (${what}). ` +
    'Values toward such a target then rank examples by noise: train longer, check the learning rate and the labels, ' +
    'and read the scores once it learns (run.info.meta.learning; docs/hooks.md, "Has the model learnt?")'
  );
}
