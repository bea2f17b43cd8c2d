import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { LayerRows } from '../ghost/rows.js';

/** How an instrumented layer turns inputs into parameters' gradients. */
export type LayerKind = 'dense' | 'embedding';

/** Static facts about an instrumented layer. */
export interface LayerFacts {
  readonly kind: LayerKind;
  /** Dense: whether the layer adds a bias. */
  readonly hasBias: boolean;
  /** Embedding: rows of the table. */
  readonly vocab: number;
  /**
   * The layer's weights: `[kernel, bias?]` for dense, `[table]` for embedding (empty when an op was
   * given plain tensors). Second-order values perturb and differentiate them.
   */
  readonly weights: readonly tf.Variable[];
}

/** What one instrumented layer recorded during one pass: one entry per call of the layer. */
export interface LayerRecording extends LayerFacts {
  /** Inputs `a` per call: float rows for dense, int32 ids for embedding. First axis = example. */
  readonly a: tf.Tensor[];
  /** Output gradients `b` per call (pre-activation for dense); missing when off the gradient path. */
  readonly b: (tf.Tensor | undefined)[];
}

/**
 * Collects the layer inputs and output gradients of one forward/backward pass.
 *
 * Recorded tensors are clones made with `tf.keep`: the pass runs inside tf.js' own `tidy` scopes,
 * which would free them, and a clone shares data with the original, so freeing ours never frees
 * the user's tensors.
 */
export class Capture {
  readonly layers = new Map<string, LayerRecording>();

  /** Records a layer call's input; returns the call's index for the matching backward record. */
  forward(key: string, facts: LayerFacts, a: tf.Tensor): number {
    let rec = this.layers.get(key);
    if (rec === undefined) {
      rec = { ...facts, a: [], b: [] };
      this.layers.set(key, rec);
    }
    rec.a.push(tf.keep(a.clone()));
    rec.b.push(undefined);
    return rec.a.length - 1;
  }

  backward(key: string, call: number, b: tf.Tensor): void {
    const rec = this.layers.get(key);
    if (rec === undefined) return;
    rec.b[call]?.dispose();
    rec.b[call] = tf.keep(b.clone());
  }

  /**
   * The recorded layers as ghost rows (axis 0 = example, axis 1 = position), keeping the calls that
   * received a gradient. Every call must have seen exactly `n` rows: per-example attribution needs
   * row i of every call to be example i. Call inside `tf.tidy`.
   */
  rows(n: number, include: (key: string, kind: LayerKind) => boolean = () => true): Map<string, LayerRows> {
    const out = new Map<string, LayerRows>();
    for (const [key, rec] of this.layers) {
      if (!include(key, rec.kind)) continue;
      const as: tf.Tensor[] = [];
      const bs: tf.Tensor[] = [];
      rec.a.forEach((a, i) => {
        const b = rec.b[i];
        if (b === undefined) return;
        if (a.shape[0] !== n || b.shape[0] !== n) {
          throw new InrunError(
            `layer "${key}" was called on ${a.shape[0]} rows in a step of ${n} examples; per-example attribution needs every call of a layer to take the batch's rows in order`,
          );
        }
        if (rec.kind === 'dense') {
          as.push(tf.reshape(a, [n, -1, a.shape[a.rank - 1] ?? 1]));
          bs.push(tf.reshape(b, [n, -1, b.shape[b.rank - 1] ?? 1]));
        } else {
          as.push(tf.reshape(a, [n, -1]));
          bs.push(tf.reshape(b, [n, -1, b.shape[b.rank - 1] ?? 1]));
        }
      });
      if (as.length === 0) continue;
      const a = as.length === 1 ? as[0]! : tf.concat(as, 1);
      const b = (bs.length === 1 ? bs[0]! : tf.concat(bs, 1)) as tf.Tensor3D;
      out.set(
        key,
        rec.kind === 'dense'
          ? { kind: 'dense', hasBias: rec.hasBias, rows: { a: a as tf.Tensor3D, b } }
          : { kind: 'embedding', vocab: rec.vocab, rows: { ids: a as tf.Tensor2D, b } },
      );
    }
    return out;
  }

  dispose(): void {
    for (const rec of this.layers.values()) {
      for (const t of rec.a) t.dispose();
      for (const t of rec.b) t?.dispose();
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
    throw new InrunError('an attributed training step started inside another one; nested minimize() calls are not supported');
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
