import * as tf from '@tensorflow/tfjs';
import { beforeAll } from 'vitest';
import { embeddingModel, mlp } from './cases.js';
import { describeEveryMethod } from './kind-checks.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describeEveryMethod('Dense MLP (fused and unfused activations)', () => mlp(['relu', 'tanh', 'softmax'], true), 'dense');
describeEveryMethod('Embedding with repeated ids', () => embeddingModel(), 'embedding');
