import * as tf from '@tensorflow/tfjs';
import type { MethodDef, StepScale } from './accumulators/methods.js';
import type { TokenTotals } from './accumulators/tokens.js';
import type { DeviceTotals } from './accumulators/totals.js';
import { stepProducts, type ProductNeeds, type StepProducts } from './ghost/products.js';
import type { GhostPath, LayerRows } from './ghost/rows.js';
import type { Capture, LayerKind } from './hooks/capture.js';
import type { ModelAdapter } from './model.js';
import { targetPass, type TargetSet } from './targets.js';
import type { CoveredLayer } from './types.js';

export interface AttributorConfig {
  readonly model: ModelAdapter;
  readonly targets: TargetSet | null;
  readonly methods: readonly MethodDef[];
  readonly covered: CoveredLayer[];
  /** Which recorded layers count (a `layers` selection on hand-written models). */
  readonly include: (key: string, kind: LayerKind) => boolean;
  readonly ghostPath: 'auto' | GhostPath;
  readonly tokenLayer: string | null;
  readonly totals: DeviceTotals;
  readonly tokens: TokenTotals | null;
}

/** What one step leaves for its per-step record (kept tensors; the record buffer frees them). */
export interface StepOutput {
  readonly values: tf.Tensor2D;
  readonly targetLosses: tf.Tensor1D | null;
}

function needsOf(methods: readonly MethodDef[], tokenLayer: string | null): ProductNeeds {
  const any = (k: keyof ProductNeeds) => methods.some((m) => Boolean(m.needs[k]));
  return { target: any('target'), targetEmbedding: any('targetEmbedding'), self: any('self'), tokens: tokenLayer };
}

function concatOrNull<T extends tf.Tensor>(parts: (T | null)[], axis: number): T | null {
  const present = parts.filter((p): p is T => p !== null);
  if (present.length === 0) return null;
  return present.length === 1 ? present[0]! : (tf.concat(present, axis) as T);
}

/**
 * Turns one step's recorded rows into per-example values and adds them to the device totals. All
 * device work happens in one `tf.tidy`; nothing is read back to the CPU.
 */
export class Attributor {
  private readonly needs: ProductNeeds;

  constructor(private readonly config: AttributorConfig) {
    this.needs = needsOf(config.methods, config.tokenLayer);
  }

  step(capture: Capture, slots: Int32Array, scale: StepScale, keep: boolean): StepOutput | null {
    const { model, targets, methods, include, ghostPath, totals, tokens } = this.config;
    const n = slots.length;
    return tf.tidy(() => {
      const train = capture.rows(n, include);
      this.noteLayers(train);
      const self = this.needs.self
        ? stepProducts(train, null, null, { target: false, targetEmbedding: false, self: true, tokens: null }, ghostPath).self
        : null;
      const perGroup: StepProducts[] = [];
      const losses: tf.Tensor1D[] = [];
      const targetNeeds = { ...this.needs, self: false };
      const wantTargets = targetNeeds.target || targetNeeds.targetEmbedding || targetNeeds.tokens !== null;
      for (const group of wantTargets ? (targets?.groups ?? []) : []) {
        const pass = targetPass(group, model);
        try {
          perGroup.push(stepProducts(train, pass.capture.rows(group.rows, include), group.layout, targetNeeds, ghostPath));
          losses.push(pass.losses);
        } catch (error) {
          pass.losses.dispose();
          throw error;
        } finally {
          pass.capture.dispose();
        }
      }
      const k = targets?.names.length ?? 0;
      const fill = (pick: (p: StepProducts) => tf.Tensor2D | null, want: boolean): tf.Tensor2D | null =>
        want
          ? concatOrNull<tf.Tensor2D>(
              perGroup.map((p, g) => pick(p) ?? tf.zeros<tf.Rank.R2>([n, targets!.groups[g]!.layout.ranges.length])),
              1,
            )
          : null;
      const tokenParts = perGroup.map((p) => p.tokens);
      const products: StepProducts = {
        target: fill((p) => p.target, targetNeeds.target),
        targetEmbedding: fill((p) => p.targetEmbedding, targetNeeds.targetEmbedding),
        self,
        tokens:
          tokenParts.length > 0 && tokenParts.every((t) => t !== null)
            ? { ids: tokenParts[0]!.ids, terms: tf.concat(tokenParts.map((t) => t.terms), 2) as tf.Tensor3D }
            : null,
        paths: new Map(perGroup.flatMap((p) => [...p.paths])),
      };
      this.notePaths(products.paths);
      const values = tf.concat(methods.map((m) => m.values(products, scale, n, k)), 1) as tf.Tensor2D;
      totals.add(slots, values);
      const tokenMethod = methods.find((m) => m.tokenValues !== undefined);
      if (tokens !== null && products.tokens !== null && tokenMethod?.tokenValues) {
        tokens.add(slots, products.tokens.ids, tokenMethod.tokenValues(products.tokens.terms, scale));
      }
      const targetLosses = losses.length === 0 ? null : concatOrNull(losses, 0);
      const out: StepOutput | null = keep
        ? { values: tf.keep(values), targetLosses: targetLosses && tf.keep(targetLosses.clone()) }
        : null;
      tf.dispose(losses);
      return out as unknown as tf.TensorContainer;
    }) as unknown as StepOutput | null;
  }

  /** Hand-written models reveal their layers as they run: add newcomers to the covered list. */
  private noteLayers(train: ReadonlyMap<string, LayerRows>): void {
    for (const [name, layer] of train) {
      if (this.config.covered.some((c) => c.name === name)) continue;
      const params =
        layer.kind === 'dense'
          ? (layer.rows.a.shape[2] + (layer.hasBias ? 1 : 0)) * layer.rows.b.shape[2]
          : layer.vocab * layer.rows.b.shape[2];
      this.config.covered.push({ name, kind: layer.kind, params, path: null });
    }
  }

  private notePaths(paths: ReadonlyMap<string, GhostPath>): void {
    for (const layer of this.config.covered) {
      if (layer.path === null) layer.path = paths.get(layer.name) ?? null;
    }
  }
}
