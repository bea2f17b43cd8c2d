import * as tf from '@tensorflow/tfjs';
import { METHODS, TARGET_METHODS, type MethodDef } from '../scoring/methods.js';
import { TokenTotals } from '../accumulators/tokens.js';
import { DeviceTotals } from '../accumulators/totals.js';
import { Attributor } from '../scoring/attributor.js';
import { InrunError, invalid, preview } from '../errors.js';
import type { Restore } from '../hooks/restore.js';
import { planLayers } from '../layers/plan.js';
import { supportedClasses } from '../layers/registry.js';
import type { WeightLayout } from '../ghost/rows.js';
import { SketchStore } from '../accumulators/sketches.js';
import { disposeProjections, makeProjections, sketchWidth } from '../ghost/sketch.js';
import { unsupportedOptimizer } from '../scoring/preconditioner.js';
import { tryDoubleBackward, type HessianContext, type HvpMethod, type Include } from '../scoring/hessian.js';
import { adaptModel, type ModelAdapter } from './model.js';
import { AttributionRun, claim, type Run } from '../run/run.js';
import { Delivery } from '../stream/delivery.js';
import type { Sink } from '../store/sink.js';
import { disposeTargets, prepareTargets, targetPass, type TargetSet } from '../scoring/targets.js';
import type { AttachOptions, CoveredLayer, FunctionalModel, Method, RunInfo, SkippedLayer } from '../types.js';
import { VERSION } from '../version.js';

const OPTION_KEYS: ReadonlySet<string> = new Set([
  'targets',
  'methods',
  'layers',
  'sinks',
  'examples',
  'seed',
  'optimizer',
  'ghostPath',
  'flushEvery',
  'stepRecords',
  'tokens',
  'runId',
  'meta',
  'delivery',
  'sinkErrors',
  'totalsEvery',
  'metrics',
  'hvp',
  'update',
  'targetEvery',
  'checkpoints',
  'sketch',
]);
const ALL_METHODS: readonly Method[] = ['shapley1', 'shapley2', 'tracin_self', 'tracin_we'];

function checkOptions(options: AttachOptions): void {
  if (options === null || typeof options !== 'object') invalid('options', 'an options object', options);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InrunError(`unknown option; known options: ${[...OPTION_KEYS].join(', ')}`, { field: key });
  }
  const { flushEvery, stepRecords, ghostPath, seed, runId, sinks, tokens, delivery, sinkErrors, totalsEvery, metrics, hvp, update, targetEvery, checkpoints, sketch } = options;
  if (sketch !== undefined) {
    if (sketch === null || typeof sketch !== 'object' || !(Number.isInteger(sketch.size) && sketch.size >= 1)) invalid('sketch.size', 'a positive integer', sketch?.size);
    if (sketch.seed !== undefined && !Number.isInteger(sketch.seed)) invalid('sketch.seed', 'an integer', sketch.seed);
  }
  if (checkpoints !== undefined) {
    if (checkpoints === null || typeof checkpoints !== 'object' || typeof checkpoints.dir !== 'string' || checkpoints.dir.length === 0) {
      invalid('checkpoints', '{ dir, everySteps?, everyEpochs? }', checkpoints);
    }
    for (const key of ['everySteps', 'everyEpochs'] as const) {
      const v = checkpoints[key];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) invalid(`checkpoints.${key}`, 'a positive integer', v);
    }
    if (checkpoints.everySteps === undefined && checkpoints.everyEpochs === undefined) {
      throw new InrunError('say when: everySteps, everyEpochs or both', { field: 'checkpoints' });
    }
  }
  if (hvp !== undefined && !['auto', 'double-backward', 'finite-difference'].includes(hvp)) {
    invalid('hvp', "'auto', 'double-backward' or 'finite-difference'", hvp);
  }
  if (update !== undefined && update !== 'sgd' && update !== 'optimizer') invalid('update', "'sgd' or 'optimizer'", update);
  if (targetEvery !== undefined && !(Number.isInteger(targetEvery) && targetEvery >= 1)) invalid('targetEvery', 'a positive integer', targetEvery);
  if (metrics !== undefined && typeof metrics !== 'boolean' && (metrics === null || typeof metrics !== 'object')) {
    invalid('metrics', 'true, false or { meterProvider?, sourceLimit?, attributes? }', metrics);
  }
  if (typeof metrics === 'object' && metrics.sourceLimit !== undefined && !(Number.isInteger(metrics.sourceLimit) && metrics.sourceLimit >= 0)) {
    invalid('metrics.sourceLimit', 'an integer >= 0', metrics.sourceLimit);
  }
  if (metrics !== undefined && metrics !== false && stepRecords === false) {
    throw new InrunError('metrics are computed from step records; leave stepRecords on', { field: 'metrics' });
  }
  if (totalsEvery !== undefined && !(Number.isInteger(totalsEvery) && totalsEvery >= 0)) {
    invalid('totalsEvery', 'an integer >= 0', totalsEvery);
  }
  if (sinkErrors !== undefined && sinkErrors !== 'stop' && sinkErrors !== 'continue') invalid('sinkErrors', "'stop' or 'continue'", sinkErrors);
  if (delivery !== undefined) {
    if (delivery === null || typeof delivery !== 'object') invalid('delivery', '{ policy?, capacity? }', delivery);
    if (delivery.policy !== undefined && delivery.policy !== 'block' && delivery.policy !== 'drop') {
      invalid('delivery.policy', "'block' or 'drop'", delivery.policy);
    }
    if (delivery.capacity !== undefined && !(Number.isInteger(delivery.capacity) && delivery.capacity >= 1)) {
      invalid('delivery.capacity', 'a positive integer', delivery.capacity);
    }
  }
  if (flushEvery !== undefined && !(Number.isInteger(flushEvery) && flushEvery >= 1)) {
    invalid('flushEvery', 'a positive integer', flushEvery);
  }
  if (stepRecords !== undefined && typeof stepRecords !== 'boolean') {
    invalid('stepRecords', 'true or false', stepRecords);
  }
  if (ghostPath !== undefined && !['auto', 'pairwise', 'materialised'].includes(ghostPath)) {
    invalid('ghostPath', '\'auto\', \'pairwise\' or \'materialised\'', ghostPath);
  }
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) {
    invalid('seed', 'an integer in [0, 2^32)', seed);
  }
  if (runId !== undefined && (typeof runId !== 'string' || runId.length === 0)) {
    invalid('runId', 'a non-empty string', runId);
  }
  if (sinks !== undefined) {
    if (!Array.isArray(sinks)) invalid('sinks', 'an array of sinks', sinks);
    (sinks as unknown[]).forEach((s, i) => {
      const sink = s as Partial<Sink> | null;
      if (sink === null || typeof sink !== 'object' || typeof sink.open !== 'function' || typeof sink.close !== 'function') {
        invalid(`sinks[${i}]`, 'a sink with open() and close()', s);
      }
    });
  }
  if (tokens !== undefined) {
    if (tokens === null || typeof tokens !== 'object') invalid('tokens', 'an object', tokens);
    if (tokens.topK !== undefined && !(Number.isInteger(tokens.topK) && tokens.topK >= 1)) {
      invalid('tokens.topK', 'a positive integer', tokens.topK);
    }
    if (tokens.vocabulary !== undefined && !Array.isArray(tokens.vocabulary)) {
      invalid('tokens.vocabulary', 'an array of words indexed by token id', tokens.vocabulary);
    }
  }
}

function checkMethods(methods: readonly Method[] | undefined, hasTargets: boolean): Method[] {
  if (methods === undefined) return hasTargets ? ['shapley1', 'tracin_self'] : ['tracin_self'];
  if (!Array.isArray(methods) || methods.length === 0) {
    invalid('methods', `a non-empty array of ${ALL_METHODS.join(', ')}`, methods);
  }
  const seen = new Set<Method>();
  for (const m of methods as unknown[]) {
    if (!ALL_METHODS.includes(m as Method)) {
      throw new InrunError(`unknown method ${preview(m)}; expected one of ${ALL_METHODS.join(', ')}`, { field: 'methods' });
    }
    if (seen.has(m as Method)) throw new InrunError(`method ${preview(m)} is listed twice`, { field: 'methods' });
    if (TARGET_METHODS.has(m as Method) && !hasTargets) {
      throw new InrunError(`${String(m)} scores toward targets; give at least one target, e.g. { val: { xs, ys } }`, { field: 'targets' });
    }
    seen.add(m as Method);
  }
  return [...seen];
}

function methodDef(method: Method): MethodDef {
  return METHODS[method];
}

function checkLayers(layers: AttachOptions['layers']): 'all' | 'embedding' | readonly string[] {
  if (layers === undefined) return 'all';
  if (layers === 'all' || layers === 'embedding') return layers;
  if (Array.isArray(layers) && layers.every((l) => typeof l === 'string')) return layers;
  invalid('layers', '\'all\', \'embedding\' or an array of layer names', layers);
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
function chooseHvp(option: AttachOptions['hvp'], ctx: HessianContext, covered: readonly CoveredLayer[]): HvpMethod {
  requireVariables(covered, ctx.weights, 'shapley2', 'methods');
  if (option === 'finite-difference') return option;
  const why = tryDoubleBackward(ctx);
  if (why === null) return 'double-backward';
  if (option === 'double-backward') throw new InrunError(`double backward does not work for this model: ${why}`, { field: 'hvp', code: 'unsupported_model' });
  return 'finite-difference';
}

/**
 * Attaches in-run attribution to a model the user already trains. Returns a {@link Run}: train with
 * `run.fit` / `run.fitDataset` (or the model's own `fit` and `fitDataset`, which now route through the
 * run), or `run.step(ids, fn)` in custom loops; then read `run.scores()` and `run.close()`.
 *
 * Bad options fail here, before any training, with an {@link InrunError} naming the field.
 */
export function attach(model: tf.LayersModel | FunctionalModel, options: AttachOptions = {}): Run {
  checkOptions(options);
  const adapter = adaptModel(model, options.optimizer);
  const selection = checkLayers(options.layers);
  const hasTargets = options.targets !== undefined && Object.keys(options.targets ?? {}).length > 0;
  const methods = checkMethods(options.methods, hasTargets);
  const defs = methods.map(methodDef);
  const release: Restore[] = [];
  let totals: DeviceTotals | null = null;
  let tokens: TokenTotals | null = null;
  try {
    // Claim first: a second attach must fail before it instruments anything twice.
    release.push(claim(adapter.optimizer, 'optimizer'));
    if (adapter.layersModel !== null) release.push(claim(adapter.layersModel, 'model'));
    const targets = prepareTargets(options.targets, adapter);
    release.push(() => disposeTargets(targets));
    let covered: CoveredLayer[];
    let weights: Map<string, tf.Variable[]>;
    let skipped: SkippedLayer[] = [];
    let layouts: Map<string, WeightLayout>;
    let trainableParams: number | null = null;
    let include: Include = () => true;
    let embeddings: CoveredLayer[];
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
      release.push(plan.instrument());
    } else {
      const discovered = discoverLayers(adapter, targets);
      const found = discovered.layers;
      weights = discovered.weights;
      layouts = discovered.layouts;
      const names = Array.isArray(selection) ? new Set(selection as readonly string[]) : null;
      for (const name of names ?? []) {
        if (found.length > 0 && !found.some((l) => l.name === name)) {
          throw new InrunError(`unknown layer "${name}"; the model's ops layers: ${found.map((l) => l.name).join(', ')}`, { field: 'layers' });
        }
      }
      include = (key, embedding) => (selection === 'all' ? true : selection === 'embedding' ? embedding : names!.has(key));
      const kept = found.filter((l) => include(l.name, l.embedding));
      covered = kept.map(({ embedding: _, ...layer }) => layer);
      embeddings = kept.filter((l) => l.embedding).map(({ embedding: _, ...layer }) => layer);
      weights = new Map([...weights].filter(([name]) => covered.some((l) => l.name === name)));
    }
    if (options.sketch !== undefined && adapter.layersModel === null) {
      throw new InrunError('sketches are saved with checkpoints, which need a tf.LayersModel', { field: 'sketch', code: 'unsupported_model' });
    }
    const sketch =
      options.sketch === undefined
        ? null
        : (() => {
            const order = covered.map((l) => l.name);
            const layers = order.map((name) => layouts.get(name)!.pieces);
            const pieces = layers.flat();
            const projections = makeProjections(pieces, options.sketch.size, options.sketch.seed ?? 0);
            release.push(() => disposeProjections(projections));
            const store = new SketchStore(pieces.reduce((sum, piece) => sum + sketchWidth(piece, options.sketch!.size), 0));
            release.push(() => store.dispose());
            return { order, layers, projections, store, size: options.sketch.size, seed: options.sketch.seed ?? 0 };
          })();
    if ((options.targetEvery ?? 1) > 1 && methods.includes('shapley2')) {
      throw new InrunError("shapley2 needs a target pass at every step's weights; leave targetEvery at 1", { field: 'targetEvery' });
    }
    const hvp =
      methods.includes('shapley2') && targets !== null
        ? chooseHvp(options.hvp, { model: adapter, targets, include, weights, layouts }, covered)
        : null;
    const wantsTokens = methods.includes('tracin_we');
    if (wantsTokens && embeddings.length === 0 && (adapter.layersModel !== null || targets !== null)) {
      throw new InrunError('tracin_we needs an embedding layer; none is covered', { field: 'methods', code: 'unsupported_layer' });
    }
    const tokenOptions = options.tokens ?? {};
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
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    const className = adapter.optimizer.getClassName();
    const optimizerAware = options.update === 'optimizer';
    if (optimizerAware) {
      const why = unsupportedOptimizer(adapter.optimizer);
      if (why !== null) throw new InrunError(`update: 'optimizer' needs an optimizer whose update inrun knows: ${why}`, { field: 'update', code: 'unsupported_model' });
      requireVariables(covered, weights, "update: 'optimizer'", 'update');
    }
    const info: RunInfo = {
      runId: options.runId ?? `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${Math.random().toString(16).slice(2, 8)}`,
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
      targetEvery: options.targetEvery ?? 1,
      hvp,
      seeds: [],
      meta: { ...(options.meta ?? {}) },
    };
    const attributor = new Attributor({
      model: adapter,
      targets,
      methods: defs,
      covered,
      include,
      ghostPath: options.ghostPath ?? 'auto',
      tokenLayer,
      totals,
      tokens,
      hessian: hvp === null ? null : { method: hvp, weights, layouts },
      update: optimizerAware && className !== 'SGD' ? { optimizer: adapter.optimizer, weights } : null,
      targetEvery: options.targetEvery ?? 1,
      sketch,
    });
    return new AttributionRun({
      info,
      model: adapter,
      attributor,
      totals,
      tokens,
      tokenOptions,
      delivery: new Delivery(options.sinks ?? [], () => info, {
        policy: options.delivery?.policy ?? 'block',
        capacity: options.delivery?.capacity ?? 256,
        onError: options.sinkErrors ?? 'stop',
      }),
      totalsEvery: options.totalsEvery ?? 1000,
      checkpoints: options.checkpoints ?? null,
      sketch,
      metrics: options.metrics === true ? {} : options.metrics === false ? null : (options.metrics ?? null),
      columns: columns.map((c) => c.name),
      targetNames,
      flushEvery: options.flushEvery ?? 32,
      stepRecords: options.stepRecords ?? true,
      seed,
      examples: options.examples ? [...options.examples] : [],
      release: () => {
        for (const r of release.reverse()) r();
      },
    });
  } catch (error) {
    for (const r of release.reverse()) r();
    totals?.dispose();
    tokens?.dispose();
    throw error;
  }
}
