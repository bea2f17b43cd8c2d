// The coverage warning at attach: trainable layers the scores leave out (layers: 'all' only), named with why.
import type * as tf from '@tensorflow/tfjs';
import { leafLayers } from '../layers/plan.js';
import { paramCount } from '../layers/seams.js';
import type { RunInfo } from '../types.js';
import { warn } from '../warn.js';

/** Models already warned about: a second attach of the same model (resume, a new run) says nothing new. */
const warned = new WeakSet<tf.LayersModel>();

/**
 * The warning's text when `layers: 'all'` covers less than every trainable parameter, or null. Each left-out
 * layer is named with its class, its parameter count and the reason `run.info.layers.skipped` gives;
 * frozen layers are not counted (their weights are not updated, so there is nothing to attribute).
 */
export function coverageWarning(model: tf.LayersModel, layers: RunInfo['layers']): string | null {
  const { coveredParams, trainableParams, skipped } = layers;
  if (trainableParams <= 0 || coveredParams >= trainableParams) return null;
  const byName = new Map(leafLayers(model).map((l) => [l.name, l]));
  const left = skipped.flatMap((s) => {
    const layer = byName.get(s.name);
    const params = layer !== undefined && layer.trainable ? paramCount(layer) : 0;
    return params > 0 ? [`"${s.name}" (${s.className}, ${params.toLocaleString('en-US')} parameters: ${s.reason})`] : [];
  });
  const share = ((100 * coveredParams) / trainableParams).toFixed(1);
  return (
    `inrun: the scores cover ${share}% of the trainable parameters (${coveredParams.toLocaleString('en-US')} of ${trainableParams.toLocaleString('en-US')}); ` +
    `left out: ${left.join('; ')}. These layers still train, but what they learn from each example is missing from every score ` +
    '(run.info.layers; docs/layers.md lists the covered kinds)'
  );
}

/**
 * Warns once per model when `layers: 'all'` leaves trainable parameters out. A list of layer names or
 * `'embedding'` is the user's own choice of coverage and does not warn.
 */
export function warnOnPartialCoverage(model: tf.LayersModel, selection: 'all' | 'embedding' | readonly string[], layers: RunInfo['layers']): void {
  if (selection !== 'all' || warned.has(model)) return;
  const message = coverageWarning(model, layers);
  if (message === null) return;
  warned.add(model);
  warn(message);
}
