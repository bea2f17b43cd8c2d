// The step scorer: one step's captured rows -> per-example values of every method, added to the device totals.
import * as tf from '@tensorflow/tfjs';
import type { MethodDef, StepScale } from './methods.js';
import type { TokenTotals } from '../accumulators/tokens.js';
import type { DeviceTotals } from '../accumulators/totals.js';
import { stepProducts, type ProductNeeds } from '../ghost/products.js';
import type { GhostPath, LayerRows, PieceShape, ReportedPath, WeightLayout } from '../ghost/rows.js';
import type { Capture } from '../hooks/capture.js';
import type { ModelAdapter } from '../model/adapter.js';
import { hessianVectorProducts, paramProducts, targetGradientsOf, updateDirection, type HvpMethod, type Include, type LayerParams } from './hessian.js';
import { disposePasses, targetPasses, type GroupPass, type TargetSet } from './targets.js';
import type { SketchStore } from '../accumulators/sketches.js';
import { sketchRows, sketchWidth, type Projection } from '../ghost/sketch.js';
import type { CoveredLayer } from '../types.js';
import { precondition, preconditionedProducts, stepFactors, type UpdateRule } from './preconditioner.js';

/** In-run sketch logging: projections per covered layer (in `order`) and the store. */
export interface RunSketch {
  readonly order: readonly string[];
  /** Per layer in `order`, its pieces' shapes; `projections` has one entry per piece, in the same order. */
  readonly layers: readonly (readonly PieceShape[])[];
  readonly projections: readonly Projection[];
  readonly store: SketchStore;
  readonly size: number;
  readonly seed: number;
}

export interface AttributorConfig {
  readonly model: ModelAdapter;
  readonly targets: TargetSet | null;
  readonly methods: readonly MethodDef[];
  readonly covered: CoveredLayer[];
  /** Which recorded layers count (a `layers` selection on hand-written models). */
  readonly include: Include;
  readonly ghostPath: 'auto' | GhostPath;
  readonly tokenLayer: string | null;
  readonly totals: DeviceTotals;
  readonly tokens: TokenTotals | null;
  /** Gradient sketches kept per example (in-run logging for later TracIn queries), or null. */
  readonly sketch: RunSketch | null;
  /** Second-order values: how H_T u is computed, and the covered layers' weights. */
  readonly hessian: {
    readonly method: HvpMethod;
    readonly weights: ReadonlyMap<string, readonly tf.Variable[]>;
    readonly layouts: ReadonlyMap<string, WeightLayout>;
  } | null;
  /** Optimizer-aware values (`update: 'optimizer'`), or null for the SGD update. */
  readonly update: UpdateRule | null;
  /** Steps between two target passes (1 = every step, exact); between them the last rows are reused. */
  readonly targetEvery: number;
}

/** What one step leaves for its per-step record (kept tensors; the record buffer frees them). */
export interface StepOutput {
  /** `[n, columns]`, or null when no record is kept. */
  readonly values: tf.Tensor2D | null;
  readonly targetLosses: tf.Tensor1D | null;
  /** Scalar bool: the loss, target losses and every value are finite (read with the record, never synced alone). */
  readonly finite: tf.Scalar;
}

function rescale(params: Map<string, LayerParams>, scaleBy: ((key: string, p: LayerParams) => LayerParams) | undefined): Map<string, LayerParams> {
  return scaleBy === undefined ? params : new Map([...params].map(([key, p]) => [key, scaleBy(key, p)]));
}

function needsOf(methods: readonly MethodDef[], tokenLayer: string | null): ProductNeeds {
  const any = (k: keyof ProductNeeds) => methods.some((m) => Boolean(m.needs[k]));
  return { target: any('target'), targetEmbedding: any('targetEmbedding'), self: any('self'), tokens: tokenLayer, hessian: any('hessian') };
}

/**
 * Turns one step's recorded rows into per-example values and adds them to the device totals. All
 * device work happens in one `tf.tidy`; nothing is read back to the CPU.
 */
export class Attributor {
  private readonly needs: ProductNeeds;

  private readonly wantsTargets: boolean;

  constructor(private readonly config: AttributorConfig) {
    this.needs = needsOf(config.methods, config.tokenLayer);
    this.wantsTargets = this.needs.target || this.needs.targetEmbedding || this.needs.tokens !== null;
  }

  /**
   * `loss`: the step's training loss (checked for finiteness with the values). `grads`: the
   * optimizer's gradients of this step (from `computeGradients`), for optimizer-aware values. A
   * non-finite step adds nothing to the totals (a device-side select, no host sync). `fusedPasses`:
   * the target rows of a fused step, split off its capture.
   */
  step(
    capture: Capture,
    slots: Int32Array,
    scale: StepScale,
    keep: boolean,
    step: number,
    loss: tf.Tensor,
    grads: tf.NamedTensorMap | null = null,
    fusedPasses?: GroupPass[],
  ): StepOutput {
    const { model, targets, methods, include, ghostPath, totals, tokens } = this.config;
    const n = slots.length;
    return tf.tidy(() => {
      const train = capture.rows(n, include);
      this.noteLayers(train);
      // A fused step brings its target rows (owned by the caller); otherwise the target passes run here.
      const { passes, fresh } =
        fusedPasses !== undefined ? { passes: fusedPasses, fresh: true } : this.wantsTargets ? this.targetPasses() : { passes: [] as GroupPass[], fresh: false };
      try {
        const losses = fresh ? passes.map((p) => p.pass.losses) : [];
        const groups = passes.map(({ group, pass }) => ({ rows: pass.capture.rows(group.rows, include), layout: group.layout }));
        const { hessian, update } = this.config;
        // Optimizer-aware: target products come from materialised, rescaled target gradients instead of the ghost kernel.
        const factors = update === null ? null : stepFactors(update, train, grads, n);
        const scaleBy =
          factors === null
            ? undefined
            : (key: string, p: LayerParams) => {
                const f = factors.get(key);
                return f === undefined ? p : precondition(p, f);
              };
        const ghost = stepProducts(n, train, groups, factors === null ? this.needs : { ...this.needs, target: false, targetEmbedding: false, tokens: null }, ghostPath);
        const first =
          factors === null
            ? ghost
            : {
                ...ghost,
                ...preconditionedProducts(train, groups, factors, this.needs, n),
                paths: new Map([...train.keys()].map((key) => [key, 'materialised' as const])),
              };
        const products =
          this.needs.hessian && hessian !== null && targets !== null
            ? {
                ...first,
                hessian: paramProducts(
                  train,
                  rescale(
                    hessianVectorProducts(
                      hessian.method,
                      { model, targets, include, weights: hessian.weights, layouts: hessian.layouts },
                      updateDirection(train, scale.learningRate, n, scaleBy),
                      // The secant along the step starts from the target gradients this step's passes recorded at w.
                      hessian.method === 'finite-difference' ? targetGradientsOf(groups) : undefined,
                    ),
                    scaleBy,
                  ),
                  n,
                ),
              }
            : first;
        this.notePaths(products.paths);
        if (this.config.sketch !== null) this.logSketches(this.config.sketch, train, slots, scale, step);
        const k = targets?.names.length ?? 0;
        const values = tf.concat(methods.map((m) => m.values(products, scale, n, k)), 1) as tf.Tensor2D;
        const targetLosses = losses.length === 0 ? null : losses.length === 1 ? losses[0]!.clone() : (tf.concat(losses) as tf.Tensor1D);
        const finite = tf.logicalAnd(
          tf.all(tf.isFinite(values)),
          tf.logicalAnd(tf.all(tf.isFinite(loss)), targetLosses === null ? tf.scalar(true, 'bool') : tf.all(tf.isFinite(targetLosses))),
        ) as tf.Scalar;
        totals.add(slots, values, finite);
        const tokenMethod = methods.find((m) => m.tokenValues !== undefined);
        if (tokens !== null && products.tokens !== null && tokenMethod?.tokenValues) {
          const terms = tokenMethod.tokenValues(products.tokens.terms, scale);
          tokens.add(slots, products.tokens.ids, tf.where(finite, terms, tf.zerosLike(terms)));
        }
        const out: StepOutput = {
          values: keep ? tf.keep(values) : null,
          targetLosses: keep && targetLosses !== null ? tf.keep(targetLosses) : null,
          finite: tf.keep(finite),
        };
        return out as unknown as tf.TensorContainer;
      } finally {
        if (this.config.targetEvery === 1) this.releaseTargets();
      }
    }) as unknown as StepOutput;
  }

  /**
   * The target passes for this step: fresh ones every `targetEvery` steps, else the last ones (their
   * rows were recorded at older weights; `fresh` says which). They stay allocated between steps.
   */
  private targetPasses(): { passes: GroupPass[]; fresh: boolean } {
    if (this.cached !== null && this.cached.age < this.config.targetEvery) {
      this.cached.age++;
      return { passes: this.cached.passes, fresh: false };
    }
    this.releaseTargets();
    const passes = targetPasses(this.config.targets?.groups ?? [], this.config.model);
    this.cached = { passes, age: 1 };
    return { passes, fresh: true };
  }

  private cached: { passes: GroupPass[]; age: number } | null = null;

  private releaseTargets(): void {
    disposePasses(this.cached?.passes ?? []);
    this.cached = null;
  }

  /** Frees the target passes kept between steps. */
  dispose(): void {
    this.releaseTargets();
  }

  /** Stores each example's gradient sketch (of its own loss: the recorded share divided by the loss scale). */
  private logSketches(sketch: RunSketch, train: ReadonlyMap<string, LayerRows>, slots: Int32Array, scale: StepScale, step: number): void {
    const n = slots.length;
    let at = 0;
    const blocks = sketch.order.map((name, i) => {
      const shapes = sketch.layers[i]!;
      const projections = sketch.projections.slice(at, (at += shapes.length));
      const rows = train.get(name);
      if (rows !== undefined) return sketchRows([rows], projections);
      return tf.zeros<tf.Rank.R2>([n, shapes.reduce((w, s) => w + sketchWidth(s, sketch.size), 0)]);
    });
    const all = (blocks.length === 1 ? blocks[0]! : tf.concat(blocks, 1)) as tf.Tensor2D;
    sketch.store.set(slots, tf.div(all, scale.lossScale), step);
  }

  /** Hand-written models reveal their layers as they run: add newcomers to the covered list. */
  private noteLayers(train: ReadonlyMap<string, LayerRows>): void {
    for (const [name, layer] of train) {
      if (this.config.covered.some((c) => c.name === name)) continue;
      this.config.covered.push({ name, kind: layer.kind, params: layer.layout.params, path: null });
    }
  }

  private notePaths(paths: ReadonlyMap<string, ReportedPath>): void {
    for (const layer of this.config.covered) {
      if (layer.path === null) layer.path = paths.get(layer.name) ?? null;
    }
  }
}
