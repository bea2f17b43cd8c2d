// TRAK's kernel maths in double precision: the Gram matrix Phi^T Phi (a sum over training rows, so shards add theirs), the default lambda, the Cholesky solve and the scores.
import { TRAK_LAMBDA_SCALE } from './trak-options.js';
import { InrunError } from '../errors.js';

/**
 * Phi^T Phi of `n` rows of width `d` (row-major), added into `into` (d x d, symmetric, row-major).
 * A sum over rows: shards of the training set each compute theirs and the merge adds them.
 */
export function addGram(phi: Float64Array, n: number, d: number, into: Float64Array): Float64Array {
  const upper = new Float64Array(d * d);
  for (let r = 0; r < n; r++) {
    const row = r * d;
    for (let a = 0; a < d; a++) {
      const va = phi[row + a]!;
      if (va === 0) continue;
      const ka = a * d;
      for (let b = a; b < d; b++) upper[ka + b]! += va * phi[row + b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      into[a * d + b]! += upper[a * d + b]!;
      if (b !== a) into[b * d + a]! += upper[a * d + b]!;
    }
  }
  return into;
}

/** The default ridge term: {@link TRAK_LAMBDA_SCALE} x the mean diagonal of Phi^T Phi (scale-free; chosen on held-out LDS subsets, docs/evaluation.md). */
export function defaultLambda(gram: Float64Array, d: number): number {
  let trace = 0;
  for (let a = 0; a < d; a++) trace += gram[a * d + a]!;
  return (TRAK_LAMBDA_SCALE * trace) / d;
}

/**
 * x_j = (Phi^T Phi + lambda I)^-1 phi_q_j for each of the `q` query rows of `queries` (q x d): q x d.
 * Cholesky; a kernel that is not positive definite names `lambda` (`path`: the checkpoint, for the message).
 */
export function solveQueries(gram: Float64Array, d: number, lambda: number, queries: Float64Array, q: number, path: string): Float64Array {
  const kernel = Float64Array.from(gram);
  for (let a = 0; a < d; a++) kernel[a * d + a]! += lambda;
  const chol = cholesky(kernel, d, path);
  const x = new Float64Array(q * d);
  for (let j = 0; j < q; j++) x.set(choleskySolve(chol, d, queries.subarray(j * d, (j + 1) * d)), j * d);
  return x;
}

/** score(i, j) = phi_i . x_j Q_ii for `n` rows, added into `into` (n x q, row-major) times `scale`. */
export function addScores(phi: Float64Array, weight: Float64Array, n: number, x: Float64Array, q: number, d: number, scale: number, into: Float64Array): void {
  for (let r = 0; r < n; r++) {
    const row = r * d;
    const w = weight[r]! * scale;
    for (let j = 0; j < q; j++) {
      let s = 0;
      const xj = j * d;
      for (let a = 0; a < d; a++) s += phi[row + a]! * x[xj + a]!;
      into[r * q + j]! += s * w;
    }
  }
}

/** Lower Cholesky factor of a symmetric positive definite d x d matrix (row-major). */
function cholesky(a: Float64Array, d: number, path: string): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let t = 0; t < j; t++) s -= l[i * d + t]! * l[j * d + t]!;
      if (i === j) {
        if (!(s > 0)) throw new InrunError(`the TRAK kernel at ${path} is singular: give a positive lambda (or fewer projected dimensions than training rows)`, { field: 'lambda' });
        l[i * d + i] = Math.sqrt(s);
      } else {
        l[i * d + j] = s / l[j * d + j]!;
      }
    }
  }
  return l;
}

function choleskySolve(l: Float64Array, d: number, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i]!;
    for (let t = 0; t < i; t++) s -= l[i * d + t]! * y[t]!;
    y[i] = s / l[i * d + i]!;
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let t = i + 1; t < d; t++) s -= l[t * d + i]! * x[t]!;
    x[i] = s / l[i * d + i]!;
  }
  return x;
}
