// The per-kind checks on whatever backend is active, with asynchronous reads only: runs in Node and in a page, returns plain results.
import * as tf from '@tensorflow/tfjs';
import { attach, type StepRecord } from 'inrun';
import { BACKEND_CASES, type BackendCase, type BackendCaseSpec } from './backend-cases.js';

/** The checks each case runs, in order. */
export const BACKEND_CHECKS = ['scores', 'reads', 'tensors', 'update-sgd', 'update-adam', 'fused-sgd', 'fused-adam'] as const;
export type BackendCheck = (typeof BACKEND_CHECKS)[number];

/** One check's outcome, JSON-safe so a page or a child process can hand it back. */
export interface BackendResult {
  readonly case: string;
  readonly check: BackendCheck;
  readonly ok: boolean;
  readonly detail: string;
}

/** What the page (test/backend-page-entry.ts) exposes on its global object to the driver. */
export interface BackendPage {
  /** `gpuErrors`: the WebGPU device's uncaptured errors during the checks (a shader that failed to compile drops the commands queued with it); empty on webgl. */
  inrunBackendChecks(backend: 'webgl' | 'webgpu', only?: readonly string[]): Promise<{ backend: string; float32: boolean; results: BackendResult[]; gpuErrors: string[] }>;
}

/** Largest relative error a score may have against brute force (relative to the largest expected value). */
export const SCORE_TOLERANCE = 1e-4;
/** Largest relative error a fused-pass score or target loss may have against the separate pass's. */
const PASS_TOLERANCE = 1e-6;
const LR = 0.05;

const ids = (n: number) => Array.from({ length: n }, (_, i) => `row${i}`);

async function flat(t: tf.Tensor): Promise<Float64Array> {
  const values = Float64Array.from(await t.data());
  t.dispose();
  return values;
}

function variables(model: tf.LayersModel, names?: readonly string[]): tf.Variable[] {
  return model.layers
    .filter((l) => l.trainableWeights.length > 0 && (names === undefined || names.includes(l.name)))
    .flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}

/** Gradient of the summed loss of (x, y) w.r.t. `vars`, flattened in `vars` order (one asynchronous read). */
function gradient(c: BackendCase, x: tf.Tensor, y: tf.Tensor, vars: tf.Variable[]): Promise<Float64Array> {
  const g = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.sum(c.loss(y, c.model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, vars);
    return tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])));
  });
  return flat(g);
}

/** Brute force: one backward pass per example. */
async function perExample(c: BackendCase, vars: tf.Variable[]): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (let i = 0; i < c.x.shape[0]!; i++) {
    const [xi, yi] = [tf.slice(c.x, i, 1), tf.slice(c.y, i, 1)];
    out.push(await gradient(c, xi, yi, vars));
    tf.dispose([xi, yi]);
  }
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** max |actual - expected| / max |expected|. */
function relativeError(actual: ArrayLike<number>, expected: readonly number[]): number {
  if (actual.length !== expected.length) return Infinity;
  const scale = Math.max(...expected.map(Math.abs));
  if (!(scale > 0)) return Infinity;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  return worst / scale;
}

/** Counts the backend's reads (asynchronous and synchronous) while `fn` runs. */
async function countReads<T>(fn: () => Promise<T>): Promise<{ value: T; reads: number }> {
  const backend = tf.backend() as unknown as Record<'read' | 'readSync', (...a: unknown[]) => unknown>;
  const originals = { read: backend.read, readSync: backend.readSync };
  let reads = 0;
  for (const name of ['read', 'readSync'] as const) {
    const original = originals[name];
    backend[name] = function (this: unknown, ...a: unknown[]) {
      reads++;
      return original.apply(this, a);
    };
  }
  try {
    return { value: await fn(), reads };
  } finally {
    backend.read = originals.read;
    backend.readSync = originals.readSync;
  }
}

/** One optimizer step on the whole batch through `optimizer.minimize`, which reads nothing itself. */
function minimize(c: BackendCase): void {
  c.model.optimizer.minimize(() => tf.mean(c.loss(c.y, c.model.apply(c.x, { training: true }) as tf.Tensor)) as tf.Scalar);
}

function dispose(c: BackendCase): void {
  tf.dispose([c.x, c.y, ...Object.values(c.targets).flatMap((t) => [t.xs, t.ys])]);
  c.model.dispose();
}

/**
 * What the user's own code does around `attach` in a check (test/forward-first-checks.ts): called with
 * the case, `beforeAttach` after the brute-force gradients are taken, `afterAttach` before the first step.
 */
export interface UserCode {
  readonly beforeAttach?: (c: BackendCase) => void;
  readonly afterAttach?: (c: BackendCase) => void;
}

/** Scores of one step vs brute force, reads inside attributed steps, tensors across steps and after close. */
export async function checkRun(spec: BackendCaseSpec, user: UserCode = {}): Promise<BackendResult[]> {
  const c = spec.make();
  (c.model.optimizer as unknown as { learningRate: number }).learningRate = LR;
  const n = c.x.shape[0]!;
  // A plain step first: the reads the backend's own kernels make (none on webgl/webgpu), and it creates
  // tf.js' one-time tensors (the optimizer's constants) before tensors are counted.
  const { reads: plainReads } = await countReads(() => Promise.resolve(minimize(c)));
  const vars = variables(c.model);
  const g = await perExample(c, vars);
  const gT = new Map<string, Float64Array>();
  for (const [k, t] of Object.entries(c.targets)) gT.set(k, await gradient(c, t.xs, t.ys, vars));
  const embVars = c.embeddingLayers.length > 0 ? variables(c.model, c.embeddingLayers) : [];
  const gE = embVars.length > 0 ? await perExample(c, embVars) : [];
  const gTE = new Map<string, Float64Array>();
  if (embVars.length > 0) for (const [k, t] of Object.entries(c.targets)) gTE.set(k, await gradient(c, t.xs, t.ys, embVars));

  const results: BackendResult[] = [];
  user.beforeAttach?.(c);
  const before = tf.memory().numTensors;
  const run = attach(c.model, { targets: c.targets, methods: spec.methods });
  user.afterAttach?.(c);
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  const covered = run.info.layers.covered.some((l) => l.kind === spec.kind);
  const stepReads: number[] = [];
  const tensorsAfter: number[] = [];
  for (let s = 0; s < 2; s++) {
    const { reads } = await countReads(() => run.step(ids(n), () => minimize(c)));
    stepReads.push(reads);
    await run.flush();
    tensorsAfter.push(tf.memory().numTensors);
  }
  await run.close();
  const afterClose = tf.memory().numTensors;

  const errors: string[] = [];
  let worst = 0;
  const rec = records[0];
  if (!covered) errors.push(`kind ${spec.kind} not covered (covered: ${run.info.layers.covered.map((l) => l.kind).join(', ')})`);
  if (rec === undefined || records.length !== 2) errors.push(`expected 2 records, got ${records.length}`);
  else {
    const compare = (column: string, expected: number[]) => {
      const got = rec.columns[column];
      if (got === undefined) return void errors.push(`no column ${column}`);
      const e = relativeError(got, expected);
      worst = Math.max(worst, e);
      if (!(e <= SCORE_TOLERANCE)) errors.push(`${column}: relative error ${e.toExponential(2)}`);
    };
    for (const name of Object.keys(c.targets)) {
      if (spec.methods.includes('shapley1')) compare(`shapley1:${name}`, g.map((gi) => (LR / n) * dot(gT.get(name)!, gi)));
      if (spec.methods.includes('tracin_we')) compare(`tracin_we:${name}`, gE.map((gi) => (LR / n) * dot(gTE.get(name)!, gi)));
    }
    if (spec.methods.includes('tracin_self')) compare('tracin_self', g.map((gi) => (LR / n) * dot(gi, gi)));
  }
  results.push({ case: spec.name, check: 'scores', ok: errors.length === 0, detail: errors.length > 0 ? errors.join('; ') : `worst relative error ${worst.toExponential(2)}` });
  results.push({ case: spec.name, check: 'reads', ok: stepReads.every((r) => r === 0), detail: `reads per attributed step ${stepReads.join(', ')} (a plain step: ${plainReads})` });
  const flatSteps = tensorsAfter.every((t) => t === tensorsAfter[0]);
  results.push({
    case: spec.name,
    check: 'tensors',
    ok: flatSteps && afterClose === before,
    detail: `numTensors before attach ${before}, after each step ${tensorsAfter.join(', ')}, after close ${afterClose}`,
  });
  dispose(c);
  return results;
}

async function weightsOf(c: BackendCase): Promise<number[][]> {
  return Promise.all(c.model.getWeights().map(async (w) => Array.from(await w.data())));
}

/** How many weights of `y` differ from `x` (Object.is), of how many, and the largest difference. */
function weightDiff(x: number[][], y: number[][]): { differing: number; total: number; maxAbs: number } {
  let differing = 0;
  let total = 0;
  let maxAbs = 0;
  x.forEach((w, i) =>
    w.forEach((v, j) => {
      total++;
      const u = y[i]?.[j];
      if (!Object.is(v, u)) {
        differing++;
        maxAbs = Math.max(maxAbs, Math.abs(v - (u ?? NaN)));
      }
    }),
  );
  return { differing, total, maxAbs };
}

/**
 * Whether `attributed` is the plain update: bit for bit, or where two plain runs already differ
 * (`control`), by no more than they do. webgpu's scatter-add (the gather gradient of an Embedding)
 * accumulates in no fixed order: a run may differ from another plain run, or not, by chance. There the
 * update is held to 1e-6 in absolute terms (one float rounding of these weights); everywhere else, and
 * for every other kind, bit for bit.
 */
function sameUpdate(c: BackendCase, plain: number[][], attributed: number[][], control: number[][]): { ok: boolean; detail: string } {
  const attributedDiff = weightDiff(plain, attributed);
  const controlDiff = weightDiff(plain, control);
  const unordered = tf.getBackend() === 'webgpu' && c.embeddingLayers.length > 0;
  const ok =
    plain.length === attributed.length &&
    (attributedDiff.differing === 0 || (controlDiff.differing > 0 && attributedDiff.maxAbs <= controlDiff.maxAbs * 4 + 1e-7) || (unordered && attributedDiff.maxAbs <= 1e-6));
  const detail = `${attributedDiff.differing} of ${attributedDiff.total} weights differ (max ${attributedDiff.maxAbs.toExponential(2)}); two plain runs: ${controlDiff.differing} differ (max ${controlDiff.maxAbs.toExponential(2)})`;
  return { ok, detail };
}

/** Two `minimize` steps of `c`, attached with `options` (or plain when null) with the user's code around attach; returns the records and the pass that ran. */
async function twoSteps(c: BackendCase, options: Parameters<typeof attach>[1] | null, user: UserCode = {}): Promise<{ records: StepRecord[]; pass: string | null }> {
  if (options === null) {
    for (let s = 0; s < 2; s++) minimize(c);
    return { records: [], pass: null };
  }
  user.beforeAttach?.(c);
  const run = attach(c.model, options);
  user.afterAttach?.(c);
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  for (let s = 0; s < 2; s++) await run.step(ids(c.x.shape[0]!), () => minimize(c));
  await run.close();
  return { records, pass: run.info.targetPass };
}

/**
 * Two `minimize` steps with and without inrun from the same weights: every weight bit-identical. A second
 * plain run is the control: where the backend itself is not deterministic, two plain runs already differ,
 * bit-identity is not defined, and the attributed run must then differ from the plain one by no more than
 * the two plain runs do.
 */
export async function checkUpdate(spec: BackendCaseSpec, optimizer: () => tf.Optimizer, check: BackendCheck, user: UserCode = {}): Promise<BackendResult> {
  const plain = spec.make();
  const control = spec.make();
  const attributed = spec.make();
  for (const c of [plain, control, attributed]) c.model.compile({ optimizer: optimizer(), loss: c.model.loss as string });
  await twoSteps(plain, null);
  await twoSteps(control, null);
  await twoSteps(attributed, { targets: attributed.targets, methods: spec.methods }, user);
  const { ok, detail } = sameUpdate(attributed, await weightsOf(plain), await weightsOf(attributed), await weightsOf(control));
  dispose(plain);
  dispose(control);
  dispose(attributed);
  return { case: spec.name, check, ok, detail };
}

/**
 * The default target pass (`targetPass: 'auto'`) against the separate one over two steps with
 * `optimizer`: it resolves to the case's expected pass, its update is the plain one (as in
 * {@link checkUpdate}), and its scores and target losses equal the separate pass's within 1e-6 relative.
 */
async function checkFused(spec: BackendCaseSpec, optimizer: () => tf.Optimizer, check: BackendCheck): Promise<BackendResult> {
  const [plain, control, auto, separate] = [spec.make(), spec.make(), spec.make(), spec.make()];
  for (const c of [plain, control, auto, separate]) c.model.compile({ optimizer: optimizer(), loss: c.model.loss as string });
  await twoSteps(plain, null);
  await twoSteps(control, null);
  const a = await twoSteps(auto, { targets: auto.targets, methods: spec.methods });
  const s = await twoSteps(separate, { targets: separate.targets, methods: spec.methods, targetPass: 'separate' });
  const update = sameUpdate(auto, await weightsOf(plain), await weightsOf(auto), await weightsOf(control));
  const errors: string[] = [];
  const expected = spec.pass(tf.getBackend());
  if (a.pass !== expected) errors.push(`targetPass 'auto' ran the ${a.pass} pass, expected ${expected}`);
  if (!update.ok) errors.push(`update: ${update.detail}`);
  let worst = 0;
  if (a.records.length !== 2 || s.records.length !== 2) errors.push(`expected 2 records each, got ${a.records.length} and ${s.records.length}`);
  a.records.forEach((r, i) => {
    const other = s.records[i];
    if (other === undefined) return;
    const pairs: [string, ArrayLike<number>, ArrayLike<number> | undefined][] = [
      ...Object.entries(r.columns).map(([k, v]) => [k, v, other.columns[k]] as [string, ArrayLike<number>, ArrayLike<number> | undefined]),
      ['target losses', Object.values(r.targetLosses), Object.values(other.targetLosses)],
    ];
    for (const [name, got, expected] of pairs) {
      const e = expected === undefined ? Infinity : relativeError(got, Array.from(expected));
      worst = Math.max(worst, e);
      if (!(e <= PASS_TOLERANCE)) errors.push(`step ${i} ${name}: relative error ${e.toExponential(2)} against the separate pass`);
    }
  });
  for (const c of [plain, control, auto, separate]) dispose(c);
  return { case: spec.name, check, ok: errors.length === 0, detail: errors.length > 0 ? errors.join('; ') : `${a.pass} pass; worst relative error against the separate pass ${worst.toExponential(2)}; ${update.detail}` };
}

export async function guarded<T extends BackendResult | BackendResult[]>(spec: BackendCaseSpec, checks: readonly BackendCheck[], fn: () => Promise<T>): Promise<BackendResult[]> {
  try {
    const r = await fn();
    return Array.isArray(r) ? r : [r as BackendResult];
  } catch (error) {
    const detail = `threw: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
    return checks.map((check) => ({ case: spec.name, check, ok: false, detail }));
  }
}

/**
 * One attributed step on a throwaway model before anything is counted: the first run in a process
 * leaves one scalar alive for good (a cached constant, measured on cpu), which is not a per-run leak;
 * a tensor a run keeps still shows in every case's 'tensors' check.
 */
export async function warmUp(): Promise<void> {
  const c = BACKEND_CASES[0]!.make();
  try {
    const run = attach(c.model, { targets: c.targets });
    await run.step(ids(c.x.shape[0]!), () => minimize(c));
    await run.close();
  } catch {
    // The cases report whatever failed here.
  }
  dispose(c);
}

/** Runs every check of every case (or of the named cases) on the active backend. */
export async function runBackendChecks(only?: readonly string[]): Promise<BackendResult[]> {
  const out: BackendResult[] = [];
  await warmUp();
  for (const spec of BACKEND_CASES.filter((s) => only === undefined || only.includes(s.name))) {
    out.push(...(await guarded(spec, ['scores', 'reads', 'tensors'], () => checkRun(spec))));
    out.push(...(await guarded(spec, ['update-sgd'], () => checkUpdate(spec, () => tf.train.sgd(0.1), 'update-sgd'))));
    out.push(...(await guarded(spec, ['update-adam'], () => checkUpdate(spec, () => tf.train.adam(0.01), 'update-adam'))));
    out.push(...(await guarded(spec, ['fused-sgd'], () => checkFused(spec, () => tf.train.sgd(0.1), 'fused-sgd'))));
    out.push(...(await guarded(spec, ['fused-adam'], () => checkFused(spec, () => tf.train.adam(0.01), 'fused-adam'))));
  }
  return out;
}
