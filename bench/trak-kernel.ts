/**
 * TRAK's kernel (posthoc/trak-kernel.ts): Gram sum, Cholesky solve and scores, against the row-at-a-time
 * loops it replaced (the reference below, also the correctness check), and beside tf.js float32 products
 * on the chosen backend; one process, the same random rows, seconds and ratios. `--rounds` repeats the
 * kernel and the reference in turn, so that a shared machine's load drift falls on both.
 *
 *   npx tsx bench/trak-kernel.ts [--rows 1000] [--dim 2560] [--queries 500] [--rounds 1] [--backend wasm] [--skip-reference]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { addGram, addScores, defaultLambda, solveQueries } from 'inrun/internal';
import { uniform } from '../eval/metrics.js';
import { machine } from './report.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000' },
    dim: { type: 'string', default: '2560' },
    queries: { type: 'string', default: '500' },
    backend: { type: 'string', default: 'wasm' },
    'skip-reference': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
  },
});
const N = Number(args.rows);
const D = Number(args.dim);
const Q = Number(args.queries);
await tf.setBackend(args.backend);

const random = uniform(11);
const phi = Float64Array.from({ length: N * D }, () => random() - 0.5);
const weight = Float64Array.from({ length: N }, () => random());
const queries = Float64Array.from({ length: Q * D }, () => random() - 0.5);

const time = <T>(f: () => T): [T, number] => {
  const t = performance.now();
  const v = f();
  return [v, (performance.now() - t) / 1000];
};
const timeAsync = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const v = await f();
  return [v, (performance.now() - t) / 1000];
};
const maxRel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / scale;
};

interface Pass {
  readonly gram: Float64Array;
  readonly scores: Float64Array;
  /** Seconds: Gram, solve, scores. */
  readonly seconds: [number, number, number];
}

/** The kernel as shipped (double precision). */
function kernel(): Pass {
  const [gram, tGram] = time(() => addGram(phi, N, D, new Float64Array(D * D)));
  const [x, tSolve] = time(() => solveQueries(gram, D, defaultLambda(gram, D), queries, Q, 'bench'));
  const [scores, tScores] = time(() => {
    const out = new Float64Array(N * Q);
    addScores(phi, weight, N, x, Q, D, 1, out);
    return out;
  });
  return { gram, scores, seconds: [tGram, tSolve, tScores] };
}

/** The loops the kernel replaced: the Gram row by row (the d x d sum walked once per row), one solve per query, one pass over the solutions per row. */
function reference(): Pass {
  const [gram, tGram] = time(() => {
    const out = new Float64Array(D * D);
    for (let r = 0; r < N; r++) {
      for (let a = 0; a < D; a++) {
        const va = phi[r * D + a]!;
        for (let b = a; b < D; b++) out[a * D + b]! += va * phi[r * D + b]!;
      }
    }
    for (let a = 0; a < D; a++) for (let b = a + 1; b < D; b++) out[b * D + a] = out[a * D + b]!;
    return out;
  });
  const lambda = defaultLambda(gram, D);
  const [x, tSolve] = time(() => {
    const k = Float64Array.from(gram);
    for (let a = 0; a < D; a++) k[a * D + a]! += lambda;
    const l = new Float64Array(D * D);
    for (let i = 0; i < D; i++) {
      for (let j = 0; j <= i; j++) {
        let s = k[i * D + j]!;
        for (let t = 0; t < j; t++) s -= l[i * D + t]! * l[j * D + t]!;
        l[i * D + j] = i === j ? Math.sqrt(s) : s / l[j * D + j]!;
      }
    }
    const out = new Float64Array(Q * D);
    for (let j = 0; j < Q; j++) {
      const y = new Float64Array(D);
      for (let i = 0; i < D; i++) {
        let s = queries[j * D + i]!;
        for (let t = 0; t < i; t++) s -= l[i * D + t]! * y[t]!;
        y[i] = s / l[i * D + i]!;
      }
      for (let i = D - 1; i >= 0; i--) {
        let s = y[i]!;
        for (let t = i + 1; t < D; t++) s -= l[t * D + i]! * out[j * D + t]!;
        out[j * D + i] = s / l[i * D + i]!;
      }
    }
    return out;
  });
  const [scores, tScores] = time(() => {
    const out = new Float64Array(N * Q);
    for (let r = 0; r < N; r++) {
      for (let j = 0; j < Q; j++) {
        let s = 0;
        for (let a = 0; a < D; a++) s += phi[r * D + a]! * x[j * D + a]!;
        out[r * Q + j]! += s * weight[r]!;
      }
    }
    return out;
  });
  return { gram, scores, seconds: [tGram, tSolve, tScores] };
}

const sum = (passes: readonly Pass[], i: number) => passes.reduce((s, p) => s + p.seconds[i]!, 0);
const line = (name: string, passes: readonly Pass[]) =>
  `${name}: gram ${sum(passes, 0).toFixed(2)} s, solve ${sum(passes, 1).toFixed(2)} s, scores ${sum(passes, 2).toFixed(2)} s, total ${[0, 1, 2].reduce((s, i) => s + sum(passes, i), 0).toFixed(2)} s (${passes.length} round${passes.length > 1 ? 's' : ''})`;
const shipped: Pass[] = [];
const replaced: Pass[] = [];
for (let round = 0; round < Number(args.rounds); round++) {
  shipped.push(kernel());
  if (!args['skip-reference']) replaced.push(reference());
}
console.log(line('kernel', shipped));
if (replaced.length > 0) {
  console.log(line('reference (row at a time)', replaced));
  console.log(`max rel diff vs reference: gram ${maxRel(shipped[0]!.gram, replaced[0]!.gram).toExponential(1)}, scores ${maxRel(shipped[0]!.scores, replaced[0]!.scores).toExponential(1)}`);
  const ratio = (i: number) => (sum(replaced, i) / sum(shipped, i)).toFixed(2);
  const total = (ps: readonly Pass[]) => [0, 1, 2].reduce((s, i) => s + sum(ps, i), 0);
  console.log(`ratio reference / kernel: gram ${ratio(0)}x, solve ${ratio(1)}x, scores ${ratio(2)}x, total ${(total(replaced) / total(shipped)).toFixed(2)}x`);
}

// tf.js float32 products (one matMul per block of rows, async reads), for comparison: not used by the kernel (float32; docs/evaluation.md).
const gram = shipped[0]!.gram;
const x = solveQueries(gram, D, defaultLambda(gram, D), queries, Q, 'bench');
const [tfGram, tTfGram] = await timeAsync(async () => {
  const out = new Float64Array(D * D);
  const rows = Math.max(1, Math.floor((1 << 22) / D));
  for (let start = 0; start < N; start += rows) {
    const m = Math.min(rows, N - start);
    const p = tf.tidy(() => {
      const b = tf.tensor2d(Float32Array.from(phi.subarray(start * D, (start + m) * D)), [m, D]);
      return tf.matMul(b, b, true, false);
    });
    const v = await p.data();
    p.dispose();
    for (let i = 0; i < D * D; i++) out[i]! += v[i]!;
  }
  return out;
});
const [tfScores, tTfScores] = await timeAsync(async () => {
  const s = tf.tidy(() => tf.mul(tf.matMul(tf.tensor2d(Float32Array.from(phi), [N, D]), tf.tensor2d(Float32Array.from(x), [Q, D]), false, true), tf.tensor2d(Float32Array.from(weight), [N, 1])));
  const v = await s.data();
  s.dispose();
  return v;
});
console.log(`tf.js float32 (${tf.getBackend()}), one round: gram ${tTfGram.toFixed(2)} s (max rel diff ${maxRel(tfGram, gram).toExponential(1)}), scores ${tTfScores.toFixed(2)} s (max rel diff ${maxRel(tfScores, shipped[0]!.scores).toExponential(1)})`);
console.log(`${N} rows x ${D} dims, ${Q} queries; ${machine()}`);
