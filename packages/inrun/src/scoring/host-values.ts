// Small checks that need a tensor's values: read in place on the cpu backend, else asynchronously.
import * as tf from '@tensorflow/tfjs';

/**
 * The values of `t` when its backend keeps them as a typed array in host memory (tf.js' `cpu` backend),
 * read in place: no `dataSync`/`readSync`, no transfer, no kernel. `null` on every other backend (webgl,
 * webgpu, wasm, tfjs-node), where a synchronous read blocks on the device or fails (docs/layers.md,
 * "GPU backends"), and for tensors whose data lives elsewhere.
 */
export function hostValues(t: tf.Tensor): ArrayLike<number> | null {
  if (tf.getBackend() !== 'cpu') return null;
  const storage = (tf.backend() as unknown as { data?: { has(id: object): boolean; get(id: object): { values?: unknown } } }).data;
  if (storage === undefined || !storage.has(t.dataId)) return null;
  const values = storage.get(t.dataId).values;
  return ArrayBuffer.isView(values) && !(values instanceof DataView) ? (values as unknown as ArrayLike<number>) : null;
}

/**
 * Runs `use` on the values of `tensors` (then disposes them): at once where {@link hostValues} has them
 * all, so a bad value throws right here, as before any training; otherwise after one batched
 * asynchronous read, returning the promise (the run awaits it before its first step). `tensors` are
 * owned by this call.
 */
export function whenRead(tensors: readonly tf.Tensor[], use: (values: ArrayLike<number>[]) => void): Promise<void> | null {
  const now = tensors.map(hostValues);
  if (now.every((v) => v !== null)) {
    try {
      use(now as ArrayLike<number>[]);
      return null;
    } finally {
      tf.dispose([...tensors]);
    }
  }
  return Promise.all(tensors.map((t) => t.data() as Promise<ArrayLike<number>>)).then(
    (values) => {
      tf.dispose([...tensors]);
      use(values);
    },
    (error: unknown) => {
      tf.dispose([...tensors]);
      throw error;
    },
  );
}
