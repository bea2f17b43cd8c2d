// Convolutions (Conv2D, Conv1D, DepthwiseConv2D): input patches times pre-activation output gradients.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { Recorder } from '../hooks/capture.js';
import type { WeightLayout } from '../ghost/types.js';
import { fusedAffine, kernelGradient } from './fusing.js';
import type { LayerFuse, LayerKind } from './kind.js';
import { outerPiece, recordInputProbePreActivation, variablesOf, type Activation } from './seams.js';

/** The fields of tf.js' `BaseConv`/`Conv` classes inrun reads (private in its typings). */
interface ConvInternals {
  readonly rank: number;
  /** Conv1D and Conv2D: `[...kernelSize, cin, filters]`. */
  readonly kernel: { readonly shape: number[]; read(): tf.Tensor };
  /** DepthwiseConv2D: `[kh, kw, cin, depthMultiplier]`. */
  readonly depthwiseKernel: { readonly shape: number[] };
  readonly bias: { readonly shape: number[]; read(): tf.Tensor } | null;
  readonly activation: Activation;
  readonly kernelSize: number[];
  readonly strides: number[];
  readonly padding: string;
  readonly dataFormat: string;
  readonly dilationRate: number | number[];
}

/**
 * A 1D or 2D convolution's geometry, as a 2D one: a Conv1D is a Conv2D one row high (tf.js'
 * `conv1d` runs as that `conv2d` too). Pairs are (rows, columns).
 */
export interface ConvGeometry {
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly padding: 'valid' | 'same';
}

/** Padding before and after one spatial axis and its output length, exactly as TensorFlow's `getPadAndOutInfo`. */
export function convAxis(size: number, kernel: number, stride: number, dilation: number, padding: 'valid' | 'same') {
  const span = (kernel - 1) * dilation + 1;
  if (padding === 'valid') return { before: 0, after: 0, out: Math.ceil((size - span + 1) / stride) };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + span - size, 0);
  const before = Math.floor(total / 2);
  return { before, after: total - before, out };
}

/**
 * The patches of images `x [n, H, W, cin]` a convolution multiplies by its kernel: `[n, P, kh*kw*cin]`
 * with P = output positions in row-major order, and the last axis in the kernel's (kh, kw, cin) order,
 * so `patches @ kernel.reshape([kh*kw*cin, cout])` is the convolution. One strided slice of the padded
 * input per kernel offset: the same elements a conv reads, without an im2col kernel tf.js lacks.
 * Call inside `tf.tidy`.
 */
export function convPatches(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor3D {
  const [n, h, w, c] = x.shape;
  const rows = convAxis(h, g.kernel[0], g.strides[0], g.dilation[0], g.padding);
  const cols = convAxis(w, g.kernel[1], g.strides[1], g.dilation[1], g.padding);
  const padded =
    rows.before + rows.after + cols.before + cols.after === 0
      ? x
      : tf.pad(x, [
          [0, 0],
          [rows.before, rows.after],
          [cols.before, cols.after],
          [0, 0],
        ]);
  const slices: tf.Tensor[] = [];
  for (let i = 0; i < g.kernel[0]; i++) {
    for (let j = 0; j < g.kernel[1]; j++) {
      const top = i * g.dilation[0];
      const left = j * g.dilation[1];
      slices.push(
        tf.stridedSlice(
          padded,
          [0, top, left, 0],
          [n, top + (rows.out - 1) * g.strides[0] + 1, left + (cols.out - 1) * g.strides[1] + 1, c],
          [1, g.strides[0], g.strides[1], 1],
        ),
      );
    }
  }
  // [n, outH, outW, kh*kw, cin] -> rows of (kh, kw, cin), as the kernel's reshape lays them out.
  return tf.reshape(tf.stack(slices, 3), [n, rows.out * cols.out, g.kernel[0] * g.kernel[1] * c]);
}

/** Kernel `[...kernelSize, cin, cout]` and optional bias `[cout]`: one outer piece over the flattened kernel. */
function convLayout(kernelShape: readonly number[], hasBias: boolean): WeightLayout {
  const cout = kernelShape[kernelShape.length - 1]!;
  const dIn = kernelShape.reduce((a, b) => a * b, 1) / cout;
  const rows = dIn + (hasBias ? 1 : 0);
  return {
    params: rows * cout,
    pieces: [{ form: 'outer', rows, cols: cout }],
    toWeights: ([piece]) => {
      const [kernel, ...bias] = piece!;
      return [tf.reshape(kernel!, [...kernelShape]), ...bias];
    },
    fromWeights: ([kernel, ...bias]) => [[tf.reshape(kernel!, [dIn, cout]), ...bias]],
  };
}

/** The geometry of a tf.layers Conv1D, Conv2D or DepthwiseConv2D as it declares it (channelsLast, 'valid' or 'same'). */
function geometryOf(layer: ConvInternals): ConvGeometry {
  const dilation = typeof layer.dilationRate === 'number' ? [layer.dilationRate] : layer.dilationRate;
  const pair = (v: readonly number[]): [number, number] => (layer.rank === 1 ? [1, v[0]!] : [v[0]!, v[1] ?? v[0]!]);
  return {
    kernel: pair(layer.kernelSize),
    strides: pair(layer.strides),
    dilation: pair(dilation),
    padding: layer.padding === 'same' ? 'same' : 'valid',
  };
}

/**
 * The recorder of a convolution: patches of the recorded input and pre-activation output gradients,
 * one position per output pixel. Inputs are recorded whole (not as patches, kh*kw times larger) and
 * cut into patches only when the pieces are built.
 */
function convRecorder(geometry: ConvGeometry, kernelShape: readonly number[], hasBias: boolean, weights: readonly tf.Variable[]): Recorder {
  const cout = kernelShape[kernelShape.length - 1]!;
  return {
    kind: conv.name,
    embedding: false,
    weights,
    layout: convLayout(kernelShape, hasBias),
    pieces: (calls, n) =>
      [
        outerPiece(
          calls,
          n,
          hasBias,
          (c) => {
            const x = c.inputs[0]!;
            // A Conv1D's [n, L, cin] is an image one row high.
            const image = (x.rank === 3 ? tf.expandDims(x, 1) : x) as tf.Tensor4D;
            const a = convPatches(image, geometry);
            const b = c.grads[0]!;
            if (b.size !== n * a.shape[1] * cout) {
              throw new InrunError(`conv patches of ${a.shape[1]} positions do not match an output gradient of shape [${b.shape.join(', ')}]`, {
                code: 'internal',
              });
            }
            return a;
          },
          (c) => tf.reshape(c.grads[0]!, [n, -1, cout]),
        ),
      ],
  };
}

/**
 * Depthwise kernel `[kh, kw, cin, mult]` and optional bias `[cin * mult]` as one flat piece, in that
 * order: a depthwise kernel acts on each input channel alone, so its gradient is not one outer product
 * (the off-diagonal channel blocks are not parameters), and its few parameters are cheap to materialise.
 */
function depthwiseLayout(kernelShape: readonly number[], hasBias: boolean): WeightLayout {
  const kernelSize = kernelShape.reduce((a, b) => a * b, 1);
  const biasSize = kernelShape[2]! * kernelShape[3]!;
  const params = kernelSize + (hasBias ? biasSize : 0);
  return {
    params,
    pieces: [{ form: 'flat', rows: params, cols: 1 }],
    toWeights: ([piece]) => {
      const values = piece![0]!;
      const kernel = tf.reshape(tf.slice(values, 0, kernelSize), [...kernelShape]);
      return hasBias ? [kernel, tf.slice(values, kernelSize, biasSize)] : [kernel];
    },
    fromWeights: ([kernel, ...bias]) => [[tf.concat([tf.reshape(kernel!, [-1]), ...bias], 0)]],
  };
}

/**
 * The recorder of a DepthwiseConv2D: per-example gradients materialised from patches and output
 * gradients, channel by channel in one batched matMul (`[n * cin]` batches of `[P, kh*kw]^T [P, mult]`).
 */
function depthwiseRecorder(geometry: ConvGeometry, kernelShape: readonly number[], hasBias: boolean, weights: readonly tf.Variable[]): Recorder {
  const [kh, kw, cin, mult] = kernelShape as [number, number, number, number];
  const k = kh * kw;
  return {
    kind: conv.name,
    embedding: false,
    weights,
    layout: depthwiseLayout(kernelShape, hasBias),
    pieces: (calls, n) => {
      // A layer called several times per pass: an example's gradient is the sum over its calls.
      const perCall = calls.map((c) => {
        const patches = convPatches(c.inputs[0] as tf.Tensor4D, geometry);
        const p = patches.shape[1];
        const dy = c.grads[0]!;
        const a = tf.reshape(tf.transpose(tf.reshape(patches, [n, p, k, cin]), [0, 3, 1, 2]), [n * cin, p, k]);
        const b = tf.reshape(tf.transpose(tf.reshape(dy, [n, p, cin, mult]), [0, 2, 1, 3]), [n * cin, p, mult]);
        // [n, cin, k, mult] -> [n, (kh, kw), cin, mult]: the kernel's own order.
        const kernel = tf.reshape(tf.transpose(tf.reshape(tf.matMul(a, b, true, false), [n, cin, k, mult]), [0, 2, 1, 3]), [n, -1]);
        // Output channel c * mult + m, as tf.js' depthwiseConv2d orders them (and the bias).
        return hasBias ? tf.concat([kernel, tf.reshape(tf.sum(dy, [1, 2]), [n, cin * mult])], 1) : kernel;
      });
      return [{ form: 'flat', g: (perCall.length === 1 ? perCall[0]! : tf.addN(perCall)) as tf.Tensor2D }];
    },
  };
}

/**
 * Conv2D and Conv1D in a fused step: the ops tf.layers runs while training, over every row (Conv2D:
 * `fused.conv2d` with a fusable activation, unfused by tf.js under a gradient into conv2d, add and the
 * activation, or linear and the activation as its own op; Conv1D: `conv1d`, which runs as a conv2d one
 * row high, the bias add, then the activation). The gradient is tf.js' registered Conv2D gradient:
 * the input gradient over every row, the kernel gradient from the training rows; the bias gradient is
 * the sum of the training rows' output gradient, as the add's gradient sums it.
 */
const convFuse: LayerFuse = {
  unfusable(layer) {
    if (layer.getClassName() === 'DepthwiseConv2D') return 'DepthwiseConv2D: no fused call built yet (its recorder materialises per-example gradients)';
    // Measured (test/backend-webgpu-node.test.ts): webgpu's conv2d rounds a row's output differently with
    // the batch's row count, so appending the target rows would change the training rows' update.
    if (tf.getBackend() === 'webgpu') return `${layer.getClassName()} on webgpu: its conv shaders round each row differently with the batch size`;
    return null;
  },
  call(layer, x, rows) {
    const internals = layer as unknown as ConvInternals;
    const g = geometryOf(internals);
    const attrs = { strides: [...g.strides], pad: g.padding, dataFormat: 'NHWC', dilations: [...g.dilation] };
    // A Conv1D as the conv2d its op runs: [n, L, c] as [n, 1, L, c], kernel [k, cin, cout] as [1, k, cin, cout].
    const as4d = (t: tf.Tensor) => (t.rank === 3 ? tf.reshape(t, [t.shape[0]!, 1, t.shape[1]!, t.shape[2]!]) : t);
    return fusedAffine(
      x,
      rows,
      // tf.layers fuses relu, linear and elu into Conv2D's op only; a Conv1D applies its activation apart.
      { kernel: internals.kernel, bias: internals.bias, activation: internals.activation, fusesActivation: internals.rank === 2 },
      (a, w, b, act) => {
        if (internals.rank === 2) {
          return tf.fused.conv2d({ x: a as tf.Tensor4D, filter: w as tf.Tensor4D, strides: [...g.strides], pad: g.padding, dataFormat: 'NHWC', dilations: [...g.dilation], ...(b === undefined ? {} : { bias: b }), activation: act as 'linear' });
        }
        const y = tf.conv1d(a as tf.Tensor3D, w as tf.Tensor3D, g.strides[1], g.padding, 'NWC', g.dilation[1]);
        return b === undefined ? y : tf.add(y, tf.reshape(b, [1, 1, b.shape[0]!]));
      },
      ({ dz, a, aTrain, dzTrain }, w, b) => {
        const w4 = w.rank === 3 ? tf.reshape(w, [1, ...w.shape]) : w;
        const dw = tf.reshape(kernelGradient('Conv2D', 'filter', as4d(dzTrain), [as4d(aTrain), w4], attrs), w.shape);
        const dx = rows.inputGrad ? tf.reshape(kernelGradient('Conv2D', 'x', as4d(dz), [as4d(a), w4], attrs), a.shape) : null;
        const axes = dz.shape.slice(0, -1).map((_, i) => i);
        return { dx, dws: b === undefined ? [dw] : [dw, tf.sum(dzTrain, axes)] };
      },
    );
  },
};

export const conv: LayerKind = {
  name: 'conv',
  classNames: ['Conv2D', 'Conv1D', 'DepthwiseConv2D'],
  unsupported(layer) {
    const internals = layer as unknown as ConvInternals;
    if (internals.dataFormat === 'channelsFirst') {
      return "dataFormat 'channelsFirst' is not implemented by the conv kind (channelsLast only)";
    }
    if (internals.padding !== 'valid' && internals.padding !== 'same') {
      // tf.js 4.22's conv1dWithBias and conv2dWithBiasActivation throw NotImplementedError for 'causal';
      // its DepthwiseConv2D would silently pad 'causal' as 'valid'.
      return `padding '${internals.padding}' is not implemented by tf.js' convolutions`;
    }
    if (layer.getClassName() !== 'DepthwiseConv2D' && geometryOf(internals).dilation.some((d) => d !== 1)) {
      // The patches handle dilation (test/layers-conv.test.ts checks them against tf.conv2d), but tf.js'
      // Conv2D gradients assert dilations of 1: such a layer cannot train, nor be checked end to end.
      return 'dilation rates above 1: tf.js 4.22 has no gradient for dilated convolutions, so the layer cannot train';
    }
    return null;
  },
  recorder(layer) {
    const internals = layer as unknown as ConvInternals;
    const hasBias = internals.bias !== null;
    if (layer.getClassName() === 'DepthwiseConv2D') {
      // tf.js' DepthwiseConv2D.call passes no dilation to its op (nor does its output shape use it).
      const geometry: ConvGeometry = { ...geometryOf(internals), dilation: [1, 1] };
      return depthwiseRecorder(geometry, internals.depthwiseKernel.shape, hasBias, variablesOf(layer));
    }
    return convRecorder(geometryOf(internals), internals.kernel.shape, hasBias, variablesOf(layer));
  },
  instrument: recordInputProbePreActivation,
  fuse: convFuse,
};
