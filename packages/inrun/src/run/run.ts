// AttributionRun: the Run facade: training paths (fit, fitDataset, step), results and lifecycle, over the run's units.
import * as tf from '@tensorflow/tfjs';
import { Subject, type Observable } from 'rxjs';
import { InrunError, invalid } from '../errors.js';
import { arrayBatches, withCallback, type DatasetLike } from '../hooks/fit.js';
import { checkId, checkIds, IdIndex } from '../hooks/ids.js';
import { hookOptimizer } from '../hooks/optimizer.js';
import type { Restore } from '../hooks/restore.js';
import { RecordBuffer } from '../stream/records.js';
import { RunMetrics } from '../telemetry/metrics.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from '../types.js';
import type { FitArgs, Run, RunStats } from './api.js';
import { BatchQueue } from './batch-queue.js';
import type { CheckpointInfo } from './checkpoint.js';
import { CheckpointSchedule } from './checkpoint-schedule.js';
import { writeRunCheckpoint } from './checkpoint-writer.js';
import { withIds } from './dataset-ids.js';
import { EpochTracker } from './epoch-tracker.js';
import { Epochs } from './epochs.js';
import { prepareFit } from './fit-args.js';
import { FitSeeds } from './fit-seeds.js';
import { Flusher } from './flusher.js';
import { checkBatchLabels } from '../scoring/labels.js';
import { patchModel } from './model-patch.js';
import { NonFiniteSteps } from './non-finite.js';
import { notLearnedWarning } from './learning-check.js';
import { warn } from '../warn.js';
import type { RunParts } from './parts.js';
import { resumePoint, resumeTotals } from './resume.js';
import { RunGate } from './run-gate.js';
import { ScoresReader } from './scores-reader.js';
import { surfaceSinkFailure } from './sink-failure.js';
import { StepAttribution } from './step-attribution.js';
import { StepCounter } from './step-counter.js';
import { TotalsSnapshots } from './totals-snapshots.js';

export type { RunParts } from './parts.js';

export class AttributionRun implements Run {
  readonly id: string;
  readonly records$: Observable<StepRecord>;

  private readonly subject = new Subject<StepRecord>();
  private readonly index = new IdIndex();
  private readonly queue = new BatchQueue();
  private readonly counter = new StepCounter();
  private readonly epochs = new Epochs();
  private readonly buffer: RecordBuffer;
  private readonly restores: Restore[] = [];
  private readonly sources = new Map<ExampleId, string>();
  private readonly metrics: RunMetrics | null;
  private readonly gate: RunGate;
  private readonly nonFinite: NonFiniteSteps;
  private readonly snapshots: TotalsSnapshots;
  private readonly scoresReader: ScoresReader;
  private readonly flusher: Flusher;
  private readonly schedule: CheckpointSchedule;
  private readonly seeds: FitSeeds;
  private final: Scores | null = null;
  private originalFitDataset: tf.LayersModel['fitDataset'] | null = null;

  constructor(private readonly parts: RunParts) {
    const { delivery, scoring } = parts;
    this.id = parts.info.current.runId;
    this.records$ = this.subject.asObservable();
    this.gate = new RunGate(this.id, delivery.storedIn(this.id), parts.checks);
    this.buffer = new RecordBuffer(this.id, scoring.columns, scoring.targetNames);
    this.metrics =
      parts.metrics === null
        ? null
        : new RunMetrics(
            { records$: this.records$, info: this.info, sourceOf: (id) => this.sources.get(id), delivery: () => delivery.stats },
            parts.metrics,
          );
    this.nonFinite = new NonFiniteSteps(this.id, parts.flush.nonFinite, this.metrics);
    this.snapshots = new TotalsSnapshots(delivery, parts.flush.totalsEvery, this.counter);
    this.scoresReader = new ScoresReader(scoring, this.index, parts.info);
    this.flusher = new Flusher(this.buffer, this.nonFinite, this.subject, delivery, this.snapshots, () => this.scoresReader.read(false), parts.flush.flushEvery);
    this.schedule = new CheckpointSchedule(parts.checkpoints, this.counter, parts.model.layersModel !== null, (dir) => this.checkpoint(dir));
    this.seeds = new FitSeeds(parts.seed);
    this.describe(parts.examples);
    const step = new StepAttribution({ model: parts.model, attributor: scoring.attributor, fused: scoring.fused }, {
      queue: this.queue,
      index: this.index,
      buffer: this.buffer,
      counter: this.counter,
      epochs: this.epochs,
      keepsRecords: () => scoring.stepRecords && (this.subject.observed || delivery.wantsSteps),
      guard: () => {
        surfaceSinkFailure(delivery);
        this.nonFinite.check();
      },
    });
    this.restores.push(hookOptimizer(parts.model.optimizer, (compute) => step.onGradients(compute)));
    const model = parts.model.layersModel;
    if (model !== null) {
      const patched = patchModel(model, { fit: (x, y, args) => this.fit(x, y, args), fitDataset: (dataset, args) => this.fitOn(dataset, args) });
      this.originalFitDataset = patched.originalFitDataset;
      this.restores.push(patched.restore);
    }
  }

  /** The newest snapshot of the run's metadata (see info-log.ts: snapshots are frozen, never edited). */
  get info(): RunInfo {
    return this.parts.info.current;
  }

  // ---- training paths -------------------------------------------------------------------------

  async fit(x: tf.Tensor | tf.Tensor[], y: tf.Tensor | tf.Tensor[], args: FitArgs = {}): Promise<tf.History> {
    if (this.gate.ready !== null) await this.gate.ready;
    this.requireLayersModel('fit');
    const { seed, batchSize, shuffle, epochs, rest, tx, ty, idList, train, validation, sliced } = prepareFit(x, y, args);
    const trainIds = idList.slice(0, train);
    for (const id of trainIds) this.index.slotOf(id);
    const callSeed = this.seeds.next(seed);
    this.parts.info.addSeed(callSeed);
    try {
      await checkBatchLabels(this.requireLayersModel('fit'), ty, 'y');
      const dataset = arrayBatches(tx, ty, trainIds, batchSize, shuffle, callSeed, () => this.epochs.current ?? rest.initialEpoch ?? 0);
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
    if (this.gate.ready !== null) await this.gate.ready;
    const model = this.requireLayersModel('fitDataset');
    if (dataset == null || typeof dataset.iterator !== 'function') {
      invalid('dataset', 'a tf.data.Dataset', dataset);
    }
    if (args == null || typeof args !== 'object') throw new InrunError('expected fitDataset arguments ({ epochs, ... })', { field: 'args' });
    this.checkOptimizer(model);
    this.gate.checkNewRun();
    const wrapped = withIds(dataset, {
      beforeNext: () => this.flusher.ifDue(),
      afterNext: async (ended) => {
        if (ended) this.epochs.endCurrent();
        await this.schedule.afterStep();
        surfaceSinkFailure(this.parts.delivery);
      },
      onElement: async (ids, ys) => {
        // Labels as run.fit checks them (one-hot width; sparse ids in range: one small asynchronous read per batch).
        await checkBatchLabels(this.parts.model.layersModel, ys, 'dataset element ys');
        // One element is fetched right before its step; a leftover belongs to a step that never ran.
        this.queue.set({ ids, field: 'dataset element ids' });
      },
    });
    const callbacks = withCallback(args.callbacks, args.yieldEvery, new EpochTracker(this.epochs, (epoch) => this.schedule.afterEpoch(epoch)));
    this.queue.clear();
    try {
      const fitDataset = this.originalFitDataset ?? model.fitDataset.bind(model);
      const history = await fitDataset(wrapped as unknown as tf.data.Dataset<tf.TensorContainer>, { ...args, callbacks });
      await this.flush();
      await this.parts.delivery.drain();
      surfaceSinkFailure(this.parts.delivery);
      return history;
    } finally {
      this.queue.clear();
      this.epochs.leave();
    }
  }

  async step<T>(ids: readonly ExampleId[] | ArrayLike<number>, fn: () => T | Promise<T>): Promise<T> {
    // attach's asynchronous checks first (run-gate.ts); only awaited where attach started some.
    if (this.gate.ready !== null) await this.gate.ready;
    this.gate.assertOpen();
    if (typeof fn !== 'function') invalid('fn', 'a function running one optimizer step', fn);
    surfaceSinkFailure(this.parts.delivery);
    this.gate.checkNewRun();
    this.queue.set({ ids: checkIds(ids, 'ids'), field: 'ids' });
    let unused: boolean;
    let result: T;
    try {
      result = await fn();
    } finally {
      unused = this.queue.pending;
      this.queue.clear();
    }
    if (unused) {
      throw new InrunError('fn ran no optimizer step; call optimizer.minimize (or model.trainOnBatch) inside it', { field: 'fn', code: 'invalid_state' });
    }
    await this.flusher.ifDue();
    await this.schedule.afterStep();
    surfaceSinkFailure(this.parts.delivery);
    return result;
  }

  // ---- results ---------------------------------------------------------------------------------

  describe(examples: Iterable<ExampleInfo>): void {
    this.gate.assertOpen();
    if (examples == null || typeof (examples as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      invalid('examples', 'an iterable of { id, source?, label?, text? }', examples);
    }
    let i = 0;
    for (const example of examples) {
      if (example === null || typeof example !== 'object') {
        invalid(`examples[${i}]`, '{ id, source?, label?, text? }', example);
      }
      checkId(example.id, `examples[${i}].id`);
      // Metadata only: an id gets a score row when it trains, so a described id never trained is no scored row of zeros.
      if (example.source !== undefined) this.sources.set(example.id, example.source);
      this.flusher.addExample(example);
      i++;
    }
  }

  async scores(): Promise<Scores> {
    if (this.final !== null) return this.final;
    await this.flush();
    return this.scoresReader.read(true);
  }

  flush(): Promise<void> {
    return this.flusher.flush();
  }

  async checkpoint(dir: string): Promise<CheckpointInfo> {
    const model = this.requireLayersModel('checkpoint');
    await this.flush();
    const totals = await this.scoresReader.read(false);
    await this.snapshots.push(totals, false);
    await this.parts.delivery.drain();
    surfaceSinkFailure(this.parts.delivery);
    return writeRunCheckpoint(model, dir, {
      runId: this.id,
      step: this.counter.last,
      epoch: this.epochs.finished,
      optimizer: this.parts.model.optimizer,
      totals,
      columns: this.parts.scoring.columns,
      sketch: this.parts.sketch,
      index: this.index,
    });
  }

  async resume(from: string | { readonly afterStep: number }): Promise<{ readonly step: number; readonly epoch: number | null }> {
    this.gate.assertOpen();
    if (this.counter.steps > 0) throw new InrunError('resume() must come before the first training step', { field: 'resume', code: 'invalid_state' });
    const point = resumePoint(from, this.id);
    this.gate.resumed();
    const { columns, totals } = this.parts.scoring;
    const state = await resumeTotals(from, point, this.parts.delivery, columns);
    const slots = Int32Array.from(state.ids, (id) => this.index.slotOf(id));
    totals.load(slots, columns.map((name) => state.columns[name] ?? new Float64Array(slots.length)), state.steps);
    this.counter.resumeAfter(point.step);
    this.snapshots.resumeAt(point.step);
    this.epochs.resumeAt(point.epoch);
    return { step: point.step, epoch: point.epoch };
  }

  stats(): RunStats {
    return {
      steps: this.counter.steps,
      nonFiniteSteps: this.nonFinite.steps,
      firstNonFiniteStep: this.nonFinite.first,
      delivery: this.parts.delivery.stats,
      metricsMs: this.metrics?.busyMs ?? 0,
    };
  }

  async close(): Promise<Scores> {
    if (this.final !== null) return this.final;
    if (this.gate.closed) throw new InrunError('close() is already in progress', { code: 'invalid_state' });
    this.gate.close();
    const halted: { error: InrunError | null } = { error: null };
    try {
      if (this.gate.reused) {
        // A reused run id that never trained: nothing to write, and the stored run stays untouched.
        this.final = await this.scoresReader.read(true);
        return this.final;
      }
      // A non-finite step found now still lets close write the totals and close the sinks.
      await this.flush().catch((error: unknown) => {
        const halt = this.nonFinite.halt;
        if (error !== halt || halt === null) throw error;
        halted.error = halt;
      });
      await this.checkLearning();
      const scores = await this.scoresReader.read(true);
      await this.snapshots.push(scores, true);
      await this.parts.delivery.drain();
      this.final = scores;
    } finally {
      try {
        await this.parts.delivery.close();
      } finally {
        this.release();
      }
    }
    surfaceSinkFailure(this.parts.delivery);
    if (halted.error !== null) throw halted.error;
    return this.final;
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /**
   * Whether the model learnt its targets since attach, in `run.info.meta.learning` before the final
   * totals reach the sinks (which store the run info with them); a warning when it did not: values
   * toward a target the model has not learnt rank examples by noise (docs/hooks.md, "Has the model learnt?").
   */
  private async checkLearning(): Promise<void> {
    const learning = this.parts.learning;
    if (learning === null || this.counter.steps === 0) return;
    const report = await learning.finish();
    this.parts.info.noteMeta('learning', report);
    const message = notLearnedWarning(this.id, report);
    if (message !== null) warn(message);
  }

  private requireLayersModel(method: string): tf.LayersModel {
    this.gate.assertOpen();
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

  private release(): void {
    this.metrics?.stop();
    for (const restore of this.restores.reverse()) restore();
    this.restores.length = 0;
    this.parts.release();
    this.parts.scoring.attributor.dispose();
    this.buffer.dispose();
    this.parts.scoring.totals.dispose();
    this.parts.scoring.tokens?.dispose();
    this.subject.complete();
  }
}
