// Options of attach(), grouped by concern: their types, their checks, and resolveOptions, which applies every default once.
import type * as tf from '@tensorflow/tfjs';
import { InrunError, invalid, preview } from '../errors.js';
import { TARGET_METHODS } from '../scoring/methods.js';
import { checkRunId, newRunId } from '@inrun/store/core';
import type { Sink } from '@inrun/store/core';
import type { MetricsOptions, ResolvedMetricsOptions } from '../telemetry/metrics.js';
import type { UnlearnRequest } from '../unlearn/options.js';
import { requestTargets } from '../unlearn/request.js';
import type { ExampleInfo, Method, TargetData } from '../types.js';
import { FLAT_KEYS, withFlatKeys } from './flat-options.js';

/** What a run does with a non-finite step: see {@link AttachOptions.nonFinite}. */
export type NonFinitePolicy = 'stop' | 'skip-step' | 'record';

/**
 * Options of {@link attach}. What to score sits at the top (targets, methods, layers, ...); how records
 * reach the sinks is `delivery`, what is saved during training `checkpoints` and `sketch`, and the
 * OpenTelemetry metrics `metrics` (the same key as `startWorker` and `distributedTracin` take).
 * The flat keys marked deprecated still work for one release (docs/hooks.md#options).
 */
export interface AttachOptions {
  /**
   * Named targets whose loss the scores explain, e.g. `{ val: { xs, ys } }`. Names may not contain ':'.
   * A removal request (`{ forget, retain, forgetLabel, coarseOf }`, as `unlearn()` takes) stands for
   * its `forget` rows: trace what taught the concept, then remove it with the same object.
   * @defaultValue none (only target-free methods can run)
   */
  readonly targets?: Readonly<Record<string, TargetData | UnlearnRequest>>;
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
  /** Where records and totals go; how they get there is {@link AttachOptions.delivery}. @defaultValue none */
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
  /** Per-token scores of `tracin_we`. @defaultValue `{}` (each key's own default) */
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
   * How the target rows' gradients are taken. 'fused': the target rows ride in the training step's own
   * forward and backward (each covered layer's weight gradient from the training rows only), which saves
   * nearly a whole pass on small models, with the same update bit for bit. 'separate': a forward and
   * backward pass of their own each step (every layer kind, every setting). 'auto' resolves per run to
   * 'fused' where that is exact (a chain of layers that fuse, one target group, `targetEvery: 1`,
   * `update: 'sgd'`, first-order methods; docs/hooks.md lists the conditions) and to 'separate'
   * elsewhere; `run.info.targetPass` says which pass runs. 'fused' where it would not be exact is
   * refused (InrunError, field `targetPass`, naming the reason).
   * @defaultValue 'auto'
   */
  readonly targetPass?: 'auto' | 'fused' | 'separate';
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
   * Run id used by sinks, which name folders and files after it: 1 to 128 characters of
   * `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
   * @defaultValue `run-<time>-<random>`
   */
  readonly runId?: string;
  /** Free-form metadata stored with the run. @defaultValue `{}` */
  readonly meta?: Readonly<Record<string, unknown>>;
  /** How records and totals reach the sinks: queue, failures, timeouts and cadence. @defaultValue `{}` (each key's own default) */
  readonly delivery?: DeliveryOptions;
  /** Checkpoints taken during training. @defaultValue none */
  readonly checkpoints?: CheckpointOptions;
  /** Gradient sketches saved with each checkpoint. @defaultValue none */
  readonly sketch?: SketchOptions;
  /**
   * OpenTelemetry metrics of the run (docs/telemetry.md): `true` for the defaults, or options. Uses
   * the app's MeterProvider (the global one unless given), asked for when training starts.
   * @defaultValue false
   */
  readonly metrics?: boolean | MetricsOptions;
  /** @deprecated Use `delivery.onError` (docs/hooks.md#options); goes in the next major release. */
  readonly sinkErrors?: 'stop' | 'continue';
  /** @deprecated Use `delivery.timeoutMs` (docs/hooks.md#options); goes in the next major release. */
  readonly sinkTimeoutMs?: number;
  /** @deprecated Use `delivery.flushEvery` (docs/hooks.md#options); goes in the next major release. */
  readonly flushEvery?: number;
  /** @deprecated Use `delivery.totalsEvery` (docs/hooks.md#options); goes in the next major release. */
  readonly totalsEvery?: number;
  /** @deprecated Use `delivery.stepRecords` (docs/hooks.md#options); goes in the next major release. */
  readonly stepRecords?: boolean;
}

/** Options of per-token `tracin_we` scores ({@link AttachOptions.tokens}). */
export interface TokenOptions {
  /** Embedding layer whose positions are scored. @defaultValue the first covered embedding layer */
  readonly layer?: string;
  /** Words by token id, to report words instead of ids. @defaultValue none (ids are reported) */
  readonly vocabulary?: readonly string[];
  /** Tokens kept per example in `scores().tokens`. @defaultValue 5 */
  readonly topK?: number;
  /** Token ids never reported (padding, out-of-vocabulary). @defaultValue [] */
  readonly ignore?: readonly number[];
}

/**
 * How records and totals reach the sinks ({@link AttachOptions.delivery}): the bounded queue between
 * training and sinks, what a failing or hung sink does, and how often the device is read.
 */
export interface DeliveryOptions {
  /**
   * `'block'` makes a step wait while `capacity` step records are still waiting for the sinks (never
   * loses a record); `'drop'` discards and counts them. Examples and totals are never dropped.
   * @defaultValue 'block'
   */
  readonly policy?: 'block' | 'drop';
  /** Step records that may wait for the sinks. @defaultValue 256 */
  readonly capacity?: number;
  /**
   * A sink that throws: `'stop'` fails the next training step with an InrunError (other sinks keep
   * what they wrote); `'continue'` trains on without that sink (see `run.stats().delivery.failures`).
   * Was `sinkErrors`.
   * @defaultValue 'stop'
   */
  readonly onError?: 'stop' | 'continue';
  /**
   * Milliseconds one sink call (open, a write, close) may take. A call still pending then counts as
   * a sink failure, handled by `onError`, so a hung sink never hangs training or `close()`. Was `sinkTimeoutMs`.
   * @defaultValue 60000
   */
  readonly timeoutMs?: number;
  /** Steps buffered between two asynchronous reads of per-step records. Was `flushEvery`. @defaultValue 32 */
  readonly flushEvery?: number;
  /**
   * Steps between totals snapshots sent to sinks (one asynchronous read of the device totals each);
   * 0 sends them only at `run.checkpoint()` and `close()`. Was `totalsEvery`.
   * @defaultValue 1000
   */
  readonly totalsEvery?: number;
  /**
   * Keep per-step records for `records$` and sinks. Off: only device totals, nothing read per step
   * (and no `metrics`, which are computed from step records). Was `stepRecords`.
   * @defaultValue true
   */
  readonly stepRecords?: boolean;
}

/**
 * Checkpoints taken during training (`run.checkpoint(dir)`) into `dir`: every `everySteps` steps and/or
 * after every `everyEpochs` epochs of `run.fit`/`fitDataset` (one of them at least). They serve
 * `tracin()` (TracIn from checkpoints) and resuming a crashed run.
 */
export interface CheckpointOptions {
  readonly dir: string;
  /** @defaultValue none (no checkpoint by step count) */
  readonly everySteps?: number;
  /** @defaultValue none (no checkpoint by epoch) */
  readonly everyEpochs?: number;
}

/**
 * Random-projection sketches of every example's gradient (`size` x `size` numbers per layer), taken
 * when the example is seen and saved with each checkpoint, so that `tracin({ train: 'sketches' })`
 * scores new queries without a pass over the training data. LayersModel runs only.
 */
export interface SketchOptions {
  readonly size: number;
  /** Seed of the projections. @defaultValue 0 */
  readonly seed?: number;
}

/** {@link TokenOptions} resolved. */
export interface ResolvedTokenOptions {
  /** `undefined`: the first covered embedding layer, chosen at attach once the layers are planned. */
  readonly layer: string | undefined;
  /** `undefined`: token ids are reported. */
  readonly vocabulary: readonly string[] | undefined;
  readonly topK: number;
  readonly ignore: readonly number[];
}

/** {@link DeliveryOptions} resolved (what `Delivery` and the run read). */
export interface ResolvedDeliveryOptions {
  readonly policy: 'block' | 'drop';
  readonly capacity: number;
  readonly onError: 'stop' | 'continue';
  readonly timeoutMs: number;
  readonly flushEvery: number;
  readonly totalsEvery: number;
  readonly stepRecords: boolean;
}

/** Options with every default applied ({@link resolveOptions}); nothing downstream applies a default again. */
export interface ResolvedAttachOptions {
  readonly targets: Readonly<Record<string, TargetData>> | undefined;
  readonly methods: readonly Method[];
  readonly layers: 'all' | 'embedding' | readonly string[];
  readonly sinks: readonly Sink[];
  readonly examples: ExampleInfo[];
  readonly seed: number;
  readonly optimizer: tf.Optimizer | undefined;
  readonly ghostPath: 'auto' | 'pairwise' | 'materialised';
  readonly tokens: ResolvedTokenOptions;
  readonly hvp: 'auto' | 'double-backward' | 'finite-difference';
  readonly update: 'sgd' | 'optimizer';
  readonly targetEvery: number;
  readonly targetPass: 'auto' | 'fused' | 'separate';
  readonly nonFinite: NonFinitePolicy;
  readonly runId: string;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly delivery: ResolvedDeliveryOptions;
  readonly checkpoints: CheckpointOptions | null;
  readonly sketch: Required<SketchOptions> | null;
  readonly metrics: ResolvedMetricsOptions | null;
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
  tokens: true,
  hvp: true,
  update: true,
  targetEvery: true,
  targetPass: true,
  nonFinite: true,
  runId: true,
  meta: true,
  delivery: true,
  checkpoints: true,
  sketch: true,
  metrics: true,
  sinkErrors: true,
  sinkTimeoutMs: true,
  flushEvery: true,
  totalsEvery: true,
  stepRecords: true,
} as const satisfies Record<keyof AttachOptions, true>;

/** The keys of each group, tied to its type the same way. */
const DELIVERY_KEYS = { policy: true, capacity: true, onError: true, timeoutMs: true, flushEvery: true, totalsEvery: true, stepRecords: true } as const satisfies Record<keyof DeliveryOptions, true>;
const CHECKPOINT_KEYS = { dir: true, everySteps: true, everyEpochs: true } as const satisfies Record<keyof CheckpointOptions, true>;
const SKETCH_KEYS = { size: true, seed: true } as const satisfies Record<keyof SketchOptions, true>;
const TOKEN_KEYS = { layer: true, vocabulary: true, topK: true, ignore: true } as const satisfies Record<keyof TokenOptions, true>;
const METRICS_KEYS = { meterProvider: true, sourceLimit: true, attributes: true } as const satisfies Record<keyof MetricsOptions, true>;

const ALL_METHODS: readonly Method[] = ['shapley1', 'shapley2', 'tracin_self', 'tracin_we'];

/** An unknown key is a typo until proven otherwise: name it and list the known ones. */
function checkKeys(value: object, known: object, prefix: string): void {
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(known, key)) throw new InrunError(`unknown option; known options: ${Object.keys(known).map((k) => `${prefix}${k}`).join(', ')}`, { field: `${prefix}${key}` });
  }
}

/** A group option: undefined, or an object whose keys are all known; errors name `field`. */
function checkGroup(value: unknown, field: string, expected: string, known: object): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(field, expected, value);
  checkKeys(value, known, `${field}.`);
}

const positive = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1;

/** Checks of the delivery keys, shared by `delivery.<key>` and the deprecated flat keys (each error names the key as given). */
const DELIVERY_CHECKS: { readonly [K in keyof DeliveryOptions]-?: (value: unknown, field: string) => void } = {
  policy: (v, field) => {
    if (v !== 'block' && v !== 'drop') invalid(field, "'block' or 'drop'", v);
  },
  capacity: (v, field) => {
    if (!positive(v)) invalid(field, 'a positive integer', v);
  },
  onError: (v, field) => {
    if (v !== 'stop' && v !== 'continue') invalid(field, "'stop' or 'continue'", v);
  },
  timeoutMs: (v, field) => {
    if (!positive(v)) invalid(field, 'a positive integer (milliseconds)', v);
  },
  flushEvery: (v, field) => {
    if (!positive(v)) invalid(field, 'a positive integer', v);
  },
  totalsEvery: (v, field) => {
    if (!(Number.isInteger(v) && (v as number) >= 0)) invalid(field, 'an integer >= 0', v);
  },
  stepRecords: (v, field) => {
    if (typeof v !== 'boolean') invalid(field, 'true or false', v);
  },
};

function checkDelivery(delivery: DeliveryOptions | undefined): void {
  checkGroup(delivery, 'delivery', '{ policy?, capacity?, onError?, timeoutMs?, flushEvery?, totalsEvery?, stepRecords? }', DELIVERY_KEYS);
  for (const key of Object.keys(DELIVERY_KEYS) as (keyof DeliveryOptions)[]) {
    const v = delivery?.[key];
    if (v !== undefined) DELIVERY_CHECKS[key](v, `delivery.${key}`);
  }
}

function checkOptions(options: AttachOptions): DeliveryOptions | undefined {
  if (options === null || typeof options !== 'object') invalid('options', 'an options object', options);
  checkKeys(options, OPTION_KEYS, '');
  const { ghostPath, seed, runId, sinks, tokens, nonFinite, metrics, hvp, update, targetEvery, targetPass, checkpoints, sketch } = options;
  checkGroup(sketch, 'sketch', '{ size, seed? }', SKETCH_KEYS);
  if (sketch !== undefined) {
    if (!positive(sketch.size)) invalid('sketch.size', 'a positive integer', sketch.size);
    if (sketch.seed !== undefined && !Number.isInteger(sketch.seed)) invalid('sketch.seed', 'an integer', sketch.seed);
  }
  if (checkpoints !== undefined) {
    if (checkpoints === null || typeof checkpoints !== 'object' || typeof checkpoints.dir !== 'string' || checkpoints.dir.length === 0) {
      invalid('checkpoints', '{ dir, everySteps?, everyEpochs? }', checkpoints);
    }
    checkKeys(checkpoints, CHECKPOINT_KEYS, 'checkpoints.');
    for (const key of ['everySteps', 'everyEpochs'] as const) {
      const v = checkpoints[key];
      if (v !== undefined && !positive(v)) invalid(`checkpoints.${key}`, 'a positive integer', v);
    }
    if (checkpoints.everySteps === undefined && checkpoints.everyEpochs === undefined) {
      throw new InrunError('say when: everySteps, everyEpochs or both', { field: 'checkpoints' });
    }
  }
  if (hvp !== undefined && !['auto', 'double-backward', 'finite-difference'].includes(hvp)) {
    invalid('hvp', "'auto', 'double-backward' or 'finite-difference'", hvp);
  }
  if (update !== undefined && update !== 'sgd' && update !== 'optimizer') invalid('update', "'sgd' or 'optimizer'", update);
  if (targetEvery !== undefined && !positive(targetEvery)) invalid('targetEvery', 'a positive integer', targetEvery);
  if (targetPass !== undefined && targetPass !== 'auto' && targetPass !== 'fused' && targetPass !== 'separate') invalid('targetPass', "'auto', 'fused' or 'separate'", targetPass);
  if (metrics !== undefined && typeof metrics !== 'boolean') {
    checkGroup(metrics, 'metrics', 'true, false or { meterProvider?, sourceLimit?, attributes? }', METRICS_KEYS);
    if (metrics.sourceLimit !== undefined && !(Number.isInteger(metrics.sourceLimit) && metrics.sourceLimit >= 0)) {
      invalid('metrics.sourceLimit', 'an integer >= 0', metrics.sourceLimit);
    }
    if (metrics.attributes !== undefined && (metrics.attributes === null || typeof metrics.attributes !== 'object')) {
      invalid('metrics.attributes', 'an object of attribute values', metrics.attributes);
    }
  }
  // The deprecated flat keys, checked under their own names, then moved into the group they belong to.
  for (const key of Object.keys(FLAT_KEYS) as (keyof typeof FLAT_KEYS)[]) {
    const v = options[key];
    if (v !== undefined) DELIVERY_CHECKS[FLAT_KEYS[key]](v, key);
  }
  checkDelivery(options.delivery);
  const delivery = withFlatKeys(options, options.delivery);
  if (metrics !== undefined && metrics !== false && delivery?.stepRecords === false) {
    throw new InrunError('metrics are computed from step records; leave delivery.stepRecords on', { field: 'metrics' });
  }
  if (nonFinite !== undefined && !['stop', 'skip-step', 'record'].includes(nonFinite)) invalid('nonFinite', "'stop', 'skip-step' or 'record'", nonFinite);
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
    checkKeys(tokens, TOKEN_KEYS, 'tokens.');
    if (tokens.topK !== undefined && !positive(tokens.topK)) {
      invalid('tokens.topK', 'a positive integer', tokens.topK);
    }
    if (tokens.vocabulary !== undefined && !Array.isArray(tokens.vocabulary)) {
      invalid('tokens.vocabulary', 'an array of words indexed by token id', tokens.vocabulary);
    }
    if (tokens.ignore !== undefined && !(Array.isArray(tokens.ignore) && tokens.ignore.every((t) => Number.isInteger(t)))) {
      invalid('tokens.ignore', 'an array of token ids', tokens.ignore);
    }
  }
  return delivery;
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

/**
 * Checks every option (an {@link InrunError} naming the field) and applies every default, once:
 * the `@defaultValue`s of {@link AttachOptions} and its groups. Deprecated flat keys are moved into
 * their group here (a warning once per key; an error when the grouped key is given too).
 */
export function resolveOptions(options: AttachOptions): ResolvedAttachOptions {
  const delivery = checkOptions(options);
  const hasTargets = options.targets !== undefined && Object.keys(options.targets ?? {}).length > 0;
  const tokens = options.tokens ?? {};
  const metrics = options.metrics === true ? {} : options.metrics === false ? null : (options.metrics ?? null);
  return {
    targets: options.targets === undefined ? undefined : requestTargets(options.targets),
    methods: checkMethods(options.methods, hasTargets),
    layers: checkLayers(options.layers),
    sinks: options.sinks ?? [],
    examples: options.examples ? [...options.examples] : [],
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 32),
    optimizer: options.optimizer,
    ghostPath: options.ghostPath ?? 'auto',
    tokens: { layer: tokens.layer, vocabulary: tokens.vocabulary, topK: tokens.topK ?? 5, ignore: tokens.ignore ?? [] },
    hvp: options.hvp ?? 'auto',
    update: options.update ?? 'sgd',
    targetEvery: options.targetEvery ?? 1,
    targetPass: options.targetPass ?? 'auto',
    nonFinite: options.nonFinite ?? 'stop',
    runId: options.runId ?? newRunId(),
    meta: { ...(options.meta ?? {}) },
    delivery: {
      policy: delivery?.policy ?? 'block',
      capacity: delivery?.capacity ?? 256,
      onError: delivery?.onError ?? 'stop',
      timeoutMs: delivery?.timeoutMs ?? 60_000,
      flushEvery: delivery?.flushEvery ?? 32,
      totalsEvery: delivery?.totalsEvery ?? 1000,
      stepRecords: delivery?.stepRecords ?? true,
    },
    checkpoints: options.checkpoints ?? null,
    sketch: options.sketch === undefined ? null : { size: options.sketch.size, seed: options.sketch.seed ?? 0 },
    metrics: metrics === null ? null : { meterProvider: metrics.meterProvider ?? null, sourceLimit: metrics.sourceLimit ?? 10, attributes: metrics.attributes ?? {} },
  };
}
