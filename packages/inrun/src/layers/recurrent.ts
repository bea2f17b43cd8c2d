// Recurrent layers (SimpleRNN, GRU, LSTM, Bidirectional over them): each time step's inputs times its gate pre-activation gradients.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { RecordedCall, Recorder } from '../hooks/capture.js';
import { activeCapture, probe } from '../hooks/capture.js';
import type { Piece, WeightLayout } from '../ghost/types.js';
import type { LayerKind, Restore } from './kind.js';
import { outerPiece, overrideCall, variablesOf, withActivation } from './seams.js';

type CellClass = 'SimpleRNN' | 'GRU' | 'LSTM';
type ActivationField = 'activation' | 'recurrentActivation';

/**
 * What one tf.js cell call computes, read from tf.layers' recurrent.js (tfjs 4.22): how many gate
 * blocks its kernels have (columns in this order), and which gate's pre-activation each successive
 * `apply` of its two activations receives (null: not a gate, nothing to probe).
 */
interface CellSpec {
  readonly gates: number;
  readonly activation: readonly (number | null)[];
  readonly recurrentActivation: readonly number[];
}

const SPECS: Readonly<Record<CellClass, CellSpec>> = {
  // h = activation(x K + b + h R).
  SimpleRNN: { gates: 1, activation: [0], recurrentActivation: [] },
  // Columns z, r, h. z and r go through recurrentActivation (in that order), then the candidate
  // activation(x K_h + b_h + (r * h) R_h) through activation.
  GRU: { gates: 3, activation: [2], recurrentActivation: [0, 1] },
  // Columns i, f, c, o. tf.js applies recurrentActivation to i and f, activation to the candidate
  // c, recurrentActivation to o, then activation to the new cell state (not a gate: not probed).
  LSTM: { gates: 4, activation: [2, null], recurrentActivation: [0, 1, 3] },
};

/** The tf.js cell internals the kind reads (private in tf.js' typings). */
interface CellInternals {
  readonly units: number;
  readonly kernel: { readonly shape: number[] };
  readonly bias: object | null;
  readonly dropout: number;
  readonly recurrentDropout: number;
  readonly resetAfter?: boolean;
  getClassName(): string;
}

/** One instrumented cell: its class and sizes, and the first gradient slot its gates use. */
interface Cell {
  readonly type: CellClass;
  readonly internals: CellInternals;
  readonly dIn: number;
  readonly units: number;
  readonly useBias: boolean;
  /**
   * Gate g of this cell records its gradient in slot `offset + g`. A Bidirectional layer records
   * both directions under one key; the slots tell its calls apart (a call's gradients all come from
   * one cell).
   */
  readonly offset: number;
}

function isCellClass(name: string): name is CellClass {
  return name === 'SimpleRNN' || name === 'GRU' || name === 'LSTM';
}

/** The RNN layers a layer runs: itself, or a Bidirectional's forward and backward copies. */
function rnnLayersOf(layer: tf.layers.Layer): tf.layers.Layer[] {
  if (layer.getClassName() !== 'Bidirectional') return [layer];
  const { forwardLayer, backwardLayer } = layer as unknown as { forwardLayer: tf.layers.Layer; backwardLayer: tf.layers.Layer };
  return [forwardLayer, backwardLayer];
}

function cellsOf(layer: tf.layers.Layer): Cell[] {
  let offset = 0;
  return rnnLayersOf(layer).map((rnn) => {
    const type = rnn.getClassName();
    if (!isCellClass(type)) throw new InrunError(`${type} layers are not recurrent layers inrun covers`, { code: 'unsupported_layer' });
    const internals = (rnn as unknown as { cell: CellInternals }).cell;
    const cell: Cell = { type, internals, dIn: internals.kernel.shape[0]!, units: internals.units, useBias: internals.bias !== null, offset };
    offset += SPECS[type].gates;
    return cell;
  });
}

/** Why an RNN layer (not a wrapper) cannot be attributed exactly, or null. */
function rnnUnsupported(rnn: tf.layers.Layer): string | null {
  const type = rnn.getClassName();
  if (!isCellClass(type)) return `it wraps a ${type}; only SimpleRNN, GRU and LSTM are covered`;
  const { cell, stateful } = rnn as unknown as { cell: CellInternals; stateful: boolean };
  if (cell.getClassName() !== `${type}Cell`) return `its cell is a ${cell.getClassName()}, not the ${type}Cell whose computation inrun probes`;
  if (stateful) {
    return "stateful: inrun's target and replay passes would advance the state carried between batches, changing training";
  }
  if (cell.dropout > 0 || cell.recurrentDropout > 0) {
    return "dropout or recurrentDropout > 0: the cell's dropout masks are not recorded, so its inputs are not known exactly";
  }
  // tf.js' GRUCell rejects resetAfter today; a version that accepts it would change where r applies.
  if (cell.resetAfter === true) return 'resetAfter: the reset gate then multiplies h R, not h, and inrun records the latter';
  return null;
}

/** A gate's gradient of one call; a gate off the gradient path has exactly zero gradient. */
function gate(call: RecordedCall, cell: Cell, g: number, n: number): tf.Tensor {
  return call.grads[cell.offset + g] ?? tf.zeros([n, cell.units]);
}

function gates(call: RecordedCall, cell: Cell, from: number, to: number, n: number): tf.Tensor {
  const parts = Array.from({ length: to - from }, (_, k) => gate(call, cell, from + k, n));
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
}

/** Whether a call is one of `cell`'s steps: its gradients sit in the cell's slots. */
function ownedBy(call: RecordedCall, cell: Cell): boolean {
  const slot = call.grads.findIndex((g) => g !== undefined);
  return slot >= cell.offset && slot < cell.offset + SPECS[cell.type].gates;
}

/**
 * A cell's pieces from its calls (one per time step): steps are positions. SimpleRNN and LSTM: one
 * piece, a = [x_t, h_{t-1}] against [kernel; recurrentKernel], b = every gate. GRU: the candidate's
 * recurrent input is r * h_{t-1}, so three pieces: x_t against the kernel (with the bias), h_{t-1}
 * against the z and r columns of the recurrent kernel, r * h_{t-1} against its h columns.
 */
function cellPieces(cell: Cell, calls: readonly RecordedCall[], n: number): Piece[] {
  // A cell whose calls all lacked gradients (an unused Bidirectional direction) has zero gradient;
  // one silent step keeps its pieces' shapes.
  const steps = calls.length > 0 ? calls : [{ inputs: [tf.zeros([n, cell.dIn]), tf.zeros([n, cell.units]), tf.zeros([n, cell.units])], grads: [] }];
  const all = SPECS[cell.type].gates;
  if (cell.type === 'GRU') {
    return [
      outerPiece(steps, n, cell.useBias, (c) => c.inputs[0]!, (c) => gates(c, cell, 0, 3, n)),
      outerPiece(steps, n, false, (c) => c.inputs[1]!, (c) => gates(c, cell, 0, 2, n)),
      outerPiece(steps, n, false, (c) => tf.mul(c.inputs[2]!, c.inputs[1]!), (c) => gate(c, cell, 2, n)),
    ];
  }
  return [outerPiece(steps, n, cell.useBias, (c) => tf.concat([c.inputs[0]!, c.inputs[1]!], 1), (c) => gates(c, cell, 0, all, n))];
}

/** One cell's layout onto its weights `[kernel, recurrentKernel, bias?]`, and how many weights that is. */
function cellLayout({ type, dIn, units: u, useBias }: Cell): WeightLayout & { readonly weights: number } {
  const cols = SPECS[type].gates * u;
  const bias = useBias ? 1 : 0;
  const params = (dIn + u + bias) * cols;
  const weights = 2 + bias;
  if (type === 'GRU') {
    return {
      params,
      weights,
      pieces: [
        { form: 'outer', rows: dIn + bias, cols },
        { form: 'outer', rows: u, cols: 2 * u },
        { form: 'outer', rows: u, cols: u },
      ],
      toWeights: ([input, gates, candidate]) => [input![0]!, tf.concat([gates![0]!, candidate![0]!], 1), ...input!.slice(1)],
      fromWeights: ([kernel, recurrent, ...b]) => [
        [kernel!, ...b],
        [tf.slice(recurrent!, [0, 0], [u, 2 * u])],
        [tf.slice(recurrent!, [0, 2 * u], [u, u])],
      ],
    };
  }
  return {
    params,
    weights,
    pieces: [{ form: 'outer', rows: dIn + u + bias, cols }],
    toWeights: ([piece]) => {
      const [stacked, ...b] = piece!;
      return [tf.slice(stacked!, [0, 0], [dIn, cols]), tf.slice(stacked!, [dIn, 0], [u, cols]), ...b];
    },
    fromWeights: ([kernel, recurrent, ...b]) => [[tf.concat([kernel!, recurrent!], 0), ...b]],
  };
}

/** The layer's layout: its cells' layouts one after the other, as its trainable weights are. */
function layoutOf(cells: readonly Cell[]): WeightLayout {
  const parts = cells.map(cellLayout);
  return {
    params: parts.reduce((s, p) => s + p.params, 0),
    pieces: parts.flatMap((p) => p.pieces),
    toWeights(pieces) {
      let at = 0;
      return parts.flatMap((p) => p.toWeights(pieces.slice(at, (at += p.pieces.length))));
    },
    fromWeights(weights) {
      let at = 0;
      return parts.flatMap((p) => p.fromWeights(weights.slice(at, (at += p.weights))));
    },
  };
}

/**
 * Overrides one cell's `call` (the RNN layer calls it once per time step): probes each gate's
 * pre-activation at the input of the activation that receives it, and records the step's input,
 * previous state and, for GRU, the reset gate r. The cell computes exactly what it did.
 */
function instrumentCell(cell: Cell, key: string, recorder: Recorder): Restore {
  const spec = SPECS[cell.type];
  const fields: ActivationField[] = cell.type === 'SimpleRNN' ? ['activation'] : ['activation', 'recurrentActivation'];
  return overrideCall(cell.internals, (original) => (inputs, kwargs) => {
    const capture = activeCapture();
    if (capture === null) return original(inputs, kwargs);
    const [x, h] = inputs as tf.Tensor[];
    // Set once the step is recorded; the probes read it in the backward pass, long after.
    let call = -1;
    const applied = { activation: 0, recurrentActivation: 0 };
    const reset: tf.Tensor[] = [];
    const probeGate = (field: ActivationField) => (z: tf.Tensor) => {
      const g = spec[field][applied[field]++];
      return g === null || g === undefined ? z : probe(z, (dz) => capture.backward(key, call, dz, cell.offset + g));
    };
    // GRU's r is the second recurrentActivation output; the cell's tidy frees it, so keep a clone.
    const seen = (field: ActivationField) => (y: tf.Tensor) => {
      if (cell.type === 'GRU' && field === 'recurrentActivation' && applied.recurrentActivation === 2) reset.push(tf.keep(y.clone()));
    };
    const run = fields.reduce<() => tf.Tensor | tf.Tensor[]>(
      (body, field) => () => withActivation(cell.internals, field, probeGate(field), body, seen(field)),
      () => original(inputs, kwargs),
    );
    try {
      const out = run();
      if (applied.activation !== spec.activation.length || applied.recurrentActivation !== spec.recurrentActivation.length) {
        throw new InrunError(
          `the ${cell.type} cell applied its activations ${applied.activation} and ${applied.recurrentActivation} times, not the ${spec.activation.length} and ${spec.recurrentActivation.length} inrun probes: this tf.js version computes the cell differently`,
          { code: 'unsupported_layer' },
        );
      }
      call = capture.forward(key, recorder, [x!, h!, ...reset]);
      return out;
    } finally {
      tf.dispose(reset);
    }
  });
}

/**
 * SimpleRNN, GRU and LSTM layers, and Bidirectional wrappers of them (docs/layers.md). The weights
 * are shared over time, so an example's gradient sums, over time steps, the step's inputs times its
 * gate pre-activation gradients: time steps are positions of outer pieces.
 */
export const recurrent: LayerKind = {
  name: 'recurrent',
  classNames: ['SimpleRNN', 'GRU', 'LSTM', 'Bidirectional'],
  unsupported(layer) {
    for (const rnn of rnnLayersOf(layer)) {
      const why = rnnUnsupported(rnn);
      if (why !== null) return why;
      // The layout spans both directions' weights; the wrapper's trainable weights must too.
      if (rnn !== layer && layer.trainable && !rnn.trainable) return 'one direction alone is frozen; freeze the Bidirectional layer or neither';
    }
    return null;
  },
  recorder(layer) {
    const cells = cellsOf(layer);
    return {
      kind: recurrent.name,
      embedding: false,
      weights: variablesOf(layer),
      layout: layoutOf(cells),
      pieces: (calls, n) => cells.flatMap((cell) => cellPieces(cell, calls.filter((c) => ownedBy(c, cell)), n)),
    };
  },
  instrument(layer, key, recorder) {
    const restores = cellsOf(layer).map((cell) => instrumentCell(cell, key, recorder));
    return () => {
      for (const restore of restores.reverse()) restore();
    };
  },
};
