// The in-browser example: train a small CNN on real MNIST digits with 10% flipped labels on webgl, show which digits hurt, drop them and retrain.
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { sqliteWasmSink } from '@inrun/store/browser';

const params = new URLSearchParams(location.search);
const ROWS = Number(params.get('rows') ?? 1000);
const EPOCHS = Number(params.get('epochs') ?? 3);
const FLIP = 0.1;
const SIZE = 28 * 28;

/** What the page found, for people (the DOM) and for the test that drives it (`window.inrunExample`). */
const state = { backend: '', done: false, harmful: [] as { row: number; flipped: boolean }[], accuracy: NaN, retrainedAccuracy: NaN, error: '' };
(window as unknown as { inrunExample: typeof state }).inrunExample = state;
const $ = (id: string) => document.getElementById(id)!;
const status = (text: string) => ($('status').textContent = text);

/** The digits the build step wrote (grey levels as bytes, one label byte per image), class-interleaved. */
async function loadDigits(): Promise<{ images: Uint8Array; labels: Uint8Array }> {
  const [images, labels] = await Promise.all(['digits.bin', 'labels.bin'].map(async (f) => new Uint8Array(await (await fetch(f)).arrayBuffer())));
  return { images: images!, labels: labels! };
}

/** A seeded generator of uniforms in [0, 1), so every visit flips the same labels. */
function uniform(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 4294967296);
}

function model(): tf.Sequential {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: 1 + i });
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 8, kernelSize: 5, strides: 2, activation: 'relu', inputShape: [28, 28, 1], kernelInitializer: init(0) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(1) }),
    ],
  });
  m.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return m;
}

async function accuracy(m: tf.LayersModel, xs: tf.Tensor, labels: Uint8Array): Promise<number> {
  const predicted = tf.tidy(() => (m.predict(xs) as tf.Tensor).argMax(1));
  const classes = Array.from(await predicted.data());
  predicted.dispose();
  return classes.reduce((n, c, i) => n + (c === labels[i] ? 1 : 0), 0) / labels.length;
}

/** A line chart of the running values (SVG, no library): each series scaled to the chart's height. */
function drawChart(series: { color: string; values: number[] }[]): void {
  const svg = $('chart');
  svg.replaceChildren(
    ...series.map(({ color, values }) => {
      const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
      const path = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      path.setAttribute('points', values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * 600},${170 - ((v - lo) / span) * 160}`).join(' '));
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', color);
      path.setAttribute('stroke-width', '2');
      return path;
    }),
  );
}

function drawDigit(images: Uint8Array, row: number, label: number, flipped: boolean): HTMLElement {
  const figure = document.createElement('figure');
  if (flipped) figure.className = 'flipped';
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 28;
  const pixels = new ImageData(28, 28);
  for (let p = 0; p < SIZE; p++) {
    const v = 255 - images[row * SIZE + p]!;
    pixels.data.set([v, v, v, 255], p * 4);
  }
  canvas.getContext('2d')!.putImageData(pixels, 0, 0);
  const caption = document.createElement('figcaption');
  caption.textContent = `label ${label}`;
  figure.append(canvas, caption);
  return figure;
}

async function main(): Promise<void> {
  tf.env().set('SOFTWARE_WEBGL_ENABLED', true); // CI's SwiftShader; real GPUs ignore it
  await tf.setBackend('webgl');
  state.backend = tf.getBackend();
  status(`Backend: ${state.backend}. Loading digits…`);
  const { images, labels: truth } = await loadDigits();
  const valRows = 200;
  const random = uniform(7);
  const labels = truth.slice(0, ROWS);
  const flipped = Array.from({ length: ROWS }, () => random() < FLIP);
  flipped.forEach((f, i) => f && (labels[i] = (truth[i]! + 1 + Math.floor(random() * 9)) % 10));
  const tensors = (from: number, to: number, ls: Uint8Array) => ({
    xs: tf.tidy(() => tf.tensor4d(images.subarray(from * SIZE, to * SIZE), [to - from, 28, 28, 1], 'float32').div(255)),
    ys: tf.tidy(() => tf.oneHot(tf.tensor1d(ls, 'int32'), 10).toFloat()),
  });
  const train = tensors(0, ROWS, labels);
  const valLabels = truth.slice(ROWS, ROWS + valRows);
  const val = tensors(ROWS, ROWS + valRows, valLabels);

  const net = model();
  const ids = Array.from({ length: ROWS }, (_, i) => i);
  // The run's store in the page (the same SQLite schema as in Node: it opens in `inrun report`).
  const store = sqliteWasmSink({ file: 'inrun-digits.sqlite' });
  const examples = ids.map((id) => ({ id, label: String(labels[id]), source: flipped[id] ? 'flipped' : 'clean' }));
  const run = attach(net, { targets: { val }, methods: ['shapley1'], update: 'optimizer', seed: 7, sinks: [store], examples });
  const loss: number[] = [], flippedValue: number[] = [], cleanValue: number[] = [];
  run.records$.subscribe((r) => {
    const v = r.columns['shapley1:val']!;
    let f = 0, nf = 0, c = 0, nc = 0;
    r.ids.forEach((id, i) => (flipped[id as number] ? ((f += v[i]!), nf++) : ((c += v[i]!), nc++)));
    loss.push(r.targetLosses['val']! / valRows);
    flippedValue.push(nf ? f / nf : 0);
    cleanValue.push(nc ? c / nc : 0);
    drawChart([{ color: '#1565c0', values: loss }, { color: '#b00020', values: flippedValue }, { color: '#2e7d32', values: cleanValue }]);
    status(`Training on ${state.backend}: step ${r.step + 1}`);
  });
  await run.fit(train.xs, train.ys, { ids, epochs: EPOCHS, batchSize: 50, shuffle: true, verbose: 0 });
  const scores = await run.close();
  state.accuracy = await accuracy(net, val.xs, valLabels);

  const value = scores.columns['shapley1:val']!;
  const order = Array.from(value.keys()).sort((a, b) => value[a]! - value[b]!);
  const worst = order.slice(0, Math.round(ROWS * FLIP)).map((i) => scores.ids[i] as number);
  state.harmful = worst.map((row) => ({ row, flipped: flipped[row]! }));
  $('harmful').replaceChildren(...worst.slice(0, 30).map((row) => drawDigit(images, row, labels[row]!, flipped[row]!)));
  const caught = state.harmful.filter((h) => h.flipped).length;
  status(`Done on ${state.backend}: validation accuracy ${(state.accuracy * 100).toFixed(1)}%. ${caught} of the ${worst.length} most harmful digits have flipped labels (${Math.round(worst.length * FLIP)} expected by chance).`);
  state.done = true;

  const download = $('download') as HTMLButtonElement;
  download.disabled = false;
  download.onclick = async () => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(await store.blob());
    link.download = 'inrun-digits.sqlite';
    link.click();
    URL.revokeObjectURL(link.href);
  };

  const button = $('retrain') as HTMLButtonElement;
  button.disabled = false;
  button.onclick = async () => {
    button.disabled = true;
    const keep = ids.filter((i) => !worst.includes(i));
    const again = model();
    const [kx, ky] = [tf.gather(train.xs, keep), tf.gather(train.ys, keep)];
    await again.fit(kx, ky, { epochs: EPOCHS, batchSize: 50, shuffle: true, verbose: 0 });
    tf.dispose([kx, ky]);
    state.retrainedAccuracy = await accuracy(again, val.xs, valLabels);
    $('result').textContent = `Without those ${worst.length} digits: validation accuracy ${(state.retrainedAccuracy * 100).toFixed(1)}% (was ${(state.accuracy * 100).toFixed(1)}%).`;
  };
}

main().catch((error: unknown) => {
  state.error = String(error);
  status(`Failed: ${state.error}`);
  console.error(error);
});
