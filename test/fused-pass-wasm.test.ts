// The fused pass per layer kind on the wasm backend (inrun's scatterND Embedding gradient, the only one wasm has).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useFastEmbeddingGradient } from 'inrun';
import { afterAll, beforeAll, describe } from 'vitest';
import { describeFusedKinds } from './fused-pass-cases.js';

let restore: () => void = () => undefined;
beforeAll(async () => {
  await tf.setBackend('wasm');
  restore = useFastEmbeddingGradient();
});
afterAll(() => restore());

// Conv models cannot train on wasm at all (tf.js 4.22 registers no Conv2DBackpropFilter there), fused or not.
describe('fused pass on wasm', () => describeFusedKinds((name) => !name.startsWith('Conv')));
