// attach(): wires a model, its resolved options, the layer plan, the scorer and delivery into a Run.
import * as tf from '@tensorflow/tfjs';
import { SketchStore } from '../accumulators/sketches.js';
import { TokenTotals } from '../accumulators/tokens.js';
import { DeviceTotals } from '../accumulators/totals.js';
import { InrunError, preview } from '../errors.js';
import type { WeightLayout } from '../ghost/types.js';
import { disposeProjections, makeProjections, sketchWidth } from '../ghost/sketch.js';
import type { Recorder } from '../hooks/capture.js';
import { planFused } from '../hooks/fused.js';
import { checkEmbeddingGradient } from '../hooks/gather.js';
import type { Restore } from '../hooks/restore.js';
import { planLayers } from '../layers/plan.js';
import { supportedClasses } from '../layers/registry.js';
import type { Run } from '../run/api.js';
import { requireCheckpointFolders } from '../run/checkpoint-choice.js';
import { claim } from '../run/claim.js';
import { RunInfoLog } from '../run/info-log.js';
import { LearningCheck } from '../run/learning-check.js';
import { AttributionRun } from '../run/run.js';
import { Attributor } from '../scoring/attributor.js';
import { tryDoubleBackward, type HessianContext, type HvpMethod, type Include } from '../scoring/hessian.js';
import { METHODS, type MethodDef } from '../scoring/methods.js';
import { unsupportedOptimizer } from '../scoring/preconditioner.js';
import { disposeTargets, prepareTargets, targetPass, type TargetSet } from '../scoring/targets.js';
import { Delivery } from '../stream/delivery.js';
import type { CoveredLayer, FunctionalModel, Method, RunInfo, SkippedLayer } from '../types.js';
import { VERSION } from '../version.js';
import { warnOnPartialCoverage } from './coverage.js';
import { warnOnHalfFloat } from './precision.js';
import { adaptModel, type ModelAdapter } from '../model/adapter.js';
import { resolveOptions, type AttachOptions } from './options.js';

function methodDef(method: Method): MethodDef {
  return METHODS[method];
}

/** Hand-written models reveal their layers when they run: one target pass at attach time finds them. */
function discoverLayers(model: ModelAdapter, targets: TargetSet | null): { layers: (CoveredLayer & { embedding: boolean })[]; weights: Map<string, tf.Variable[]>; layouts: Map<string, WeightLayout> } {
  const group = targets?.groups[0];
  if (group === undefined) return { layers: [], weights: new Map(), layouts: new Map() };
  const pass = targetPass(group, model);
  try {
    pass.losses.dispose();
    const found = [...pass.capture.layers].map(([name, rec]) => [name, rec.recorder] as const);
    return {
      layers: found.map(([name, r]) => ({ name, kind: r.kind, params: r.layout.params, path: null, embedding: r.embedding })),
      weights: new Map(found.map(([name, r]) => [name, [...r.weights]])),
      layouts: new Map(found.map(([name, r]) => [name, r.layout])),
    };
  } finally {
    pass.capture.dispose();
  }
}

/** Paths that read or move the weights themselves need every covered layer's weights as tf.Variables. */
function requireVariables(covered: readonly CoveredLayer[], weights: ReadonlyMap<string, readonly tf.Variable[]>, who: string, field: string): void {
  for (const layer of covered) {
    if ((weights.get(layer.name)?.length ?? 0) === 0) {
      throw new InrunError(`${who} needs the weights of layer "${layer.name}" as tf.Variables (pass variables to ops.dense / ops.embedding)`, { field, code: 'unsupported_model' });
    }
  }
}

/** How shapley2 gets H_T u: the option, or for 'auto' double backward when one trial works. */
function chooseHvp(option: 'auto' | HvpMethod, ctx: HessianContext, covered: readonly CoveredLayer[], pending: Promise<void>[]): { method: HvpMethod } {
  requireVariables(covered, ctx.weights, 'shapley2', 'methods');
  if (option === 'finite-difference') return { method: option };
  const decide = (why: string | null): HvpMethod => {
    if (why === null) return 'double-backward';
    if (option === 'double-backward') throw new InrunError(`double backward does not work for this model: ${why}`, { field: 'hvp', code: 'unsupported_model' });
    return 'finite-difference';
  };
  const why = tryDoubleBackward(ctx);
  if (!(why instanceof Promise)) return { method: decide(why) };
  // Decided before the first step (the run awaits `pending`); the holder is what the scorer reads.
  const chosen: { method: HvpMethod } = { method: 'double-backward' };
  pending.push(why.then((w) => void (chosen.method = decide(w))));
  return chosen;
}

/** The scorer's Hessian settings, reading the method from `chosen` (decided at attach, or before the first step). */
function hessianOf(chosen: { method: HvpMethod }, weights: Map<string, tf.Variable[]>, layouts: Map<string, WeightLayout>) {
  return {
    get method() {
      return chosen.method;
    },
    weights,
    layouts,
  };
}

/**
 * Attaches in-run attribution to a model the user already trains. Returns a {@link Run}: train with
 * `run.fit` / `run.fitDataset` (or the model's own `fit` and `fitDataset`, which now route through the
 * run), or `run.step(ids, fn)` in custom loops; then read `run.scores()` and `run.close()`.
 *
 * Bad options fail here, before any training, with an {@link InrunError} naming the field.
 */
export function attach(model: tf.LayersModel | FunctionalModel, attachOptions: AttachOptions = {}): Run {
  const options = resolveOptions(attachOptions);
  // Checkpoint folders need a file system: fail here in the browser entry, not at the first checkpoint.
  if (options.checkpoints !== null) requireCheckpointFolders('checkpoints.dir');
  warnOnHalfFloat();
  const adapter = adaptModel(model, options.optimizer);
  const selection = options.layers;
  const methods = options.methods;
  const defs = methods.map(methodDef);
  const release: Restore[] = [];
  let totals: DeviceTotals | null = null;
  let tokens: TokenTotals | null = null;
  try {
    const embeddingLayer = adapter.layersModel?.layers.find((l) => l.getClassName() === 'Embedding' && l.trainable);
    if (embeddingLayer !== undefined) checkEmbeddingGradient(embeddingLayer.name);
    // Claim first: a second attach must fail before it instruments anything twice.
    release.push(claim(adapter.optimizer, 'optimizer'));
    if (adapter.layersModel !== null) release.push(claim(adapter.layersModel, 'model'));
    // Checks of values that cannot read synchronously (every backend but cpu) finish before the first step.
    const pending: Promise<void>[] = [];
    const targets = prepareTargets(options.targets, adapter, pending);
    release.push(() => disposeTargets(targets));
    let covered: CoveredLayer[];
    let weights: Map<string, tf.Variable[]>;
    let skipped: SkippedLayer[] = [];
    let layouts: Map<string, WeightLayout>;
    let trainableParams: number | null = null;
    let include: Include = () => true;
    let embeddings: CoveredLayer[];
    let recorders: ReadonlyMap<string, Recorder> = new Map();
    if (adapter.layersModel !== null) {
      const plan = planLayers(adapter.layersModel, selection);
      covered = plan.covered;
      weights = plan.weights;
      layouts = plan.layouts;
      skipped = plan.skipped;
      trainableParams = plan.trainableParams;
      if (covered.length === 0) {
        const why = skipped.map((s) => `${s.name} (${s.reason})`).join(', ') || 'the model has no layers with weights';
        throw new InrunError(`no layer to attribute through: inrun supports ${supportedClasses().join(', ')} layers; skipped: ${why}`, {
          field: 'layers',
          code: 'unsupported_layer',
        });
      }
      embeddings = covered.filter((l) => plan.embedding.has(l.name));
      recorders = plan.recorders;
      release.push(plan.instrument());
    } else {
      const discovered = discoverLayers(adapter, targets);
      const found = discovered.layers;
      weights = discovered.weights;
      layouts = discovered.layouts;
      const names = Array.isArray(selection) ? new Set(selection as readonly string[]) : null;
      for (const name of names ?? []) {
        if (found.length > 0 && !found.some((l) => l.name === name)) {
          throw new InrunError(`unknown layer ${preview(name)}; the model's ops layers: ${found.map((l) => l.name).join(', ')}`, { field: 'layers' });
        }
      }
      include = (key, embedding) => (selection === 'all' ? true : selection === 'embedding' ? embedding : names!.has(key));
      const kept = found.filter((l) => include(l.name, l.embedding));
      covered = kept.map(({ embedding: _, ...layer }) => layer);
      embeddings = kept.filter((l) => l.embedding).map(({ embedding: _, ...layer }) => layer);
      weights = new Map([...weights].filter(([name]) => covered.some((l) => l.name === name)));
    }
    if (options.sketch !== null && adapter.layersModel === null) {
      throw new InrunError('sketches are saved with checkpoints, which need a tf.LayersModel', { field: 'sketch', code: 'unsupported_model' });
    }
    const sketch =
      options.sketch === null
        ? null
        : (() => {
            const order = covered.map((l) => l.name);
            const layers = order.map((name) => layouts.get(name)!.pieces);
            const pieces = layers.flat();
            const { size, seed } = options.sketch!;
            const projections = makeProjections(pieces, size, seed);
            release.push(() => disposeProjections(projections));
            const store = new SketchStore(pieces.reduce((sum, piece) => sum + sketchWidth(piece, size), 0));
            release.push(() => store.dispose());
            return { order, layers, projections, store, size, seed };
          })();
    if (options.targetEvery > 1 && methods.includes('shapley2')) {
      throw new InrunError("shapley2 needs a target pass at every step's weights; leave targetEvery at 1", { field: 'targetEvery' });
    }
    const chosenHvp =
      methods.includes('shapley2') && targets !== null
        ? chooseHvp(options.hvp, { model: adapter, targets, include, weights, layouts }, covered, pending)
        : null;
    const hvp = chosenHvp?.method ?? null;
    const wantsTokens = methods.includes('tracin_we');
    if (wantsTokens && embeddings.length === 0 && (adapter.layersModel !== null || targets !== null)) {
      throw new InrunError('tracin_we needs an embedding layer; none is covered', { field: 'methods', code: 'unsupported_layer' });
    }
    const tokenOptions = options.tokens;
    const tokenLayer = wantsTokens ? (tokenOptions.layer ?? embeddings[0]?.name ?? null) : null;
    if (tokenOptions.layer !== undefined && !embeddings.some((l) => l.name === tokenOptions.layer)) {
      throw new InrunError(`expected a covered embedding layer (${embeddings.map((l) => l.name).join(', ') || 'none'})`, {
        field: 'tokens.layer',
      });
    }
    const targetNames = targets?.names ?? [];
    const columns = defs.flatMap((d) => d.columns(targetNames));
    totals = new DeviceTotals(columns.length);
    tokens = tokenLayer !== null ? new TokenTotals(targetNames.length) : null;
    const className = adapter.optimizer.getClassName();
    const optimizerAware = options.update === 'optimizer';
    if (optimizerAware) {
      const why = unsupportedOptimizer(adapter.optimizer);
      if (why !== null) throw new InrunError(`update: 'optimizer' needs an optimizer whose update inrun knows: ${why}`, { field: 'update', code: 'unsupported_model' });
      requireVariables(covered, weights, "update: 'optimizer'", 'update');
    }
    const fused = planFused(adapter, targets, recorders, options);
    // Over the kinds' probing hooks (removed first: release runs in reverse).
    if (fused !== null) release.push(fused.instrument());
    const runInfo: RunInfo = {
      runId: options.runId,
      startedAt: new Date().toISOString(),
      inrunVersion: VERSION,
      tfjsVersion: tf.version_core,
      backend: tf.getBackend(),
      model: { name: adapter.name, className: adapter.className, params: adapter.params },
      optimizer: { className, attribution: className === 'SGD' ? 'exact' : optimizerAware ? 'optimizer-aware' : 'sgd-proxy' },
      lossReduction: adapter.lossReduction,
      methods,
      columns,
      targets: targetNames.map((name, i) => ({ name, rows: targets!.rows[i]! })),
      layers: (() => {
        const coveredParams = covered.reduce((n, l) => n + l.params, 0);
        return { covered, skipped, coveredParams, trainableParams: trainableParams ?? coveredParams };
      })(),
      targetEvery: options.targetEvery,
      // 'fused' falls back to the separate pass where it would not be exact (docs/hooks.md).
      targetPass: targets === null ? null : fused === null ? 'separate' : 'fused',
      hvp,
      seeds: [],
      meta: options.meta,
    };
    const attributor = new Attributor({
      model: adapter,
      targets,
      methods: defs,
      covered,
      include,
      ghostPath: options.ghostPath,
      tokenLayer,
      totals,
      tokens,
      hessian: chosenHvp === null ? null : hessianOf(chosenHvp, weights, layouts),
      update: optimizerAware && className !== 'SGD' ? { optimizer: adapter.optimizer, weights } : null,
      targetEvery: options.targetEvery,
      sketch,
    });
    if (adapter.layersModel !== null) warnOnPartialCoverage(adapter.layersModel, selection, runInfo.layers);
    // Built complete above (layers, targetPass, hvp): the sinks' first look at the run is its final shape.
    const info = new RunInfoLog(runInfo);
    // The targets at the starting weights, for close()'s "has the model learnt?" (kept on the device, read at close).
    const learning = targets === null ? null : new LearningCheck(adapter, targets);
    release.push(() => learning?.dispose());
    // Off cpu, whether double backward works is known only after the trial's asynchronous read (before the first step).
    if (chosenHvp !== null && pending.length > 0) pending.push(Promise.all(pending).then(() => info.setHvp(chosenHvp.method)));
    return new AttributionRun({
      info,
      model: adapter,
      scoring: {
        attributor,
        totals,
        tokens,
        tokenOptions,
        columns: columns.map((c) => c.name),
        targetNames,
        fused,
        stepRecords: options.delivery.stepRecords,
      },
      delivery: new Delivery(options.sinks, () => info.current, options.delivery),
      flush: {
        flushEvery: options.delivery.flushEvery,
        totalsEvery: options.delivery.totalsEvery,
        nonFinite: options.nonFinite,
      },
      checkpoints: options.checkpoints,
      sketch,
      metrics: options.metrics,
      seed: options.seed,
      examples: options.examples,
      learning,
      release: () => {
        for (const r of release.reverse()) r();
      },
      checks: pending,
    });
  } catch (error) {
    for (const r of release.reverse()) r();
    totals?.dispose();
    tokens?.dispose();
    throw error;
  }
}
