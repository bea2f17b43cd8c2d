// Named targets: validation, grouping into passes, and the target pass that records their rows.
import * as tf from '@tensorflow/tfjs';
import { InrunError, preview } from '../errors.js';
import type { TargetLayout } from '../ghost/rows.js';
import { Capture, probeSeed, withCapture } from '../hooks/capture.js';
import type { ModelAdapter } from '../model/adapter.js';
import { checkLabels } from './labels.js';
import type { TargetData } from '../types.js';

/**
 * Consecutive targets with the same input and label shapes, concatenated so that one forward and
 * one backward pass serve all of them. Rows stay separable: each target row's output gradient
 * depends on that row's loss only (inference mode, no cross-example layers).
 */
export interface TargetGroup {
  /** Index of the group's first target in the run's target order. */
  readonly first: number;
  readonly xs: readonly tf.Tensor[];
  readonly ys: readonly tf.Tensor[];
  readonly rows: number;
  readonly layout: TargetLayout;
}

export interface TargetSet {
  readonly names: readonly string[];
  readonly rows: readonly number[];
  readonly groups: readonly TargetGroup[];
}

interface Checked {
  readonly name: string;
  readonly xs: tf.Tensor[];
  readonly ys: tf.Tensor[];
  readonly rows: number;
}

function checkTensors(field: string, value: unknown, count: number | null): tf.Tensor[] {
  const items = Array.isArray(value) ? (value as unknown[]) : [value];
  if (items.length === 0 || !items.every((t) => t instanceof tf.Tensor)) {
    throw new InrunError(`expected a tensor or an array of tensors, got ${preview(value)}`, { field });
  }
  const tensors = items as tf.Tensor[];
  if (tensors.some((t) => t.isDisposed)) throw new InrunError('the tensor is disposed', { field, code: 'invalid_input' });
  if (count !== null && tensors.length !== count) {
    throw new InrunError(`expected ${count} tensor(s), one per model ${field.endsWith('xs') ? 'input' : 'output'}, got ${tensors.length}`, {
      field,
      code: 'shape_mismatch',
    });
  }
  return tensors;
}

function checkTarget(name: string, data: TargetData, model: ModelAdapter): Checked {
  if (name.length === 0 || name.length > 100 || name.includes(':')) {
    throw new InrunError(`expected a name of 1 to 100 characters without ':', got ${preview(name)}`, { field: 'targets' });
  }
  return { name, ...checkLabelled(`targets.${name}`, data, model) };
}

/**
 * Checks labelled rows against the model (tensors, row counts, input shapes, one dry forward and
 * loss pass); errors name `field` and the part at fault (`field.xs`, `field.ys[1]`, ...).
 */
export function checkLabelled(field: string, data: TargetData, model: ModelAdapter): { xs: tf.Tensor[]; ys: tf.Tensor[]; rows: number } {
  if (data === null || typeof data !== 'object') throw new InrunError(`expected { xs, ys }, got ${preview(data)}`, { field });
  const xs = checkTensors(`${field}.xs`, data.xs, model.inputShapes?.length ?? null);
  const ys = checkTensors(`${field}.ys`, data.ys, model.outputs);
  const rows = xs[0]!.shape[0] ?? 0;
  if (xs[0]!.rank === 0 || rows === 0) throw new InrunError('expected at least one row', { field: `${field}.xs`, code: 'invalid_input' });
  [...xs, ...ys].forEach((t, i) => {
    if (t.shape[0] !== rows) {
      const which = i < xs.length ? `xs[${i}]` : `ys[${i - xs.length}]`;
      throw new InrunError(`expected ${rows} rows like xs[0], got ${t.shape[0]} rows`, { field: `${field}.${which}`, code: 'shape_mismatch' });
    }
  });
  model.inputShapes?.forEach((expected, i) => {
    const got = xs[i]!.shape.slice(1);
    const ok = got.length === expected.length && expected.every((d, j) => d === null || d === got[j]);
    if (!ok) {
      throw new InrunError(
        `expected rows of shape [${expected.map((d) => d ?? '*').join(', ')}] (the model's input), got [${got.join(', ')}]`,
        { field: `${field}.xs${xs.length > 1 ? `[${i}]` : ''}`, code: 'shape_mismatch' },
      );
    }
  });
  if (model.layersModel !== null) checkLabels(model.layersModel, ys, `${field}.ys`);
  // One host read at attach (never during training): a NaN in a target would turn every score NaN.
  [...xs, ...ys].forEach((t, i) => {
    if (t.dtype !== 'float32') return;
    const finite = tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0] === 1);
    if (!finite) {
      const which = i < xs.length ? `xs${xs.length > 1 ? `[${i}]` : ''}` : `ys${ys.length > 1 ? `[${i - xs.length}]` : ''}`;
      throw new InrunError('holds NaN or Infinity; rows must be finite', { field: `${field}.${which}`, code: 'invalid_input' });
    }
  });
  // Dry run: the model's own forward and loss on the target, so that a label of the wrong shape or
  // type fails now, not in the middle of training.
  tf.tidy(() => {
    let losses: tf.Tensor;
    try {
      losses = model.perExampleLoss(ys, model.forward(xs));
    } catch (cause) {
      throw new InrunError(`the model's forward pass and loss failed on this target: ${(cause as Error).message}`, {
        field,
        cause,
        code: 'shape_mismatch',
      });
    }
    if (losses.shape[0] !== rows) {
      throw new InrunError(`the loss gave ${losses.shape[0]} values for ${rows} rows; labels must have one row per example`, {
        field: `${field}.ys`,
        code: 'shape_mismatch',
      });
    }
  });
  return { xs, ys, rows };
}

function sameShapes(a: Checked, b: Checked): boolean {
  const same = (x: tf.Tensor[], y: tf.Tensor[]) =>
    x.every((t, i) => t.dtype === y[i]!.dtype && t.shape.slice(1).join() === y[i]!.shape.slice(1).join());
  return same(a.xs, b.xs) && same(a.ys, b.ys);
}

function makeGroup(first: number, members: Checked[]): TargetGroup {
  return tf.tidy(() => {
    const rows = members.reduce((n, m) => n + m.rows, 0);
    const concat = (pick: (m: Checked) => tf.Tensor[]) =>
      pick(members[0]!).map((_, i) => tf.keep(members.length === 1 ? pick(members[0]!)[i]!.clone() : tf.concat(members.map((m) => pick(m)[i]!), 0)));
    const membership = new Float32Array(rows * members.length);
    const ranges: { start: number; rows: number }[] = [];
    let start = 0;
    members.forEach((m, j) => {
      for (let r = start; r < start + m.rows; r++) membership[r * members.length + j] = 1;
      ranges.push({ start, rows: m.rows });
      start += m.rows;
    });
    return {
      first,
      xs: concat((m) => m.xs),
      ys: concat((m) => m.ys),
      rows,
      layout: { membership: tf.keep(tf.tensor2d(membership, [rows, members.length])), ranges },
    };
  });
}

/** Validates the named targets (shapes, dry run of the loss) and groups them for target passes. */
export function prepareTargets(targets: Readonly<Record<string, TargetData>> | undefined, model: ModelAdapter): TargetSet | null {
  if (targets === undefined) return null;
  if (targets === null || typeof targets !== 'object' || Array.isArray(targets)) {
    throw new InrunError(`expected an object of named targets like { val: { xs, ys } }, got ${preview(targets)}`, {
      field: 'targets',
    });
  }
  const checked = Object.entries(targets).map(([name, data]) => checkTarget(name, data, model));
  if (checked.length === 0) return null;
  const groups: TargetGroup[] = [];
  let start = 0;
  for (let i = 1; i <= checked.length; i++) {
    if (i === checked.length || !sameShapes(checked[start]!, checked[i]!)) {
      groups.push(makeGroup(start, checked.slice(start, i)));
      start = i;
    }
  }
  return { names: checked.map((c) => c.name), rows: checked.map((c) => c.rows), groups };
}

/**
 * The target pass of one step: a forward and a backward pass of the group's summed target loss at
 * the current weights, recording every instrumented layer's `a` and `b`. It differentiates with
 * respect to the probes' shared seed only, so no weight gradient is computed and the optimizer's
 * update is untouched. Returns the capture (caller disposes) and the summed loss per target.
 */
export function targetPass(group: TargetGroup, model: ModelAdapter): { capture: Capture; losses: tf.Tensor1D } {
  const capture = new Capture();
  let losses: tf.Tensor1D | null = null;
  try {
    withCapture(capture, () => {
      const { value, grads } = tf.engine().gradients(
        () => {
          const perRow = model.perExampleLoss(group.ys, model.forward(group.xs));
          losses = tf.keep(tf.reshape(tf.matMul(tf.reshape(perRow, [1, group.rows]), group.layout.membership), [-1]) as tf.Tensor1D);
          return tf.sum(perRow);
        },
        [probeSeed()],
        undefined,
        true,
      );
      value.dispose();
      tf.dispose(grads);
    });
  } catch (error) {
    capture.dispose();
    throw error;
  }
  return { capture, losses: losses! };
}

/** One group's target pass, with the group it ran on. */
export interface GroupPass {
  readonly group: TargetGroup;
  readonly pass: ReturnType<typeof targetPass>;
}

/** Target passes over `groups`, in order; if one throws, those already made are freed. */
export function targetPasses(groups: readonly TargetGroup[], model: ModelAdapter): GroupPass[] {
  const passes: GroupPass[] = [];
  try {
    for (const group of groups) passes.push({ group, pass: targetPass(group, model) });
  } catch (error) {
    disposePasses(passes);
    throw error;
  }
  return passes;
}

export function disposePasses(passes: readonly GroupPass[]): void {
  for (const { pass } of passes) {
    pass.capture.dispose();
    pass.losses.dispose();
  }
}

export function disposeTargets(set: TargetSet | null): void {
  for (const g of set?.groups ?? []) {
    tf.dispose([...g.xs, ...g.ys, g.layout.membership]);
  }
}

/** One target per row: the identity membership, kept (free it with `membership.dispose()`). */
export function perRowLayout(rows: number): TargetLayout {
  return { membership: tf.keep(tf.eye(rows)) as tf.Tensor2D, ranges: Array.from({ length: rows }, (_, i) => ({ start: i, rows: 1 })) };
}

/**
 * A group over rows the caller owns (not cloned, not disposed here): one target per row, or all rows
 * as one target. TracIn's queries and training batches go through the same passes as targets.
 * The membership matrix is kept: free it with `group.layout.membership.dispose()`.
 */
export function rowGroup(xs: readonly tf.Tensor[], ys: readonly tf.Tensor[], perRow: boolean): TargetGroup {
  const rows = xs[0]!.shape[0]!;
  return {
    first: 0,
    xs,
    ys,
    rows,
    layout: perRow ? perRowLayout(rows) : { membership: tf.keep(tf.ones([rows, 1])) as tf.Tensor2D, ranges: [{ start: 0, rows }] },
  };
}
