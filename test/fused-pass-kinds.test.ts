// The fused pass per layer kind on the cpu backend (tf.js' stock Embedding gradient): update, separate-pass scores, brute force.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe } from 'vitest';
import { describeFusedKinds } from './fused-pass-cases.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('fused pass on cpu', () => describeFusedKinds());
