// A forward pass before the first training step (the user's predict before or after attach, the not-learnt check), checked on whatever backend is active.
import * as tf from '@tensorflow/tfjs';
import { BACKEND_CASES, type BackendCase } from './backend-cases.js';
import { checkRun, checkUpdate, guarded, warmUp, type BackendResult, type UserCode } from './backend-checks.js';

/**
 * What each variant's user code does. Every variant also runs attach's own forward pass of the targets
 * (the not-learnt check, on by default); with nothing else, that is the backend suite's run.
 */
export const FORWARD_FIRST: Readonly<Record<string, UserCode>> = {
  // model.predict on the target rows and on the training rows, before attach.
  'predict before attach': { beforeAttach: (c) => predictAll(c) },
  // the same after attach (through the instrumented layers, outside a step), before the first step.
  'predict after attach': { afterAttach: (c) => predictAll(c) },
  // model.evaluate's forward and loss on the training rows after attach (the loss the user logs).
  'evaluate after attach': { afterAttach: (c) => evaluate(c) },
};

/**
 * Not inrun: tf.js 4.22's webgpu transpose of an int32 tensor fails to compile and drops the GPU
 * commands queued with it (docs/layers.md, "GPU backends"). The user code that does it must fail the
 * checks on webgpu, which shows they see a step whose kernels never ran; on cpu it is harmless.
 */
export const TFJS_INT_TRANSPOSE: UserCode = {
  afterAttach: () => tf.tidy(() => void tf.mean(tf.reshape(tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0, 2], 'int32'), 3), [6, 1, 3]), 1)),
};

function predictAll(c: BackendCase): void {
  tf.tidy(() => {
    for (const t of Object.values(c.targets)) c.model.predict(t.xs);
    c.model.predict(c.x);
  });
}

function evaluate(c: BackendCase): void {
  tf.tidy(() => void c.model.evaluate(c.x, c.y, { batchSize: c.x.shape[0]! }));
}

/** Scores vs brute force, reads, tensors and the SGD / Adam updates vs an uninstrumented run, per variant and case; results' `case` is `<variant> / <case>`. */
export async function runForwardFirstChecks(options: { readonly variants?: readonly string[]; readonly cases?: readonly string[]; readonly intTranspose?: boolean } = {}): Promise<BackendResult[]> {
  const out: BackendResult[] = [];
  await warmUp();
  const variants: [string, UserCode][] = Object.entries(FORWARD_FIRST).filter(([v]) => options.variants === undefined || options.variants.includes(v));
  if (options.intTranspose === true) variants.push(['tfjs int transpose', TFJS_INT_TRANSPOSE]);
  for (const [variant, user] of variants) {
    const cases = variant === 'tfjs int transpose' ? BACKEND_CASES.slice(0, 1) : BACKEND_CASES.filter((s) => options.cases === undefined || options.cases.includes(s.name));
    for (const spec of cases) {
      const named = (results: BackendResult[]) => results.map((r) => ({ ...r, case: `${variant} / ${r.case}` }));
      out.push(...named(await guarded(spec, ['scores', 'reads', 'tensors'], () => checkRun(spec, user))));
      out.push(...named(await guarded(spec, ['update-sgd'], () => checkUpdate(spec, () => tf.train.sgd(0.1), 'update-sgd', user))));
      out.push(...named(await guarded(spec, ['update-adam'], () => checkUpdate(spec, () => tf.train.adam(0.01), 'update-adam', user))));
    }
  }
  return out;
}
