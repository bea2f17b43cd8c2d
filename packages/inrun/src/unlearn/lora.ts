// LoRA adapter layers (LoraDense, LoraConv2D, LoraEmbedding): a frozen layer plus a low-rank residual, serialisable with model.save.
import * as tf from '@tensorflow/tfjs';
import { convAxis } from '../layers/conv.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Kwargs = Parameters<tf.layers.Layer['call']>[1];
type LayerVariable = tf.LayerVariable;

/** What both adapter layers share: rank, scale alpha / rank, the activation after the sum, A's seed. */
interface LoraArgs extends LayerArgs {
  readonly rank: number;
  readonly alpha: number;
  readonly activation?: string;
  readonly useBias?: boolean;
  /** Seed of A's initializer. @defaultValue 1 */
  readonly seed?: number;
}

export interface LoraDenseArgs extends LoraArgs {
  readonly units: number;
}

export interface LoraConv2DArgs extends LoraArgs {
  readonly filters: number;
  readonly kernelSize: number | readonly number[];
  readonly strides?: number | readonly number[];
  readonly padding?: 'valid' | 'same';
  readonly dilationRate?: number | readonly number[];
}

/**
 * Where adapted layers put their residual features during a forward pass (null: nobody listens).
 * The training step of `rfa-lora` reads them to penalise the residual on retained rows.
 */
let residualSink: tf.Tensor[] | null = null;

/**
 * Runs `forward` and returns what it returned with the residual features (pre-activation,
 * `(alpha / rank) x A B`) every adapter layer produced, in call order. The residuals are kept out of
 * any `tf.tidy`; the caller disposes them.
 */
export function withResiduals<T>(forward: () => T): { value: T; residuals: tf.Tensor[] } {
  const outer = residualSink;
  const residuals: tf.Tensor[] = [];
  residualSink = residuals;
  try {
    return { value: forward(), residuals };
  } finally {
    residualSink = outer;
  }
}

function pair(v: number | readonly number[] | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0]!, v[1] ?? v[0]!];
}

/** The shared part: frozen kernel and bias, trainable A and B, the activation, and the residual hand-off. */
abstract class LoraLayer extends tf.layers.Layer {
  readonly rank: number;
  readonly alpha: number;
  readonly activationName: string;
  readonly useBias: boolean;
  readonly seed: number;
  private readonly activationLayer: tf.layers.Layer | null;
  protected kernel: LayerVariable | null = null;
  protected bias: LayerVariable | null = null;
  protected loraA: LayerVariable | null = null;
  protected loraB: LayerVariable | null = null;

  constructor(args: LoraArgs) {
    super(args);
    this.rank = args.rank;
    this.alpha = args.alpha;
    this.activationName = args.activation ?? 'linear';
    this.useBias = args.useBias ?? true;
    this.seed = args.seed ?? 1;
    this.activationLayer = this.activationName === 'linear' ? null : tf.layers.activation({ activation: this.activationName as 'relu' });
    this.supportsMasking = true;
  }

  /** alpha / rank, the residual's scale. */
  get scale(): number {
    return this.alpha / this.rank;
  }

  /** Adds the four weights: kernel and bias frozen (the pretrained layer), A random and B zero (so the residual starts at 0). */
  protected addLora(kernelShape: number[], aShape: number[], bShape: number[], units: number, kernelName = 'kernel'): void {
    this.kernel = this.addWeight(kernelName, kernelShape, 'float32', tf.initializers.zeros(), undefined, false);
    if (this.useBias) this.bias = this.addWeight('bias', [units], 'float32', tf.initializers.zeros(), undefined, false);
    const fanIn = aShape.slice(0, -1).reduce((a, b) => a * b, 1);
    // He-uniform scale on A, as LoRA implementations do; B = 0 makes the start exact anyway.
    const limit = Math.sqrt(6 / fanIn);
    this.loraA = this.addWeight('lora_a', aShape, 'float32', tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed: this.seed }), undefined, true);
    this.loraB = this.addWeight('lora_b', bShape, 'float32', tf.initializers.zeros(), undefined, true);
  }

  /** Writes the pretrained kernel and bias (shared values: training never assigns them). */
  setBase(kernel: tf.Tensor, bias: tf.Tensor | null): void {
    this.kernel!.write(kernel);
    if (this.bias !== null && bias !== null) this.bias.write(bias);
  }

  /** The plain layer's kernel with the adapter folded in (the bias is unchanged). */
  abstract mergedKernel(): tf.Tensor;

  /** The frozen bias, or null. */
  baseBias(): tf.Tensor | null {
    return this.bias === null ? null : this.bias.read();
  }

  /** Base output (pre-activation, with bias) and the residual for input x. */
  protected abstract parts(x: tf.Tensor): { base: tf.Tensor; residual: tf.Tensor };

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const { base, residual } = this.parts(x);
    if (residualSink !== null) residualSink.push(tf.keep(residual));
    const pre = tf.add(base, residual);
    return this.activationLayer === null ? pre : (this.activationLayer.apply(pre) as tf.Tensor);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rank: this.rank, alpha: this.alpha, activation: this.activationName, useBias: this.useBias, seed: this.seed };
  }
}

/**
 * A Dense layer with a LoRA adapter: `act(x W0 + b0 + (alpha / rank) x A B)`. W0 and b0 are frozen;
 * only A `[in, rank]` and B `[rank, units]` train.
 */
export class LoraDense extends LoraLayer {
  static readonly className = 'LoraDense';
  readonly units: number;

  constructor(args: LoraDenseArgs) {
    super(args);
    this.units = args.units;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const dIn = shape[shape.length - 1]!;
    this.addLora([dIn, this.units], [dIn, this.rank], [this.rank, this.units], this.units);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.units];
  }

  protected parts(x: tf.Tensor): { base: tf.Tensor; residual: tf.Tensor } {
    const dIn = x.shape[x.rank - 1]!;
    const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, dIn]) as tf.Tensor2D;
    const back = (t: tf.Tensor) => (x.rank === 2 ? t : tf.reshape(t, [...x.shape.slice(0, -1), this.units]));
    const bias = this.bias === null ? undefined : this.bias.read();
    const base = tf.fused.matMul({ a: flat, b: this.kernel!.read() as tf.Tensor2D, ...(bias === undefined ? {} : { bias }) });
    const residual = tf.mul(tf.matMul(tf.matMul(flat, this.loraA!.read() as tf.Tensor2D), this.loraB!.read() as tf.Tensor2D), this.scale);
    return { base: back(base), residual: back(residual) };
  }

  mergedKernel(): tf.Tensor {
    return tf.tidy(() => tf.add(this.kernel!.read(), tf.mul(tf.matMul(this.loraA!.read() as tf.Tensor2D, this.loraB!.read() as tf.Tensor2D), this.scale)));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}

/**
 * A Conv2D layer (channels last) with a LoRA adapter: the residual is a convolution with `rank`
 * filters A `[kh, kw, cin, rank]` (same strides, padding, dilation) followed by a 1x1 convolution B
 * `[1, 1, rank, filters]`. Seen over patches (docs/layers.md, the conv kind) it is the Dense adapter
 * `patches A B`, and it folds into the kernel exactly: `K0 + (alpha / rank) A B`.
 */
export class LoraConv2D extends LoraLayer {
  static readonly className = 'LoraConv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  readonly dilationRate: [number, number];

  constructor(args: LoraConv2DArgs) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, 1);
    this.strides = pair(args.strides, 1);
    this.padding = args.padding ?? 'valid';
    this.dilationRate = pair(args.dilationRate, 1);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const cin = shape[3]!;
    const [kh, kw] = this.kernelSize;
    this.addLora([kh, kw, cin, this.filters], [kh, kw, cin, this.rank], [1, 1, this.rank, this.filters], this.filters);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const axis = (size: number | null, i: 0 | 1) => (size === null ? null : convAxis(size, this.kernelSize[i], this.strides[i], this.dilationRate[i], this.padding).out);
    return [shape[0]!, axis(shape[1]!, 0), axis(shape[2]!, 1), this.filters];
  }

  protected parts(x: tf.Tensor): { base: tf.Tensor; residual: tf.Tensor } {
    const image = x as tf.Tensor4D;
    const conv = (k: tf.Tensor) => tf.conv2d(image, k as tf.Tensor4D, this.strides, this.padding, 'NHWC', this.dilationRate);
    const raw = conv(this.kernel!.read());
    const base = this.bias === null ? raw : tf.add(raw, this.bias.read());
    const down = conv(this.loraA!.read());
    const residual = tf.mul(tf.conv2d(down, this.loraB!.read() as tf.Tensor4D, 1, 'valid'), this.scale);
    return { base, residual };
  }

  mergedKernel(): tf.Tensor {
    return tf.tidy(() => {
      const a = tf.reshape(this.loraA!.read(), [-1, this.rank]) as tf.Tensor2D;
      const b = tf.reshape(this.loraB!.read(), [this.rank, this.filters]) as tf.Tensor2D;
      return tf.add(this.kernel!.read(), tf.mul(tf.reshape(tf.matMul(a, b), this.kernel!.read().shape), this.scale));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      dilationRate: this.dilationRate,
    };
  }
}

export interface LoraEmbeddingArgs extends LoraArgs {
  readonly inputDim: number;
  readonly outputDim: number;
  readonly inputLength?: number | number[];
}

/**
 * An Embedding layer with a LoRA adapter: row `i` of `E0 + (alpha / rank) A B`, with A
 * `[inputDim, rank]` and B `[rank, outputDim]`; the table E0 is frozen. This lets rfa-lora reach what
 * a text model memorised in its embedding table, which Dense adapters cannot. Training A goes through
 * a gather: on cpu and wasm call `useFastEmbeddingGradient()` first (docs/embedding-gradient.md).
 */
export class LoraEmbedding extends LoraLayer {
  static readonly className = 'LoraEmbedding';
  readonly inputDim: number;
  readonly outputDim: number;
  readonly inputLength: number | number[] | undefined;

  constructor(args: LoraEmbeddingArgs) {
    super({ ...args, activation: 'linear', useBias: false });
    this.inputDim = args.inputDim;
    this.outputDim = args.outputDim;
    this.inputLength = args.inputLength;
    this.supportsMasking = false;
  }

  override build(): void {
    this.addLora([this.inputDim, this.outputDim], [this.inputDim, this.rank], [this.rank, this.outputDim], this.outputDim, 'embeddings');
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape, this.outputDim];
  }

  protected parts(x: tf.Tensor): { base: tf.Tensor; residual: tf.Tensor } {
    const ids = tf.cast(tf.reshape(x, [-1]), 'int32');
    const shape = [...x.shape, this.outputDim];
    const base = tf.reshape(tf.gather(this.kernel!.read(), ids), shape);
    const down = tf.gather(this.loraA!.read(), ids) as tf.Tensor2D;
    const residual = tf.reshape(tf.mul(tf.matMul(down, this.loraB!.read() as tf.Tensor2D), this.scale), shape);
    return { base, residual };
  }

  mergedKernel(): tf.Tensor {
    return tf.tidy(() => tf.add(this.kernel!.read(), tf.mul(tf.matMul(this.loraA!.read() as tf.Tensor2D, this.loraB!.read() as tf.Tensor2D), this.scale)));
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { ...super.getConfig(), inputDim: this.inputDim, outputDim: this.outputDim };
    if (this.inputLength !== undefined) config['inputLength'] = this.inputLength;
    return config;
  }
}

// Registered at import, so `tf.loadLayersModel` finds them in any program that imports inrun.
tf.serialization.registerClass(LoraDense);
tf.serialization.registerClass(LoraConv2D);
tf.serialization.registerClass(LoraEmbedding);
