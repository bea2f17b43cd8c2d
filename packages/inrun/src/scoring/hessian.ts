// Parameter algebra over covered layers (gradients, directions, products) and Hessian-vector products of target losses.
import * as tf from '@tensorflow/tfjs';
import { pieceGradients, pieceParamProducts } from '../ghost/pieces.js';
import type { TargetGroupRows } from '../ghost/products.js';
import type { LayerRows, PieceParams, WeightLayout } from '../ghost/rows.js';
import type { ModelAdapter } from '../model/adapter.js';
import { disposePasses, targetPasses, type TargetSet } from './targets.js';

/**
 * Parameter-shaped tensors of one covered layer, per piece, with a leading "set" axis (one set per
 * target, or a single set): gradients, update directions, Hessian-vector products. `layout` maps
 * them onto the layer's weights.
 */
export interface LayerParams {
  readonly layout: WeightLayout;
  readonly pieces: readonly PieceParams[];
}

/** How the Hessian-vector product of the target loss is computed. */
export type HvpMethod = 'double-backward' | 'finite-difference';

/** Which recorded layers count: a `layers` selection (by name, or word embeddings only). */
export type Include = (key: string, embedding: boolean) => boolean;

export interface HessianContext {
  readonly model: ModelAdapter;
  readonly targets: TargetSet;
  readonly include: Include;
  /** Covered layers' weights in the order their layout lays them out. */
  readonly weights: ReadonlyMap<string, readonly tf.Variable[]>;
  /** Covered layers' weight layouts. */
  readonly layouts: ReadonlyMap<string, WeightLayout>;
}

/** The whole batch of `n` rows as one range. */
export const wholeBatch = (n: number) => [{ start: 0, rows: n }];

/** Summed gradients of each range of rows, per layer (sets = ranges). Call inside `tf.tidy`. */
export function gradientsOf(rows: LayerRows, ranges: readonly { readonly start: number; readonly rows: number }[]): LayerParams {
  return { layout: rows.layout, pieces: rows.pieces.map((piece) => pieceGradients(piece, ranges)) };
}

function map(p: LayerParams, f: (t: tf.Tensor) => tf.Tensor): LayerParams {
  return { layout: p.layout, pieces: p.pieces.map((ts) => ts.map(f)) };
}

/** `f` of two layers' params, tensor by tensor (broadcasting over sets). */
export function combine(a: LayerParams, b: LayerParams, f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor): LayerParams {
  return { layout: a.layout, pieces: a.pieces.map((ts, i) => ts.map((t, j) => f(t, b.pieces[i]![j]!))) };
}

/** The set `s` of a layer's params, as tensors shaped like its weights. */
export function weightShaped(p: LayerParams, s: number): tf.Tensor[] {
  return p.layout.toWeights(p.pieces.map((ts) => ts.map((t) => tf.squeeze(tf.slice(t, s, 1), [0]))));
}

/** A layer's params from tensors shaped like its weights, as one set. */
export function fromWeights(layout: WeightLayout, tensors: readonly tf.Tensor[]): LayerParams {
  return { layout, pieces: layout.fromWeights(tensors).map((ts) => ts.map((t) => tf.expandDims(t, 0))) };
}

function concatSets(parts: readonly LayerParams[]): LayerParams {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  return { layout: first.layout, pieces: first.pieces.map((ts, i) => ts.map((_, j) => tf.concat(parts.map((p) => p.pieces[i]![j]!)))) };
}

/**
 * The data part of the step's update per covered layer, `u = learningRate * sum_i G_i` (one set), or
 * `learningRate * Q * sum_i G_i` with the optimizer's factors Q: second-order values need H_T u
 * (docs/methods.md, "Second order"). Call inside `tf.tidy`.
 */
export function updateDirection(
  train: ReadonlyMap<string, LayerRows>,
  learningRate: number,
  n: number,
  scaleBy?: (key: string, params: LayerParams) => LayerParams,
): Map<string, LayerParams> {
  return new Map(
    [...train].map(([key, rows]) => {
      const u = map(gradientsOf(rows, wholeBatch(n)), (t) => tf.mul(t, learningRate));
      return [key, scaleBy ? scaleBy(key, u) : u];
    }),
  );
}

/** `sum over layers of <G_i, P_s>` for every example and set: `[n, sets]`, or null without layers. Call inside `tf.tidy`. */
export function paramProducts(train: ReadonlyMap<string, LayerRows>, params: ReadonlyMap<string, LayerParams>, n: number): tf.Tensor2D | null {
  let sum: tf.Tensor2D | null = null;
  for (const [key, rows] of train) {
    const p = params.get(key);
    if (p === undefined) continue;
    rows.pieces.forEach((piece, i) => {
      const term = pieceParamProducts(piece, p.pieces[i]!, n);
      sum = sum === null ? term : (tf.add(sum, term) as tf.Tensor2D);
    });
  }
  return sum;
}

/** Every target's gradient per covered layer (sets = targets, in order), from each group's recorded rows. */
export function targetGradientsOf(groups: readonly TargetGroupRows[]): Map<string, LayerParams> {
  const perGroup = groups.map(({ rows, layout }) => new Map([...rows].map(([key, r]) => [key, gradientsOf(r, layout.ranges)])));
  const keys = new Set(perGroup.flatMap((m) => [...m.keys()]));
  return new Map([...keys].map((key) => [key, concatSets(perGroup.map((m) => m.get(key)!))]));
}

/** Every target's gradient per covered layer, from fresh target passes (sets = targets, in order). */
function targetGradients(ctx: HessianContext): Map<string, LayerParams> {
  const passes = targetPasses(ctx.targets.groups, ctx.model);
  try {
    return targetGradientsOf(passes.map(({ group, pass }) => ({ rows: pass.capture.rows(group.rows, ctx.include), layout: group.layout })));
  } finally {
    disposePasses(passes);
  }
}

/** Every target's loss, per target: the summed per-example loss of its rows. */
function targetLosses(ctx: HessianContext): (() => tf.Scalar)[] {
  return ctx.targets.groups.flatMap((group) =>
    group.layout.ranges.map(({ start, rows }) => () => {
      const xs = group.xs.map((x) => tf.slice(x, start, rows));
      const ys = group.ys.map((y) => tf.slice(y, start, rows));
      return tf.sum(ctx.model.perExampleLoss(ys, ctx.model.forward(xs))) as tf.Scalar;
    }),
  );
}

/**
 * Whether double backward gives the right H_T u for this model and targets: one trial on a random
 * direction, checked against finite differences (relative difference under 1%). tf.js (4.22) does not
 * always fail loudly: an op whose gradient is not differentiable throws (ClipByValue's gradient, in
 * every Keras cross-entropy, uses LogicalAnd), but ops whose gradient reads their own output (tanh,
 * sigmoid, softmax, exp) silently lose their second derivative (measured; matMul, relu, square, log,
 * div and mul are exact). Returns null when double backward is right, else why not. Run once, at attach.
 */
export function tryDoubleBackward(ctx: HessianContext): string | null {
  try {
    let verdict: string | null = null;
    tf.tidy(() => {
      let seed = 7;
      const u = new Map([...ctx.weights].map(([k, ws]) => [k, fromWeights(ctx.layouts.get(k)!, ws.map((w) => tf.randomNormal(w.shape, 0, 1, 'float32', seed++)))]));
      const exact = hessianVectorProducts('double-backward', ctx, u);
      const approx = hessianVectorProducts('finite-difference', ctx, u);
      const flat = (m: ReadonlyMap<string, LayerParams>) =>
        tf.concat([...m.keys()].sort().flatMap((k) => weightShaped(m.get(k)!, 0).map((t) => tf.reshape(t, [-1]))));
      const a = flat(exact);
      const b = flat(approx);
      const relative = tf.div(tf.norm(tf.sub(a, b)), tf.maximum(tf.norm(b), 1e-30)).dataSync()[0]!;
      if (relative > 1e-2) {
        verdict = `it differs from finite differences by ${(relative * 100).toFixed(0)}% (tf.js loses the second derivative of ops whose gradient reads their output: tanh, sigmoid, softmax, exp)`;
      }
    });
    return verdict;
  } catch (error) {
    releaseTape();
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * tf.js (4.22) keeps a clone of every tensor a recorded op saves for its gradient until the backward
 * pass finishes; when the backward pass throws (an op without a gradient), they stay allocated, and
 * with them a copy of every weight the forward pass read. Frees what the failed pass left on the tape.
 */
function releaseTape(): void {
  const state = (tf.engine() as unknown as { state?: { gradientDepth?: number; activeTape?: { saved?: tf.Tensor[] }[] | null } }).state;
  if (state === undefined || state.gradientDepth !== 0 || !Array.isArray(state.activeTape)) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}

/**
 * H_T u for every target (sets = targets), per covered layer. Call inside `tf.tidy`.
 *
 * - `double-backward`: the gradient of <grad L_T, u> with respect to the weights (tf.js nested
 *   gradients): exact, but only where every op on the path has a differentiable gradient.
 * - `finite-difference`: differences of target gradients, each materialised from a target pass (no
 *   weight-gradient pass); the weights are restored exactly. Given `atWeights` (the target gradients
 *   at w, which a step's first-order pass already recorded): the secant along the step itself,
 *   grad L_T(w) - grad L_T(w - u): one extra target pass, equal to H_T u as the step shrinks, and
 *   along a real step the average curvature it meets. That matters with ReLU: an infinitesimal
 *   difference has no stable value across its kinks (measured on a ReLU MLP: 2.8 at 1e-5 of the
 *   weights' norm, 29 at 1e-3, 4.7 at 1e-2), while the secant over the step is what the step's real
 *   loss change contains. Without `atWeights` (the attach-time check of double backward, on a random
 *   direction): central differences (grad L_T(w + e u) - grad L_T(w - e u)) / 2e with e u at 1e-3 of
 *   the weights' norm, error O(e^2) on smooth models.
 */
export function hessianVectorProducts(
  method: HvpMethod,
  ctx: HessianContext,
  u: ReadonlyMap<string, LayerParams>,
  atWeights?: ReadonlyMap<string, LayerParams>,
): Map<string, LayerParams> {
  const keys = [...u.keys()].filter((k) => (ctx.weights.get(k)?.length ?? 0) > 0);
  const vars = keys.flatMap((k) => [...ctx.weights.get(k)!]);
  const dirs = keys.flatMap((k) => weightShaped(u.get(k)!, 0));
  if (method === 'double-backward') {
    const perTarget = targetLosses(ctx).map((loss) => {
      const { grads } = tf.variableGrads(() => {
        const { grads: inner } = tf.variableGrads(loss, vars);
        return tf.addN(vars.map((v, i) => tf.sum(tf.mul(inner[v.name]!, dirs[i]!)))) as tf.Scalar;
      }, vars);
      let at = 0;
      return new Map(
        keys.map((k) => {
          const count = ctx.weights.get(k)!.length;
          const tensors = vars.slice(at, at + count).map((v) => grads[v.name] ?? tf.zerosLike(v));
          at += count;
          return [k, fromWeights(u.get(k)!.layout, tensors)] as const;
        }),
      );
    });
    return new Map(keys.map((k) => [k, concatSets(perTarget.map((m) => m.get(k)!))]));
  }
  const norm = (ts: readonly tf.Tensor[]) => tf.sqrt(tf.addN(ts.map((t) => tf.sum(tf.square(t)))));
  const originals = vars.map((v) => v.clone());
  const at = (step: tf.Scalar | number) => {
    vars.forEach((v, i) => v.assign(tf.add(originals[i]!, tf.mul(step, dirs[i]!))));
    return targetGradients(ctx);
  };
  try {
    if (atWeights !== undefined) {
      const after = at(-1);
      return new Map(keys.map((k) => [k, combine(atWeights.get(k)!, after.get(k)!, (w, next) => tf.sub(w, next))]));
    }
    const e = tf.div(tf.mul(1e-3, tf.maximum(norm(vars), 1e-6)), tf.maximum(norm(dirs), 1e-30)) as tf.Scalar;
    const plus = at(e);
    const minus = at(tf.neg(e));
    return new Map(keys.map((k) => [k, combine(plus.get(k)!, minus.get(k)!, (p, m) => tf.div(tf.sub(p, m), tf.mul(e, 2)))]));
  } finally {
    vars.forEach((v, i) => v.assign(originals[i]!));
  }
}
