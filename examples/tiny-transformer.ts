/**
 * Reference model 3, and the template to copy for your own transformer: a tiny causal language model
 * (2 pre-norm blocks, d_model 64, 4 heads, context 64) written with inrun's explicit ops. Every
 * projection is `ops.dense` and the token and position tables are `ops.embedding`, so inrun attributes
 * through all of them; attention and layer norm are plain tf ops (their few parameters, the layer-norm
 * gains and biases, train normally and are not attributed).
 *
 *   npx tsx examples/tiny-transformer.ts [--chunks 1024] [--epochs 1] [--backend wasm]
 *
 * It trains on SpamAssassin text and prints the training chunks that helped and hurt the loss on a
 * held-out probe (spam text) most.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, ops, type FunctionalModel } from 'inrun';
import { loadEmails } from './spam-data.js';

export interface TransformerOptions {
  /** @defaultValue 2048 */
  readonly vocabSize?: number;
  /** @defaultValue 64 */
  readonly context?: number;
  /** @defaultValue 64 */
  readonly dModel?: number;
  /** @defaultValue 4 */
  readonly heads?: number;
  /** @defaultValue 2 */
  readonly layers?: number;
  /** @defaultValue 0.003 (Adam) */
  readonly learningRate?: number;
  /** @defaultValue 1 */
  readonly seed?: number;
}

export interface TinyTransformer extends FunctionalModel {
  readonly variables: tf.Variable[];
  readonly context: number;
  readonly vocabSize: number;
  dispose(): void;
}

/**
 * Builds the model. `predict(ids [B, T])` gives next-token logits `[B, T, vocab]`; `loss(next ids
 * [B, T], logits)` the per-example loss `[B]`, token cross-entropy averaged over positions
 * (position 0 of `next` is the token after `ids[:, 0]`).
 */
export function tinyTransformer(options: TransformerOptions = {}): TinyTransformer {
  const { vocabSize = 2048, context = 64, dModel: d = 64, heads = 4, layers = 2, learningRate = 0.003, seed = 1 } = options;
  let s = seed;
  const variables: tf.Variable[] = [];
  const param = (name: string, init: tf.Tensor) => {
    const v = tf.variable(init, true, `${name}_${Math.random().toString(36).slice(2, 8)}`);
    variables.push(v);
    return v;
  };
  const weight = (name: string, rows: number, cols: number) => param(name, tf.randomNormal([rows, cols], 0, 1 / Math.sqrt(rows), 'float32', s++));
  const zeros = (name: string, n: number) => param(name, tf.zeros([n]));
  const ones = (name: string, n: number) => param(name, tf.ones([n]));

  const tok = param('tok', tf.randomNormal([vocabSize, d], 0, 0.02, 'float32', s++));
  const pos = param('pos', tf.randomNormal([context, d], 0, 0.02, 'float32', s++));
  const blocks = Array.from({ length: layers }, (_, l) => ({
    ln1: [ones(`l${l}.ln1.g`, d), zeros(`l${l}.ln1.b`, d)] as const,
    q: [weight(`l${l}.q`, d, d), zeros(`l${l}.q.b`, d)] as const,
    k: [weight(`l${l}.k`, d, d), zeros(`l${l}.k.b`, d)] as const,
    v: [weight(`l${l}.v`, d, d), zeros(`l${l}.v.b`, d)] as const,
    o: [weight(`l${l}.o`, d, d), zeros(`l${l}.o.b`, d)] as const,
    ln2: [ones(`l${l}.ln2.g`, d), zeros(`l${l}.ln2.b`, d)] as const,
    up: [weight(`l${l}.up`, d, 4 * d), zeros(`l${l}.up.b`, 4 * d)] as const,
    down: [weight(`l${l}.down`, 4 * d, d), zeros(`l${l}.down.b`, d)] as const,
  }));
  const lnF = [ones('lnf.g', d), zeros('lnf.b', d)] as const;
  const head = [weight('head', d, vocabSize), zeros('head.b', vocabSize)] as const;

  const layerNorm = (x: tf.Tensor, [g, b]: readonly [tf.Tensor, tf.Tensor]) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
  };
  const dense = (x: tf.Tensor, [w, b]: readonly [tf.Variable, tf.Variable], name: string) => ops.dense(x, w, b, { name });
  const split = (x: tf.Tensor, batch: number, t: number) => tf.transpose(tf.reshape(x, [batch, t, heads, d / heads]), [0, 2, 1, 3]);

  const predict = (input: tf.Tensor | tf.Tensor[]): tf.Tensor => {
    const ids = input as tf.Tensor;
    const [batch, t] = ids.shape as [number, number];
    // The position "ids" are the same for every example; as an embedding they get per-example gradients too.
    const positions = tf.tile(tf.reshape(tf.range(0, t, 1, 'int32'), [1, t]), [batch, 1]);
    let x = tf.add(ops.embedding(ids, tok, { name: 'tok' }), ops.embedding(positions, pos, { name: 'pos' }));
    // Causal mask: position i sees positions <= i.
    const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9);
    blocks.forEach((blk, l) => {
      const h = layerNorm(x, blk.ln1);
      const [q, k, v] = (['q', 'k', 'v'] as const).map((p) => split(dense(h, blk[p], `l${l}.${p}`), batch, t));
      const scores = tf.add(tf.div(tf.matMul(q!, k!, false, true), Math.sqrt(d / heads)), mask);
      const attended = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v!), [0, 2, 1, 3]), [batch, t, d]);
      x = tf.add(x, dense(attended, blk.o, `l${l}.o`));
      const h2 = layerNorm(x, blk.ln2);
      const up = dense(h2, blk.up, `l${l}.up`);
      // GELU, sigmoid approximation.
      x = tf.add(x, dense(tf.mul(up, tf.sigmoid(tf.mul(up, 1.702))), blk.down, `l${l}.down`));
    });
    return dense(layerNorm(x, lnF), head, 'head');
  };
  const loss = (next: tf.Tensor | tf.Tensor[], logits: tf.Tensor | tf.Tensor[]): tf.Tensor => {
    const y = next as tf.Tensor;
    const lp = tf.logSoftmax(logits as tf.Tensor);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(tf.cast(y, 'int32'), vocabSize), lp), -1), -1));
  };
  return {
    name: 'tiny-transformer',
    predict,
    loss,
    optimizer: tf.train.adam(learningRate),
    variables,
    context,
    vocabSize,
    dispose: () => tf.dispose(variables),
  };
}

export interface LmChunks {
  readonly vocabulary: readonly string[];
  /** `[chunks, context]` input ids and `[chunks, context]` next ids. */
  readonly ids: Int32Array;
  readonly next: Int32Array;
  /** `<email id>#<chunk>` per chunk. */
  readonly chunkIds: readonly string[];
  /** The email's group (spam-1, easy-ham-2, ...) per chunk. */
  readonly groups: readonly string[];
}

/** SpamAssassin text as fixed-length chunks of word ids (0 = padding, 1 = out of vocabulary). */
export function lmChunks(options: { readonly vocabSize?: number; readonly context?: number; readonly maxChunks?: number } = {}): LmChunks {
  const { vocabSize = 2048, context = 64, maxChunks = Infinity } = options;
  const emails = loadEmails();
  const counts = new Map<string, number>();
  for (const e of emails) for (const w of e.tokens) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, vocabSize - 2).map(([w]) => w);
  const vocabulary = ['<pad>', '<oov>', ...words];
  const index = new Map(vocabulary.map((w, i) => [w, i]));
  const ids: number[] = [];
  const next: number[] = [];
  const chunkIds: string[] = [];
  const groups: string[] = [];
  // Interleave emails by a fixed stride so that a prefix of the chunks mixes every group.
  const order = emails.map((_, i) => i).sort((a, b) => ((a * 2654435761) % 4093) - ((b * 2654435761) % 4093) || a - b);
  for (const i of order) {
    const e = emails[i]!;
    const seq = e.tokens.map((w) => index.get(w) ?? 1);
    for (let c = 0; c * context + 1 < seq.length && chunkIds.length < maxChunks; c++) {
      const window = seq.slice(c * context, c * context + context + 1);
      const padded = [...window, ...new Array<number>(context + 1 - window.length).fill(0)];
      ids.push(...padded.slice(0, context));
      next.push(...padded.slice(1));
      chunkIds.push(`${e.id}#${c}`);
      groups.push(e.group);
    }
    if (chunkIds.length >= maxChunks) break;
  }
  return { vocabulary, ids: Int32Array.from(ids), next: Int32Array.from(next), chunkIds, groups };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: { chunks: { type: 'string', default: '1024' }, epochs: { type: 'string', default: '1' }, backend: { type: 'string', default: 'wasm' } },
  });
  await tf.setBackend(args.backend);
  const n = Number(args.chunks);
  const data = lmChunks({ maxChunks: n + 64 });
  const model = tinyTransformer();
  const T = model.context;
  const pick = (chunks: readonly number[]) => {
    const take = (src: Int32Array) => {
      const out = new Int32Array(chunks.length * T);
      chunks.forEach((c, k) => out.set(src.subarray(c * T, (c + 1) * T), k * T));
      return tf.tensor2d(out, [chunks.length, T], 'int32');
    };
    return { xs: take(data.ids), ys: take(data.next) };
  };
  // The probe: the spam text among 64 held-out chunks. Which training chunks taught the model to predict it?
  const probe = pick([...Array(64).keys()].map((i) => n + i).filter((i) => data.groups[i]!.startsWith('spam')));
  const run = attach(model, { targets: { spam: probe }, methods: ['shapley1', 'tracin_self'] });
  console.log(`tiny transformer: ${model.variables.reduce((s, v) => s + v.size, 0).toLocaleString('en-US')} parameters; covered: ${run.info.layers.covered.length} layers`);
  const batch = 16;
  for (let epoch = 0; epoch < Number(args.epochs); epoch++) {
    let total = 0;
    for (let start = 0; start + batch <= n; start += batch) {
      const { xs, ys } = pick([...Array(batch).keys()].map((i) => start + i));
      // One optimizer step per run.step, on the rows whose ids are given, in row order.
      const cost = await run.step(data.chunkIds.slice(start, start + batch), () =>
        model.optimizer.minimize(() => tf.mean(model.loss(ys, model.predict(xs))) as tf.Scalar, true),
      );
      total += cost?.dataSync()[0] ?? 0;
      tf.dispose([xs, ys, ...(cost ? [cost] : [])]);
    }
    console.log(`epoch ${epoch + 1}: mean training loss ${(total / Math.floor(n / batch)).toFixed(3)}`);
  }
  const scores = await run.close();
  const value = scores.columns['shapley1:spam']!;
  const order = scores.ids.map((_, i) => i).sort((a, b) => value[b]! - value[a]!);
  const group = new Map(data.chunkIds.map((id, i) => [id, data.groups[i]!]));
  const show = (i: number) => `  ${value[i]!.toExponential(2).padStart(10)}  ${String(scores.ids[i]).padEnd(22)} ${group.get(scores.ids[i] as string)}`;
  console.log(`\nChunks that lowered the loss on ${probe.xs.shape[0]} held-out spam chunks most:`);
  order.slice(0, 5).forEach((i) => console.log(show(i)));
  // Only negative values raised the loss; a short run may have fewer than five.
  const raised = order.filter((i) => value[i]! < 0).slice(-5).reverse();
  console.log(raised.length === 0 ? '\nNo chunk raised it.' : '\n... and raised it most:');
  raised.forEach((i) => console.log(show(i)));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await main();
