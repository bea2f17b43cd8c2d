// A classifier's outputs read the same way by every method and metric: per-row loss, labels, probabilities, logits.
import * as tf from '@tensorflow/tfjs';

/** Whether the model's last layer applies a softmax (its outputs are probabilities, not logits). */
export function softmaxOutput(model: tf.LayersModel): boolean {
  const layer = model.outputLayers[0];
  return layer !== undefined && (layer.getConfig()['activation'] as string | undefined) === 'softmax';
}

/** Whether the model's last layer applies a sigmoid (a single unit reads as P(class 1)). */
function sigmoidOutput(model: tf.LayersModel): boolean {
  const layer = model.outputLayers[0];
  return layer !== undefined && (layer.getConfig()['activation'] as string | undefined) === 'sigmoid';
}

type LossFn = (ys: tf.Tensor, out: tf.Tensor) => tf.Tensor;

/** The compiled loss function, or undefined. A Sequential keeps it on its inner model. */
export function lossFunctionOf(model: tf.LayersModel): LossFn | undefined {
  const inner = model as unknown as { lossFunctions?: LossFn[]; model?: { lossFunctions?: LossFn[] } };
  return (inner.lossFunctions ?? inner.model?.lossFunctions)?.[0];
}

/** The model's own loss per row, `[n]` (its compiled loss function, reduced over any trailing axes). */
export function rowLoss(model: tf.LayersModel, ys: tf.Tensor, out: tf.Tensor): tf.Tensor1D {
  const loss = lossFunctionOf(model)!(ys, out);
  return (loss.rank <= 1 ? tf.reshape(loss, [-1]) : tf.mean(tf.reshape(loss, [loss.shape[0]!, -1]), 1)) as tf.Tensor1D;
}

/** Class ids `[n]` int32 from labels given one-hot `[n, classes]`, as ids `[n]`/`[n, 1]`, or as 0/1 for one output. */
export function labelsOf(ys: tf.Tensor, classes: number): tf.Tensor1D {
  return tf.tidy(() => {
    if (classes === 1) return tf.cast(tf.greater(tf.reshape(ys, [-1]), 0.5), 'int32') as tf.Tensor1D;
    if (ys.rank === 2 && ys.shape[1] === classes) return tf.argMax(ys, 1) as tf.Tensor1D;
    return tf.cast(tf.reshape(ys, [-1]), 'int32') as tf.Tensor1D;
  });
}

/** Predicted class ids `[n]` from outputs. */
export function predictedOf(model: tf.LayersModel, out: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    if (out.shape[out.rank - 1] === 1) return tf.cast(tf.greater(tf.reshape(out, [-1]), sigmoidOutput(model) ? 0.5 : 0), 'int32') as tf.Tensor1D;
    return tf.argMax(out, -1) as tf.Tensor1D;
  });
}

/** Class probabilities `[n, classes]`: the outputs of a softmax layer, else the softmax of the outputs. */
export function probabilitiesOf(model: tf.LayersModel, out: tf.Tensor): tf.Tensor2D {
  return (softmaxOutput(model) ? out : tf.softmax(out)) as tf.Tensor2D;
}

/** Logits `[n, classes]`: the outputs, or log-probabilities when the last layer is a softmax (clipped away from 0). */
export function logitsOf(model: tf.LayersModel, out: tf.Tensor): tf.Tensor2D {
  return (softmaxOutput(model) ? tf.log(tf.clipByValue(out, 1e-7, 1)) : out) as tf.Tensor2D;
}

/**
 * Log-odds of each row's true label, `[n]`: log p(y) - log(1 - p(y)), with 1 - p(y) summed from
 * the other classes' probabilities (not computed as 1 - p, which rounds to 0 on a saturated softmax).
 * Unlike the cross-entropy, its gradient does not vanish when the model is sure.
 */
export function trueLogOdds(model: tf.LayersModel, ys: tf.Tensor, out: tf.Tensor, classes: number): tf.Tensor1D {
  const log = (t: tf.Tensor) => tf.log(tf.clipByValue(t, 1e-30, 1));
  if (classes === 1) {
    const p = tf.reshape(sigmoidOutput(model) ? out : tf.sigmoid(out), [-1]);
    const sign = tf.sub(tf.mul(tf.cast(labelsOf(ys, 1), 'float32'), 2), 1);
    return tf.mul(sign, tf.sub(log(p), log(tf.sub(1, p)))) as tf.Tensor1D;
  }
  const p = probabilitiesOf(model, out);
  const y = tf.oneHot(labelsOf(ys, classes), classes);
  return tf.sub(log(tf.sum(tf.mul(p, y), 1)), log(tf.sum(tf.mul(p, tf.sub(1, y)), 1))) as tf.Tensor1D;
}

/** Share of rows whose predicted class is their label; rows are predicted in batches. One asynchronous read. */
export async function accuracy(model: tf.LayersModel, rows: { readonly xs: tf.Tensor; readonly ys: tf.Tensor }, batchSize = 256): Promise<number> {
  const classes = model.outputs[0]!.shape.at(-1) ?? 1;
  const share = tf.tidy(() => {
    const out = model.predict(rows.xs, { batchSize }) as tf.Tensor;
    return tf.mean(tf.cast(tf.equal(predictedOf(model, out), labelsOf(rows.ys, classes)), 'float32'));
  });
  try {
    return (await share.data())[0]!;
  } finally {
    share.dispose();
  }
}

function rowLossTensor(model: tf.LayersModel, rows: { readonly xs: tf.Tensor; readonly ys: tf.Tensor }, batchSize: number): tf.Tensor {
  return tf.tidy(() => rowLoss(model, rows.ys, model.predict(rows.xs, { batchSize }) as tf.Tensor));
}

/** The model's loss on each row, as numbers. One asynchronous read. */
export async function rowLosses(model: tf.LayersModel, rows: { readonly xs: tf.Tensor; readonly ys: tf.Tensor }, batchSize = 256): Promise<Float32Array> {
  const losses = rowLossTensor(model, rows, batchSize);
  try {
    return (await losses.data()) as Float32Array;
  } finally {
    losses.dispose();
  }
}
