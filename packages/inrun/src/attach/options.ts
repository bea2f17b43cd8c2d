// Options of attach(): their types, their checks, and resolveOptions, which applies every default once.
import type * as tf from '@tensorflow/tfjs';
import { InrunError, invalid, preview } from '../errors.js';
import { TARGET_METHODS } from '../scoring/methods.js';
import { checkRunId, newRunId } from '@inrun/store/core';
import type { Sink } from '@inrun/store/core';
import type { MetricsOptions } from '../telemetry/metrics.js';
import type { ExampleInfo, Method, TargetData } from '../types.js';

/** What a run does with a non-finite step: see {@link AttachOptions.nonFinite}. */
export type NonFinitePolicy = 'stop' | 'skip-step' | 'record';

/** Options of {@link attach}. */
export interface AttachOptions {
  /**
   * Named targets whose loss the scores explain, e.g. `{ val: { xs, ys } }`. Names may not contain ':'.
   * @defaultValue none (only target-free methods can run)
   */
  readonly targets?: Readonly<Record<string, TargetData>>;
  /**
   * Methods to compute.
   * @defaultValue `['shapley1', 'tracin_self']` with targets, `['tracin_self']` without
   */
  readonly methods?: readonly Method[];
  /**
   * Layers to attribute through: all supported ones, a list of layer names, or only embedding layers.
   * @defaultValue 'all'
   */
  readonly layers?: 'all' | 'embedding' | readonly string[];
  /** Where records and totals go. @defaultValue none */
  readonly sinks?: readonly Sink[];
  /** Metadata of examples (source, label, text); they count as seen-or-not members of the run. */
  readonly examples?: Iterable<ExampleInfo>;
  /** Seed of `run.fit`'s shuffling. @defaultValue a random seed, recorded in `run.info.seeds` */
  readonly seed?: number;
  /** Optimizer of a custom loop on a LayersModel. @defaultValue `model.optimizer` */
  readonly optimizer?: tf.Optimizer;
  /**
   * Ghost product path for target products: chosen per layer by cost, or forced.
   * @defaultValue 'auto'
   */
  readonly ghostPath?: 'auto' | 'pairwise' | 'materialised';
  /** Steps buffered between two asynchronous reads of per-step records. @defaultValue 32 */
  readonly flushEvery?: number;
  /**
   * Keep per-step records for `records$` and sinks. Off: only device totals, nothing read per step.
   * @defaultValue true
   */
  readonly stepRecords?: boolean;
  /** Per-token scores of `tracin_we`. */
  readonly tokens?: TokenOptions;
  /**
   * How `shapley2` computes the Hessian-vector product of the target loss: exact double backward
   * (tf.js nested gradients), the finite difference of target gradients along the step (the secant
   * `grad L_T(w) - grad L_T(w - u)`, stable across ReLU kinks; docs/methods.md), or the first of the
   * two that works for this model (tried at attach). The choice is in `run.info.hvp`.
   * @defaultValue 'auto'
   */
  readonly hvp?: 'auto' | 'double-backward' | 'finite-difference';
  /**
   * Which update the target-directed values (`shapley1`, `shapley2`, `tracin_we` and its token
   * scores) measure. `'sgd'`: the SGD step `lr * g` whatever the optimizer (the paper's proxy; exact
   * for plain SGD). `'optimizer'`: the optimizer's own step for each example, `lr * Q * g` with its
   * per-parameter factors Q frozen at the step (Adam, RMSProp, Adagrad; Momentum and SGD give the
   * same values as `'sgd'`). It materialises each target's gradient once per step (one
   * parameter-sized tensor per target), so it costs more than the ghost kernel. `tracin_self`
   * stays the TracIn definition. The choice is in `run.info.optimizer.attribution`.
   * @defaultValue 'sgd'
   */
  readonly update?: 'sgd' | 'optimizer';
  /**
   * Steps between two target passes. 1: every step's values use the target's gradient at that step's
   * weights (exact). n > 1: the target pass runs every n steps and the steps between reuse its rows,
   * recorded at weights up to n - 1 steps old: an approximation (measured in docs/evaluation.md) that
   * takes most of the cost away on small models, where the target pass is most of it. Target losses
   * appear in the step records of refresh steps only. Not with `shapley2`, whose Hessian-vector
   * product needs the current weights.
   * @defaultValue 1
   */
  readonly targetEvery?: number;
  /**
   * How the target rows' gradients are taken. 'separate': a forward and backward pass of their own
   * each step (every layer kind). 'fused': the target rows ride in the training step's own pass, which
   * saves nearly a whole pass on small models, with the same update bit for bit. It runs on models of
   * Dense layers only (docs/hooks.md lists the conditions); elsewhere the separate pass runs, and
   * `run.info.targetPass` says which pass ran.
   * @defaultValue 'separate'
   */
  readonly targetPass?: 'fused' | 'separate';
  /**
   * Checkpoints taken during training (`run.checkpoint(dir)`): every `everySteps` steps and/or after
   * every `everyEpochs` epochs of `run.fit`/`fitDataset`. They serve `tracin()` (TracIn from
   * checkpoints) and resuming a crashed run.
   * @defaultValue none
   */
  readonly checkpoints?: { readonly dir: string; readonly everySteps?: number; readonly everyEpochs?: number };
  /**
   * Random-projection sketches of every example's gradient (`size` x `size` numbers per layer),
   * taken when the example is seen and saved with each checkpoint, so that `tracin({ train: 'sketches' })`
   * scores new queries without a pass over the training data. LayersModel runs only.
   * @defaultValue none
   */
  readonly sketch?: { readonly size: number; readonly seed?: number };
  /**
   * Run id used by sinks, which name folders and files after it: 1 to 128 characters of
   * `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
   * @defaultValue `run-<time>-<random>`
   */
  readonly runId?: string;
  /** Free-form metadata stored with the run. */
  readonly meta?: Readonly<Record<string, unknown>>;
  /**
   * The bounded queue between training and sinks. `policy: 'block'` makes a step wait while
   * `capacity` step records are still waiting for the sinks; `'drop'` discards and counts them.
   * @defaultValue `{ policy: 'block', capacity: 256 }`
   */
  readonly delivery?: { readonly policy?: 'block' | 'drop'; readonly capacity?: number };
  /**
   * A sink that throws: `'stop'` fails the next training step with an InrunError (other sinks keep
   * what they wrote); `'continue'` trains on without that sink (see `run.stats().delivery.failures`).
   * @defaultValue 'stop'
   */
  readonly sinkErrors?: 'stop' | 'continue';
  /**
   * A step whose loss, target losses or scores hold NaN or Infinity (found on the device and read
   * with the step's record, without a per-step host sync). Such a step never enters the totals; it is
   * counted in `run.stats().nonFiniteSteps` and announced by a process warning naming it. `'stop'`
   * hands every finite step to the sinks, then fails training with an InrunError naming the step;
   * `'skip-step'` leaves the step's record out and trains on; `'record'` hands its record on as it is
   * (sinks store what they can: SQLite stores NULL or leaves a NaN score row out). See docs/sinks.md.
   * @defaultValue 'stop'
   */
  readonly nonFinite?: NonFinitePolicy;
  /**
   * Milliseconds one sink call (open, a write, close) may take. A call still pending then counts as
   * a sink failure, handled by `sinkErrors`, so a hung sink never hangs training or `close()`.
   * @defaultValue 60000
   */
  readonly sinkTimeoutMs?: number;
  /**
   * Steps between totals snapshots sent to sinks (one asynchronous read of the device totals each);
   * 0 sends them only at `run.checkpoint()` and `close()`.
   * @defaultValue 1000
   */
  readonly totalsEvery?: number;
  /**
   * OpenTelemetry metrics of the run (docs/telemetry.md): `true` for the defaults, or options. Uses
   * the app's MeterProvider (the global one unless given), asked for when training starts.
   * @defaultValue false
   */
  readonly metrics?: boolean | MetricsOptions;
}

/** Options of per-token `tracin_we` scores. */
export interface TokenOptions {
  /** Embedding layer whose positions are scored. @defaultValue the first covered embedding layer */
  readonly layer?: string;
  /** Words by token id, to report words instead of ids. */
  readonly vocabulary?: readonly string[];
  /** Tokens kept per example in `scores().tokens`. @defaultValue 5 */
  readonly topK?: number;
  /** Token ids never reported (padding, out-of-vocabulary). @defaultValue [] */
  readonly ignore?: readonly number[];
}

/** Every option key, tied to AttachOptions: a key added there without a line here fails to compile. */
const OPTION_KEYS = {
  targets: true,
  methods: true,
  layers: true,
  sinks: true,
  examples: true,
  seed: true,
  optimizer: true,
  ghostPath: true,
  flushEvery: true,
  stepRecords: true,
  tokens: true,
  runId: true,
  meta: true,
  delivery: true,
  sinkErrors: true,
  nonFinite: true,
  sinkTimeoutMs: true,
  totalsEvery: true,
  metrics: true,
  hvp: true,
  update: true,
  targetEvery: true,
  targetPass: true,
  checkpoints: true,
  sketch: true,
} as const satisfies Record<keyof AttachOptions, true>;

const ALL_METHODS: readonly Method[] = ['shapley1', 'shapley2', 'tracin_self', 'tracin_we'];

function checkOptions(options: AttachOptions): void {
  if (options === null || typeof options !== 'object') invalid('options', 'an options object', options);
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(OPTION_KEYS, key)) throw new InrunError(`unknown option; known options: ${Object.keys(OPTION_KEYS).join(', ')}`, { field: key });
  }
  const { flushEvery, stepRecords, ghostPath, seed, runId, sinks, tokens, delivery, sinkErrors, nonFinite, sinkTimeoutMs, totalsEvery, metrics, hvp, update, targetEvery, targetPass, checkpoints, sketch } = options;
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
  if (targetPass !== undefined && targetPass !== 'fused' && targetPass !== 'separate') invalid('targetPass', "'fused' or 'separate'", targetPass);
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
  if (sinkTimeoutMs !== undefined && !(Number.isInteger(sinkTimeoutMs) && sinkTimeoutMs >= 1)) invalid('sinkTimeoutMs', 'a positive integer (milliseconds)', sinkTimeoutMs);
  if (nonFinite !== undefined && !['stop', 'skip-step', 'record'].includes(nonFinite)) invalid('nonFinite', "'stop', 'skip-step' or 'record'", nonFinite);
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
  if (runId !== undefined) checkRunId(runId);
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

function checkLayers(layers: AttachOptions['layers']): 'all' | 'embedding' | readonly string[] {
  if (layers === undefined) return 'all';
  if (layers === 'all' || layers === 'embedding') return layers;
  if (Array.isArray(layers) && layers.every((l) => typeof l === 'string')) return layers;
  invalid('layers', '\'all\', \'embedding\' or an array of layer names', layers);
}

/** Options with every default applied ({@link resolveOptions}); nothing downstream applies a default again. */
export interface ResolvedOptions {
  readonly targets: Readonly<Record<string, TargetData>> | undefined;
  readonly methods: readonly Method[];
  readonly layers: 'all' | 'embedding' | readonly string[];
  readonly sinks: readonly Sink[];
  readonly examples: ExampleInfo[];
  readonly seed: number;
  readonly optimizer: tf.Optimizer | undefined;
  readonly ghostPath: 'auto' | 'pairwise' | 'materialised';
  readonly flushEvery: number;
  readonly stepRecords: boolean;
  readonly tokens: TokenOptions;
  readonly hvp: 'auto' | 'double-backward' | 'finite-difference';
  readonly update: 'sgd' | 'optimizer';
  readonly targetEvery: number;
  readonly targetPass: 'fused' | 'separate';
  readonly checkpoints: { readonly dir: string; readonly everySteps?: number; readonly everyEpochs?: number } | null;
  readonly sketch: { readonly size: number; readonly seed: number } | null;
  readonly runId: string;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly delivery: { readonly policy: 'block' | 'drop'; readonly capacity: number };
  readonly sinkErrors: 'stop' | 'continue';
  readonly nonFinite: NonFinitePolicy;
  readonly sinkTimeoutMs: number;
  readonly totalsEvery: number;
  readonly metrics: MetricsOptions | null;
}

/**
 * Checks every option (an {@link InrunError} naming the field) and applies every default, once.
 * The defaults are the `@defaultValue`s of {@link AttachOptions}.
 */
export function resolveOptions(options: AttachOptions): ResolvedOptions {
  checkOptions(options);
  const hasTargets = options.targets !== undefined && Object.keys(options.targets ?? {}).length > 0;
  return {
    targets: options.targets,
    methods: checkMethods(options.methods, hasTargets),
    layers: checkLayers(options.layers),
    sinks: options.sinks ?? [],
    examples: options.examples ? [...options.examples] : [],
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 32),
    optimizer: options.optimizer,
    ghostPath: options.ghostPath ?? 'auto',
    flushEvery: options.flushEvery ?? 32,
    stepRecords: options.stepRecords ?? true,
    tokens: options.tokens ?? {},
    hvp: options.hvp ?? 'auto',
    update: options.update ?? 'sgd',
    targetEvery: options.targetEvery ?? 1,
    targetPass: options.targetPass ?? 'separate',
    checkpoints: options.checkpoints ?? null,
    sketch: options.sketch === undefined ? null : { size: options.sketch.size, seed: options.sketch.seed ?? 0 },
    runId: options.runId ?? newRunId(),
    meta: { ...(options.meta ?? {}) },
    delivery: { policy: options.delivery?.policy ?? 'block', capacity: options.delivery?.capacity ?? 256 },
    sinkErrors: options.sinkErrors ?? 'stop',
    nonFinite: options.nonFinite ?? 'stop',
    sinkTimeoutMs: options.sinkTimeoutMs ?? 60_000,
    totalsEvery: options.totalsEvery ?? 1000,
    metrics: options.metrics === true ? {} : options.metrics === false ? null : (options.metrics ?? null),
  };
}
