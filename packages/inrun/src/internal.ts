// The seam @inrun/jobs builds on: TracIn, TRAK and UnTrac, checkpoints and model folders, with the internals it needs (no semver promise for applications).
import { useCheckpointFolders } from './run/checkpoint-choice.js';
import { nodeCheckpointFolders } from './run/checkpoint-folders-node.js';

// Node only, like the main entry: checkpoint folders over node:fs.
useCheckpointFolders(nodeCheckpointFolders);

export { checkpointFolders, checkRows, tracin } from './posthoc/tracin.js';
export type { Influence, SourceInfluence, TracInResult } from './posthoc/tracin.js';
export { trak, resolveTrakOptions, trakRuns } from './posthoc/trak.js';
export type { ResolvedTrakOptions, TrakCheckpoint, TrakOptions, TrakResult } from './posthoc/trak.js';
export { trakFeatures } from './posthoc/trak-features.js';
export type { TrakFeatures } from './posthoc/trak-features.js';
export { addGram, addScores, defaultLambda, solveQueries } from './posthoc/trak-kernel.js';
export { yieldTurn } from './event-loop.js';
export { untrac } from './posthoc/untrac.js';
export type { UntracOptions, UntracRow } from './posthoc/untrac-options.js';
export { TopK } from './posthoc/top-k.js';
export { SourceSums } from './posthoc/source-sums.js';
export type { MetricsOptions } from './telemetry/metrics.js';
export { readCheckpointInfo } from './run/checkpoint.js';
export { loadTrainedModel } from './run/model-folder.js';
export { quietNodeBanner } from './quiet-banner.js';
