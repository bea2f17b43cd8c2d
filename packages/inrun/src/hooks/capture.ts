// The capture of one forward/backward pass: what instrumented layers record, and the backward-hook probe.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { LayerRows, Piece, WeightLayout } from '../ghost/types.js';

/** One call of an instrumented layer: its recorded inputs and the gradients its probes received. */
export interface RecordedCall {
  /** What the layer recorded in its forward (inputs, ids, states); first axis = example. */
  readonly inputs: readonly tf.Tensor[];
  /** Gradients by probe slot (a layer may probe several tensors per call); missing when off the gradient path. */
  readonly grads: readonly (tf.Tensor | undefined)[];
}

/**
 * What a layer kind hands the capture for one layer (src/layers/kind.ts): how its recorded calls
 * become ghost pieces, and how those map onto its weights.
 */
export interface Recorder {
  /** The layer kind's name, reported in `run.info.layers.covered[].kind`. */
  readonly kind: string;
  /** Whether the layer is a word embedding (TracIn-WE and `layers: 'embedding'` use only those). */
  readonly embedding: boolean;
  /**
   * The layer's weights in the layout's order (empty when a hand-written op was given plain tensors).
   * Second-order and optimizer-aware values read and perturb them.
   */
  readonly weights: readonly tf.Variable[];
  readonly layout: WeightLayout;
  /** The layer's pieces from its calls of one pass (each call received at least one gradient). Call inside `tf.tidy`. */
  pieces(calls: readonly RecordedCall[], n: number): Piece[];
}

interface Recording {
  readonly recorder: Recorder;
  readonly calls: { readonly inputs: tf.Tensor[]; readonly grads: (tf.Tensor | undefined)[] }[];
}

/**
 * Collects the layer inputs and output gradients of one forward/backward pass.
 *
 * Recorded tensors are clones made with `tf.keep`: the pass runs inside tf.js' own `tidy` scopes,
 * which would free them, and a clone shares data with the original, so freeing ours never frees
 * the user's tensors.
 */
export class Capture {
  readonly layers = new Map<string, Recording>();

  /** Records a layer call's inputs; returns the call's index for the matching backward records. */
  forward(key: string, recorder: Recorder, inputs: readonly tf.Tensor[]): number {
    let rec = this.layers.get(key);
    if (rec === undefined) {
      rec = { recorder, calls: [] };
      this.layers.set(key, rec);
    }
    rec.calls.push({ inputs: inputs.map((t) => tf.keep(t.clone())), grads: [] });
    return rec.calls.length - 1;
  }

  /** Records the gradient a probe of call `call` received, in its `slot`. */
  backward(key: string, call: number, b: tf.Tensor, slot = 0): void {
    const c = this.layers.get(key)?.calls[call];
    if (c === undefined) return;
    c.grads[slot]?.dispose();
    c.grads[slot] = tf.keep(b.clone());
  }

  /**
   * The recorded layers as ghost rows (axis 0 = example), keeping the calls that received a
   * gradient. Every call must have seen exactly `n` rows: per-example attribution needs row i of
   * every call to be example i. Call inside `tf.tidy`.
   */
  rows(n: number, include: (key: string, embedding: boolean) => boolean = () => true): Map<string, LayerRows> {
    const out = new Map<string, LayerRows>();
    for (const [key, { recorder, calls }] of this.layers) {
      if (!include(key, recorder.embedding)) continue;
      const live = calls.filter((c) => c.grads.some((g) => g !== undefined));
      for (const c of live) {
        const rows = [...c.inputs, ...c.grads].map((t) => t?.shape[0]);
        if (rows.some((r) => r !== undefined && r !== n)) {
          throw new InrunError(
            `layer "${key}" was called on ${rows.find((r) => r !== n)} rows in a step of ${n} examples; per-example attribution needs every call of a layer to take the batch's rows in order`,
            { code: 'shape_mismatch' },
          );
        }
      }
      if (live.length === 0) continue;
      out.set(key, { kind: recorder.kind, embedding: recorder.embedding, pieces: recorder.pieces(live, n), layout: recorder.layout });
    }
    return out;
  }

  /**
   * Records a whole call at once (a fused step's, from its gradient): the tensors are kept as they
   * are, not copied, so pass tensors made for the record (slices), never the user's.
   */
  record(key: string, recorder: Recorder, inputs: readonly tf.Tensor[], grads: readonly tf.Tensor[]): void {
    let rec = this.layers.get(key);
    if (rec === undefined) {
      rec = { recorder, calls: [] };
      this.layers.set(key, rec);
    }
    rec.calls.push({ inputs: inputs.map((t) => tf.keep(t)), grads: grads.map((t) => tf.keep(t)) });
  }

  dispose(): void {
    for (const { calls } of this.layers.values()) {
      for (const c of calls) tf.dispose([...c.inputs, ...c.grads.filter((g): g is tf.Tensor => g !== undefined)]);
    }
    this.layers.clear();
  }
}

let active: Capture | null = null;
let seed: tf.Tensor | null = null;

/** The capture of the pass in progress, or null outside attributed passes. */
export function activeCapture(): Capture | null {
  return active;
}

/**
 * Runs `fn` with `capture` receiving every instrumented layer call. Not re-entrant: an attributed
 * pass never starts another one.
 */
export function withCapture<T>(capture: Capture, fn: () => T): T {
  if (active !== null) {
    throw new InrunError('an attributed training step started inside another one; nested minimize() calls are not supported', { code: 'invalid_state' });
  }
  active = capture;
  try {
    return fn();
  } finally {
    active = null;
  }
}

/**
 * The scalar every probe takes as a second input. Differentiating a pass with respect to it puts
 * every probe on the gradient path (so every layer's `b` is recorded) without computing any weight
 * gradient: that is how target passes get their `b` rows cheaply.
 */
export function probeSeed(): tf.Tensor {
  if (seed === null || seed.isDisposed) seed = tf.keep(tf.scalar(0));
  return seed;
}

/**
 * Identity op whose gradient function reports the incoming gradient `dy` (a backward hook), with
 * the probed tensor itself. The forward value and the gradient passed on are the same tensors as
 * without the probe, so the optimizer's update is unchanged bit for bit.
 *
 * tf.js frees a pass's forward intermediates before the backward pass unless a kernel saves them,
 * so the probed tensor reaches `onGradient` through `save` (when `keepInput`), never through a
 * closure. Without `keepInput`, `onGradient`'s second argument is undefined.
 */
export function probe(x: tf.Tensor, onGradient: (dy: tf.Tensor, x: tf.Tensor | undefined) => void, keepInput = false): tf.Tensor {
  const op = tf.customGrad((input, s, save) => {
    const t = input as tf.Tensor;
    const scalar = s as tf.Tensor;
    if (keepInput) (save as tf.GradSaveFunc)([t]);
    return {
      value: t.clone(),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        onGradient(dy, saved[0]);
        return [dy, tf.zerosLike(scalar)];
      },
    };
  });
  return op(x, probeSeed());
}
