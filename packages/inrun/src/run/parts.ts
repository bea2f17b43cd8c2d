// RunParts: what attach hands a run, grouped by the unit that uses it.
import type { NonFinitePolicy, ResolvedTokenOptions } from '../attach/options.js';
import type { TokenTotals } from '../accumulators/tokens.js';
import type { DeviceTotals } from '../accumulators/totals.js';
import type { FusedPlan } from '../hooks/fused.js';
import type { ModelAdapter } from '../model/adapter.js';
import type { Attributor, RunSketch } from '../scoring/attributor.js';
import type { Delivery } from '../stream/delivery.js';
import type { ResolvedMetricsOptions } from '../telemetry/metrics.js';
import type { ExampleInfo } from '../types.js';
import type { CheckpointPlan } from './checkpoint-schedule.js';
import type { RunInfoLog } from './info-log.js';
import type { LearningCheck } from './learning-check.js';

/** The step scorer and the device state it accumulates into. */
export interface ScoringParts {
  readonly attributor: Attributor;
  readonly totals: DeviceTotals;
  readonly tokens: TokenTotals | null;
  readonly tokenOptions: ResolvedTokenOptions;
  /** Column names, in the totals' column order. */
  readonly columns: readonly string[];
  readonly targetNames: readonly string[];
  /** The fused target pass's plan, or null when target rows take a pass of their own. */
  readonly fused: FusedPlan | null;
  /** Whether steps keep per-step records (for records$ and sinks that take steps). */
  readonly stepRecords: boolean;
}

/** When records and totals reach the sinks, and what a non-finite step does. */
export interface FlushParts {
  /** Buffered steps that trigger a flush. */
  readonly flushEvery: number;
  /** Steps between totals snapshots sent to sinks (0 = only at checkpoints and close). */
  readonly totalsEvery: number;
  readonly nonFinite: NonFinitePolicy;
}

export interface RunParts {
  /** The run's metadata: built complete by attach; later facts make new snapshots (info-log.ts). */
  readonly info: RunInfoLog;
  readonly model: ModelAdapter;
  readonly scoring: ScoringParts;
  readonly delivery: Delivery;
  readonly flush: FlushParts;
  /** Automatic checkpoints, or null. */
  readonly checkpoints: CheckpointPlan | null;
  /** In-run gradient sketches (saved with checkpoints), or null. */
  readonly sketch: RunSketch | null;
  /** OpenTelemetry metrics, or null. */
  readonly metrics: ResolvedMetricsOptions | null;
  /** The run's seed (run.fit's shuffling). */
  readonly seed: number;
  /** Examples described at attach. */
  readonly examples: readonly ExampleInfo[];
  /** The targets measured at attach, judged at close (did the model learn them?), or null without targets. */
  readonly learning: LearningCheck | null;
  /** Removes layer hooks and frees targets. */
  readonly release: () => void;
  /** Checks started at attach that read asynchronously; training waits for them (run-gate.ts). */
  readonly checks: readonly Promise<void>[];
}
