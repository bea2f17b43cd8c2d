// quietNodeBanner: inrun's own commands (CLI, demo, evals, benches) silence tf.js' "install the node backend" banner; the library never does.
import * as tf from '@tensorflow/tfjs';

interface CpuBackend {
  firstUse?: boolean;
}

/** tf.js' engine internals this reaches (private in its typings; absent fields make it a no-op). */
interface EngineInternals {
  registry?: Record<string, CpuBackend | undefined>;
  registryFactory?: Record<string, { factory: () => unknown } | undefined>;
}

function markUsed(backend: unknown): void {
  const cpu = backend as CpuBackend | null;
  if (cpu !== null && typeof cpu === 'object' && typeof cpu.firstUse === 'boolean') cpu.firstUse = false;
}

/**
 * tf.js' cpu backend prints "looks like you are running TensorFlow.js in Node.js ... install our node
 * backend" at its first tensor. inrun's own entry points call this first: every cpu backend the engine
 * makes from then on (it makes a fresh one when it picks its backend) starts marked as used, so that
 * banner alone is skipped and every other tf.js warning still prints. It chooses no backend and
 * registers none. The library never calls it: a user's program keeps tf.js' advice.
 */
export function quietNodeBanner(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  markUsed(engine.registry?.['cpu']);
  const entry = engine.registryFactory?.['cpu'];
  if (entry === undefined || (entry.factory as { quiet?: true }).quiet) return;
  const make = entry.factory;
  const quiet = Object.assign(() => {
    const backend = make();
    markUsed(backend);
    return backend;
  }, { quiet: true as const });
  entry.factory = quiet;
}
