// patchModel: routes a LayersModel's own fit and fitDataset through the run, and puts them back on release.
import type * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { Restore } from '../hooks/restore.js';

/** The run's paths the model's own methods are routed to. */
export interface RunPaths {
  readonly fit: (x: tf.Tensor | tf.Tensor[], y: tf.Tensor | tf.Tensor[], args: tf.ModelFitArgs) => Promise<tf.History>;
  readonly fitDataset: tf.LayersModel['fitDataset'];
}

/** Patches `model.fit` and `model.fitDataset`; returns the model's own fitDataset (bound) and the restore. */
export function patchModel(model: tf.LayersModel, run: RunPaths): { readonly originalFitDataset: tf.LayersModel['fitDataset']; readonly restore: Restore } {
  const m = model as unknown as {
    fit: tf.LayersModel['fit'];
    fitDataset: tf.LayersModel['fitDataset'];
  };
  const own = { fit: Object.hasOwn(m, 'fit'), fitDataset: Object.hasOwn(m, 'fitDataset') };
  const fit = m.fit;
  const fitDataset = m.fitDataset;
  const originalFitDataset = fitDataset.bind(model);
  m.fit = (x, y, args = {}) => {
    if (args.shuffle ?? true) {
      return Promise.reject(
        new InrunError(
          'model.fit shuffles with Math.random and never says which rows formed a batch, so inrun cannot map rows to ids. ' +
            'Use run.fit(x, y, { ids }) (seeded, exact shuffling) or pass shuffle: false (row indices become ids)',
          { field: 'args.shuffle', code: 'invalid_option' }
        ),
      );
    }
    return run.fit(x as tf.Tensor | tf.Tensor[], y as tf.Tensor | tf.Tensor[], args);
  };
  m.fitDataset = (dataset, args) => run.fitDataset(dataset, args);
  const restore = () => {
    if (own.fit) m.fit = fit;
    else delete (m as { fit?: unknown }).fit;
    if (own.fitDataset) m.fitDataset = fitDataset;
    else delete (m as { fitDataset?: unknown }).fitDataset;
  };
  return { originalFitDataset, restore };
}
