// AttributionRun: the run's lifecycle and training paths (fit, fitDataset, step), results, checkpoints and resume.
import * as tf from '@tensorflow/tfjs';
import { Subject, type Observable } from 'rxjs';
import type { TokenTotals } from '../accumulators/tokens.js';
import type { DeviceTotals } from '../accumulators/totals.js';
import type { Attributor, RunSketch } from '../scoring/attributor.js';
import { warn } from '../warn.js';
import { InrunError, invalid } from '../errors.js';
import { Capture, withCapture } from '../hooks/capture.js';
import { arrayBatches, readBatchIds, withCallback, type DatasetLike } from '../hooks/fit.js';
import { checkId, checkIds, IdIndex } from '../hooks/ids.js';
import type { Restore } from '../hooks/restore.js';
import { hookOptimizer, readLearningRate, type Gradients, type RunCompute } from '../hooks/optimizer.js';
import { fusedLoss, type FusedPlan } from '../hooks/fused.js';
import { disposePasses, type GroupPass } from '../scoring/targets.js';
import type { ModelAdapter } from '../attach/model.js';
import { checkBatchLabels } from '../scoring/labels.js';
import type { CheckpointInfo } from './checkpoint.js';
import { requireCheckpointFolders } from './checkpoint-choice.js';
import { checkpointName } from './checkpoint-name.js';
import { reason, type Delivery } from '../stream/delivery.js';
import { RunMetrics, type MetricsOptions } from '../telemetry/metrics.js';
import { RecordBuffer } from '../stream/records.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord, TokenScore } from '../types.js';
import type { NonFinitePolicy, TokenOptions } from '../attach/options.js';
import type { FitArgs, Run, RunStats } from './api.js';
import { EpochTracker } from './claim.js';
import { prepareFit } from './fit-args.js';
import { sketchFiles } from './sketch-files.js';


interface PendingBatch {
  readonly ids: readonly ExampleId[];
  readonly field: string;
}

export interface RunParts {
  readonly info: RunInfo;
  readonly model: ModelAdapter;
  readonly attributor: Attributor;
  readonly totals: DeviceTotals;
  readonly tokens: TokenTotals | null;
  readonly tokenOptions: TokenOptions;
  readonly delivery: Delivery;
  /** Steps between totals snapshots sent to sinks (0 = only at checkpoints and close). */
  readonly totalsEvery: number;
  /** OpenTelemetry metrics, or null. */
  readonly metrics: MetricsOptions | null;
  /** In-run gradient sketches, or null. */
  readonly sketch: RunSketch | null;
  /** Automatic checkpoints, or null. */
  readonly checkpoints: { readonly dir: string; readonly everySteps?: number; readonly everyEpochs?: number } | null;
  readonly columns: readonly string[];
  readonly targetNames: readonly string[];
  readonly flushEvery: number;
  readonly stepRecords: boolean;
  /** The fused target pass's plan, or null when target rows take a pass of their own. */
  readonly fused: FusedPlan | null;
  readonly nonFinite: NonFinitePolicy;
  readonly seed: number;
  readonly examples: readonly ExampleInfo[];
  /** Removes layer hooks and frees targets. */
  readonly release: () => void;
}

export class AttributionRun implements Run {
  readonly id: string;
  readonly info: RunInfo;
  readonly records$: Observable<StepRecord>;

  private readonly subject = new Subject<StepRecord>();
  private readonly index = new IdIndex();
  private readonly buffer: RecordBuffer;
  private readonly restores: Restore[] = [];
  private unsentExamples: ExampleInfo[] = [];
  private readonly sources = new Map<ExampleId, string>();
  private readonly metrics: RunMetrics | null;
  private queue: PendingBatch[] = [];
  /** Epoch in progress in fit/fitDataset (null outside), and the last finished one. */
  epoch: number | null = null;
  finishedEpoch: number | null = null;
  private stepCount = 0;
  private lastTotals = -1;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private final: Scores | null = null;
  private seedCalls = 0;
  private originalFitDataset: tf.LayersModel['fitDataset'] | null = null;
  private nonFiniteSteps = 0;
  private firstNonFinite: number | null = null;
  /** Set under `nonFinite: 'stop'` once a non-finite step is read back: every later step fails with it. */
  private halt: InrunError | null = null;
  /** A sink already storing this run id (asked at attach); cleared by resume(). */
  private storedIn: string | null;

  constructor(private readonly parts: RunParts) {
    this.info = parts.info;
    this.id = parts.info.runId;
    this.records$ = this.subject.asObservable();
    this.storedIn = parts.delivery.storedIn(this.id);
    this.buffer = new RecordBuffer(this.id, parts.columns, parts.targetNames);
    this.describe(parts.examples);
    this.metrics =
      parts.metrics === null
        ? null
        : new RunMetrics(
            { records$: this.records$, info: this.info, sourceOf: (id) => this.sources.get(id), delivery: () => parts.delivery.stats },
            parts.metrics,
          );
    this.restores.push(hookOptimizer(parts.model.optimizer, (compute) => this.onGradients(compute)));
    const model = parts.model.layersModel;
    if (model !== null) this.hookModel(model);
  }

  // ---- training paths -------------------------------------------------------------------------

  async fit(x: tf.Tensor | tf.Tensor[], y: tf.Tensor | tf.Tensor[], args: FitArgs = {}): Promise<tf.History> {
    this.requireLayersModel('fit');
    const { seed, batchSize, shuffle, epochs, rest, tx, ty, idList, train, validation, sliced } = prepareFit(x, y, args);
    const trainIds = idList.slice(0, train);
    for (const id of trainIds) this.index.slotOf(id);
    const callSeed = seed ?? (this.seedCalls++ === 0 ? this.parts.seed : (this.parts.seed + this.seedCalls * 0x9e3779b1) >>> 0);
    this.info.seeds.push(callSeed);
    try {
      await checkBatchLabels(this.requireLayersModel('fit'), ty, 'y');
      const dataset = arrayBatches(tx, ty, trainIds, batchSize, shuffle, callSeed, () => this.epoch ?? rest.initialEpoch ?? 0);
      const datasetArgs = { ...rest, epochs, validationBatchSize: batchSize } as tf.ModelFitDatasetArgs<unknown>;
      if (validation !== undefined) (datasetArgs as { validationData?: unknown }).validationData = validation;
      return await this.fitOn(dataset, datasetArgs);
    } finally {
      tf.dispose(sliced);
    }
  }

  fitDataset<T extends tf.TensorContainer>(dataset: tf.data.Dataset<T> | DatasetLike<T>, args: tf.ModelFitDatasetArgs<T>): Promise<tf.History> {
    return this.fitOn(dataset, args);
  }

  private async fitOn(dataset: DatasetLike<unknown>, args: tf.ModelFitDatasetArgs<unknown>): Promise<tf.History> {
    const model = this.requireLayersModel('fitDataset');
    if (dataset == null || typeof dataset.iterator !== 'function') {
      invalid('dataset', 'a tf.data.Dataset', dataset);
    }
    if (args == null || typeof args !== 'object') throw new InrunError('expected fitDataset arguments ({ epochs, ... })', { field: 'args' });
    this.checkOptimizer(model);
    this.checkNewRun();
    const wrapped = this.withIds(dataset);
    const callbacks = withCallback(args.callbacks, args.yieldEvery, new EpochTracker(this));
    this.queue = [];
    try {
      const fitDataset = this.originalFitDataset ?? model.fitDataset.bind(model);
      const history = await fitDataset(wrapped as unknown as tf.data.Dataset<tf.TensorContainer>, { ...args, callbacks });
      await this.flush();
      await this.parts.delivery.drain();
      this.surfaceSinkFailure();
      return history;
    } finally {
      this.queue = [];
      this.epoch = null;
    }
  }

  async step<T>(ids: readonly ExampleId[] | ArrayLike<number>, fn: () => T | Promise<T>): Promise<T> {
    this.assertOpen();
    if (typeof fn !== 'function') invalid('fn', 'a function running one optimizer step', fn);
    this.surfaceSinkFailure();
    this.checkNewRun();
    this.queue = [{ ids: checkIds(ids, 'ids'), field: 'ids' }];
    let unused: boolean;
    let result: T;
    try {
      result = await fn();
    } finally {
      unused = this.queue.length > 0;
      this.queue = [];
    }
    if (unused) {
      throw new InrunError('fn ran no optimizer step; call optimizer.minimize (or model.trainOnBatch) inside it', { field: 'fn', code: 'invalid_state' });
    }
    await this.flushIfDue();
    await this.checkpointIfDue();
    this.surfaceSinkFailure();
    return result;
  }

  // ---- results ---------------------------------------------------------------------------------

  describe(examples: Iterable<ExampleInfo>): void {
    this.assertOpen();
    if (examples == null || typeof (examples as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      invalid('examples', 'an iterable of { id, source?, label?, text? }', examples);
    }
    let i = 0;
    for (const example of examples) {
      if (example === null || typeof example !== 'object') {
        invalid(`examples[${i}]`, '{ id, source?, label?, text? }', example);
      }
      checkId(example.id, `examples[${i}].id`);
      this.index.slotOf(example.id);
      if (example.source !== undefined) this.sources.set(example.id, example.source);
      this.unsentExamples.push(example);
      i++;
    }
  }

  async scores(): Promise<Scores> {
    if (this.final !== null) return this.final;
    await this.flush();
    return this.readTotals(true);
  }

  /** One asynchronous read of the device totals (and, with `withTokens`, the top tokens). */
  private async readTotals(withTokens: boolean): Promise<Scores> {
    const rows = this.index.size;
    const { columns, steps } = await this.parts.totals.read(rows);
    const byName: Record<string, Float32Array> = {};
    this.parts.columns.forEach((name, c) => (byName[name] = columns[c]!));
    const tokens: Record<string, TokenScore[][]> = {};
    const weColumns = this.info.columns.filter((c) => c.method === 'tracin_we');
    if (withTokens && weColumns.length > 0) {
      const options = this.parts.tokenOptions;
      const top = this.parts.tokens
        ? await this.parts.tokens.top(rows, options.topK ?? 5, new Set(options.ignore ?? []), options.vocabulary)
        : null;
      weColumns.forEach((column, k) => {
        tokens[column.name] = top?.perTarget[k] ?? Array.from({ length: rows }, () => []);
      });
      if (top !== null && top.changedPositions > 0) {
        (this.info.meta as Record<string, unknown>)['tokenPositionsChanged'] = top.changedPositions;
      }
    }
    return { ids: this.index.ids.slice(), columns: byName, steps, tokens };
  }

  flush(): Promise<void> {
    const next = this.flushing.then(async () => {
      const drained = await this.buffer.drain();
      const bad = drained.filter((d) => !d.finite).map((d) => d.step);
      if (bad.length > 0) this.noteNonFinite(bad);
      const policy = this.parts.nonFinite;
      const records = drained.flatMap((d) => (d.record !== null && (d.finite || policy === 'record') ? [d.record] : []));
      const examples = this.unsentExamples;
      this.unsentExamples = [];
      for (const record of records) this.subject.next(record);
      const { delivery, totalsEvery } = this.parts;
      if (examples.length > 0) await delivery.push({ kind: 'examples', examples });
      await delivery.push({ kind: 'steps', records });
      if (totalsEvery > 0 && this.stepCount - 1 - this.lastTotals >= totalsEvery) await this.pushTotals(await this.readTotals(false), false);
      if (bad.length > 0 && policy === 'stop') {
        this.halt ??= new InrunError(
          `step ${bad[0]} is not finite (its loss, a target loss or a score is NaN or Infinity): training stopped after every finite step ` +
            "reached the sinks; lower the learning rate or check the data (nonFinite: 'skip-step' trains on without such steps)",
          { field: 'nonFinite', code: 'invalid_input' },
        );
        throw this.halt;
      }
    });
    // A failed flush fails its caller; later flushes still run.
    this.flushing = next.catch(() => undefined);
    return next;
  }

  /** Sends a totals snapshot after the last step to the sinks (never dropped). */
  private async pushTotals(scores: Scores, final: boolean): Promise<void> {
    const step = this.stepCount - 1;
    this.lastTotals = step;
    await this.parts.delivery.push({ kind: 'scores', scores, at: { step, final } });
  }

  async checkpoint(dir: string): Promise<CheckpointInfo> {
    const model = this.requireLayersModel('checkpoint');
    await this.flush();
    const totals = await this.readTotals(false);
    await this.pushTotals(totals, false);
    await this.parts.delivery.drain();
    this.surfaceSinkFailure();
    const info = {
      runId: this.id,
      step: this.stepCount - 1,
      epoch: this.finishedEpoch,
      learningRate: readLearningRate(this.parts.model.optimizer),
    };
    const name = checkpointName(info.step);
    const folders = requireCheckpointFolders('checkpoint');
    const extra = { ...folders.totalsFiles(totals, this.parts.columns), ...(this.parts.sketch === null ? {} : await sketchFiles(this.parts.sketch, this.index)) };
    await folders.save(model, `${dir}/${name}`, info, extra);
    folders.markLatest(dir, name);
    return { ...info, savedAt: new Date().toISOString() };
  }

  async resume(from: string | { readonly afterStep: number }): Promise<{ readonly step: number; readonly epoch: number | null }> {
    this.assertOpen();
    if (this.stepCount > 0) throw new InrunError('resume() must come before the first training step', { field: 'resume', code: 'invalid_state' });
    const point = typeof from === 'string' ? requireCheckpointFolders('resume').readInfo(from) : { runId: this.id, step: from.afterStep, epoch: null };
    if (!Number.isInteger(point.step) || point.step < -1) invalid('afterStep', 'an integer >= -1', point.step);
    if (point.runId !== this.id) {
      throw new InrunError(`the checkpoint belongs to run "${point.runId}", this run is "${this.id}"; attach with runId: "${point.runId}"`, {
        field: 'runId',
        code: 'invalid_state',
      });
    }
    this.storedIn = null;
    const sinkState = await this.parts.delivery.resume(point.step);
    // A checkpoint's own totals first: the sinks' newest snapshot may be of a later checkpoint that never finished.
    const state = (typeof from === 'string' ? requireCheckpointFolders('resume').readTotals(requireCheckpointFolders('resume').resolve(from), this.parts.columns, point.step) : null) ?? sinkState;
    if (sinkState === null || state === null) throw new InrunError('resume needs a sink that can resume (sqliteSink or parquetSink)', { field: 'sinks', code: 'invalid_option' });
    const slots = Int32Array.from(state.ids, (id) => this.index.slotOf(id));
    this.parts.totals.load(slots, this.parts.columns.map((name) => state.columns[name] ?? new Float64Array(slots.length)), state.steps);
    this.stepCount = point.step + 1;
    this.lastTotals = point.step;
    this.finishedEpoch = point.epoch;
    return { step: point.step, epoch: point.epoch };
  }

  stats(): RunStats {
    return {
      steps: this.stepCount,
      nonFiniteSteps: this.nonFiniteSteps,
      firstNonFiniteStep: this.firstNonFinite,
      delivery: this.parts.delivery.stats,
      metricsMs: this.metrics?.busyMs ?? 0,
    };
  }

  /** Counts non-finite steps, warns once per flush with their numbers, and feeds the metric. */
  private noteNonFinite(steps: readonly number[]): void {
    this.nonFiniteSteps += steps.length;
    this.firstNonFinite ??= steps[0]!;
    this.metrics?.nonFinite(steps.length);
    const shown = steps.slice(0, 5).join(', ') + (steps.length > 5 ? `, ... (${steps.length} steps)` : '');
    warn(`inrun: run "${this.id}": step ${shown} not finite (NaN or Infinity in the loss, a target loss or a score); policy nonFinite: '${this.parts.nonFinite}'`);
  }

  async close(): Promise<Scores> {
    if (this.final !== null) return this.final;
    if (this.closed) throw new InrunError('close() is already in progress', { code: 'invalid_state' });
    this.closed = true;
    const halted: { error: InrunError | null } = { error: null };
    try {
      if (this.storedIn !== null) {
        // A reused run id that never trained: nothing to write, and the stored run stays untouched.
        this.final = await this.readTotals(true);
        return this.final;
      }
      // A non-finite step found now still lets close write the totals and close the sinks.
      await this.flush().catch((error: unknown) => {
        if (error !== this.halt || this.halt === null) throw error;
        halted.error = this.halt;
      });
      const scores = await this.readTotals(true);
      await this.pushTotals(scores, true);
      await this.parts.delivery.drain();
      this.final = scores;
    } finally {
      try {
        await this.parts.delivery.close();
      } finally {
        this.release();
      }
    }
    this.surfaceSinkFailure();
    if (halted.error !== null) throw halted.error;
    return this.final;
  }

  // ---- the step ----------------------------------------------------------------------------------

  private onGradients(compute: RunCompute): Gradients {
    this.surfaceSinkFailure();
    if (this.halt !== null) throw this.halt;
    const batch = this.queue.shift();
    if (batch === undefined) {
      throw new InrunError(
        'a training step ran without example ids. Train with run.fit(x, y, { ids }), run.fitDataset(dataset) ' +
          'whose elements are { xs, ys, ids }, or wrap a custom step in run.step(ids, () => optimizer.minimize(...)); ' +
          'call run.close() to train without attribution', { code: 'invalid_input' },
      );
    }
    const startedAt = performance.now();
    const capture = new Capture();
    let result: Gradients | null = null;
    let passes: GroupPass[] | undefined;
    try {
      const fused = this.parts.fused;
      if (fused === null) {
        result = withCapture(capture, () => compute());
      } else {
        // One pass over training and target rows (docs/hooks.md): the update gets the plain step's gradients.
        const n = batch.ids.length;
        let taken: (() => { loss: tf.Scalar; perRow: tf.Tensor1D }) | null = null;
        const both = withCapture(capture, () =>
          compute((f) => {
            const w = fusedLoss(fused, n, f);
            taken = w.taken;
            return w.f;
          }),
        );
        const { loss, perRow } = taken!();
        both.value.dispose();
        result = { value: loss, grads: both.grads };
        const targetCapture = capture.split(n);
        const { group } = fused;
        const losses = tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(perRow, [1, group.rows]), group.layout.membership), [-1]) as tf.Tensor1D);
        perRow.dispose();
        passes = [{ group, pass: { capture: targetCapture, losses } }];
      }
      this.attribute(capture, batch, result, startedAt, passes);
      return result;
    } catch (error) {
      if (result !== null) tf.dispose([result.value, ...Object.values(result.grads)]);
      throw error;
    } finally {
      capture.dispose();
      if (passes !== undefined) disposePasses(passes);
    }
  }

  private attribute(capture: Capture, batch: PendingBatch, result: Gradients, startedAt: number, passes?: GroupPass[]): void {
    const loss = result.value;
    const attributionStart = performance.now();
    const slots = this.index.slotsOf(batch.ids, batch.field);
    const n = slots.length;
    const rows = [...capture.layers.values()][0]?.calls[0]?.inputs[0]?.shape[0];
    if (rows !== undefined && rows !== n) {
      throw new InrunError(`got ${n} ids for a batch of ${rows} rows; give one id per row, in row order`, { field: batch.field, code: 'invalid_input' });
    }
    const learningRate = readLearningRate(this.parts.model.optimizer);
    const scale = { learningRate, lossScale: this.parts.model.lossReduction === 'mean' ? 1 / n : 1 };
    const keep = this.parts.stepRecords && (this.subject.observed || this.parts.delivery.wantsSteps);
    const out = this.parts.attributor.step(capture, slots, scale, keep, this.stepCount, loss, result.grads, passes);
    // Without a record the finiteness flag still waits for the next flush's read.
    if (out.values === null) {
      this.buffer.pushFlag(this.stepCount, out.finite);
    } else {
      this.buffer.push({
        step: this.stepCount,
        epoch: this.epoch,
        learningRate,
        ids: batch.ids,
        values: out.values,
        loss: tf.keep(loss.clone()),
        targetLosses: out.targetLosses,
        finite: out.finite,
        startedAt,
        attributionMs: performance.now() - attributionStart,
      });
    }
    this.stepCount++;
  }

  private lastCheckpoint = -1;

  /** Automatic checkpoint every `everySteps` steps (between steps). */
  private async checkpointIfDue(): Promise<void> {
    const every = this.parts.checkpoints?.everySteps;
    if (every === undefined || this.parts.model.layersModel === null) return;
    const step = this.stepCount - 1;
    if (step >= 0 && step !== this.lastCheckpoint && (step + 1) % every === 0) {
      this.lastCheckpoint = step;
      await this.checkpoint(this.parts.checkpoints!.dir);
    }
  }

  /** Automatic checkpoint after every `everyEpochs` epochs (called by fit's epoch tracker). */
  async onEpochDone(epoch: number): Promise<void> {
    const every = this.parts.checkpoints?.everyEpochs;
    if (every === undefined || (epoch + 1) % every !== 0 || this.stepCount - 1 === this.lastCheckpoint) return;
    this.lastCheckpoint = this.stepCount - 1;
    await this.checkpoint(this.parts.checkpoints!.dir);
  }

  private async flushIfDue(): Promise<void> {
    if (this.buffer.size >= this.parts.flushEvery) await this.flush();
  }

  /** Wraps a dataset so that each element's ids are queued for the step that consumes it. */
  private withIds(source: DatasetLike<unknown>): DatasetLike<unknown> {
    return {
      get size() {
        return source.size;
      },
      iterator: async () => {
        const it = await source.iterator();
        return {
          next: async (): Promise<IteratorResult<unknown>> => {
            // Back-pressure point: fitDataset awaits this before every step.
            await this.flushIfDue();
            const item = await it.next();
            const ended = item.done === true || item.value == null;
            // The step before an epoch's end finished that epoch: a checkpoint taken now records it.
            if (ended && this.epoch !== null) this.finishedEpoch = this.epoch;
            await this.checkpointIfDue();
            this.surfaceSinkFailure();
            if (ended) return item;
            const { ids, ...rest } = item.value as { ids?: unknown; ys?: unknown };
            const list = await readBatchIds(ids, 'dataset element ids');
            // Labels as run.fit checks them (one-hot width; sparse ids in range: one small read per batch).
            const ys = rest.ys instanceof tf.Tensor ? [rest.ys] : Array.isArray(rest.ys) ? (rest.ys as unknown[]) : [];
            if (this.parts.model.layersModel !== null && ys.every((y) => y instanceof tf.Tensor)) {
              await checkBatchLabels(this.parts.model.layersModel, ys as tf.Tensor[], 'dataset element ys');
            }
            // One element is fetched right before its step; a leftover belongs to a step that never ran.
            this.queue = [{ ids: list, field: 'dataset element ids' }];
            return { done: false, value: rest };
          },
        };
      },
    };
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  private hookModel(model: tf.LayersModel): void {
    const m = model as unknown as {
      fit: tf.LayersModel['fit'];
      fitDataset: tf.LayersModel['fitDataset'];
    };
    const own = { fit: Object.hasOwn(m, 'fit'), fitDataset: Object.hasOwn(m, 'fitDataset') };
    const fit = m.fit;
    const fitDataset = m.fitDataset;
    this.originalFitDataset = fitDataset.bind(model);
    m.fit = (x, y, args = {}) => {
      if (args.shuffle ?? true) {
        return Promise.reject(
          new InrunError(
            'model.fit shuffles with Math.random and never says which rows formed a batch, so inrun cannot map rows to ids. ' +
              'Use run.fit(x, y, { ids }) (seeded, exact shuffling) or pass shuffle: false (row indices become ids)',
            { field: 'args.shuffle', code: 'invalid_option' }
          ),
        );
      }
      return this.fit(x as tf.Tensor | tf.Tensor[], y as tf.Tensor | tf.Tensor[], args);
    };
    m.fitDataset = (dataset, args) => this.fitOn(dataset, args);
    this.restores.push(() => {
      if (own.fit) m.fit = fit;
      else delete (m as { fit?: unknown }).fit;
      if (own.fitDataset) m.fitDataset = fitDataset;
      else delete (m as { fitDataset?: unknown }).fitDataset;
    });
  }

  private requireLayersModel(method: string): tf.LayersModel {
    this.assertOpen();
    const model = this.parts.model.layersModel;
    if (model === null) {
      throw new InrunError(`run.${method} needs a tf.LayersModel; hand-written models train with run.step(ids, fn)`, { field: 'model', code: 'unsupported_model' });
    }
    return model;
  }

  private checkOptimizer(model: tf.LayersModel): void {
    if (model.optimizer !== this.parts.model.optimizer) {
      throw new InrunError(
        'model.optimizer is not the optimizer this run watches (the model was compiled again, or attach got another optimizer); fit would train unattributed',
        { field: 'model.optimizer', code: 'invalid_state' },
      );
    }
  }

  /** Throws the first sink failure not yet reported (under `sinkErrors: 'stop'`). */
  private surfaceSinkFailure(): void {
    const failure = this.parts.delivery.takeFailure();
    if (failure === null) return;
    throw new InrunError(
      `sink ${failure.sink} failed in ${failure.call}: ${reason(failure.error.cause)}. Training stopped; what the sinks wrote stays readable (sinkErrors: 'continue' trains on without a failing sink)`,
      { field: 'sinks', cause: failure.error.cause, code: 'sink_failed' },
    );
  }

  /**
   * A run id some sink already stores, found at attach, fails before the first step (not at the first
   * write mid-training). attach cannot refuse it itself: `run.resume()` may still follow.
   */
  private checkNewRun(): void {
    if (this.storedIn === null) return;
    throw new InrunError(`run "${this.id}" is already stored in sink ${this.storedIn}; choose another runId, or call run.resume(checkpoint) before training`, {
      field: 'runId',
      code: 'invalid_state',
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new InrunError('this run is closed', { code: 'invalid_state' });
  }

  private release(): void {
    this.metrics?.stop();
    for (const restore of this.restores.reverse()) restore();
    this.restores.length = 0;
    this.parts.release();
    this.parts.attributor.dispose();
    this.buffer.dispose();
    this.parts.totals.dispose();
    this.parts.tokens?.dispose();
    this.subject.complete();
  }
}
