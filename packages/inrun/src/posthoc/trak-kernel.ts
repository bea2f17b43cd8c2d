// TRAK's kernel maths in double precision, blocked for the cache: the Gram matrix Phi^T Phi (a sum over training rows, so shards add theirs), the default lambda, the Cholesky solve and the scores.
// Plain JS on purpose: tf.js products are float32, and the sharded kernel must equal the in-process one to 1e-6 (docs/evaluation.md, "TRAK's kernel").
import { TRAK_LAMBDA_SCALE } from './trak-options.js';
import { InrunError } from '../errors.js';

/** Training rows per block of {@link addGram}: their columns (d x GRAM_ROWS doubles) stay in cache while every (a, b) pair reads them. */
const GRAM_ROWS = 64;
/** Training rows per block of {@link addScores}: each query's solution is read once per block, not once per row. */
const SCORE_ROWS = 32;

/**
 * Phi^T Phi of `n` rows of width `d` (row-major), added into `into` (d x d, symmetric, row-major), in
 * double precision. A sum over rows: shards of the training set each compute theirs and the merge adds
 * them. Blocked: each block of {@link GRAM_ROWS} rows is copied column-major, so every entry is a
 * contiguous dot product over the block and the d x d sum is walked once per block, not once per row.
 */
export function addGram(phi: Float64Array, n: number, d: number, into: Float64Array): Float64Array {
  const cols = new Float64Array(d * GRAM_ROWS);
  for (let start = 0; start < n; start += GRAM_ROWS) {
    const m = Math.min(GRAM_ROWS, n - start);
    for (let r = 0; r < m; r++) {
      const row = (start + r) * d;
      for (let a = 0; a < d; a++) cols[a * m + r] = phi[row + a]!;
    }
    for (let a = 0; a < d; a++) {
      const ca = a * m;
      const ka = a * d;
      let b = a;
      // Two entries per pass share the reads of column a.
      for (; b + 1 < d; b += 2) {
        const cb = b * m;
        const cc = cb + m;
        let s0 = 0;
        let s1 = 0;
        for (let r = 0; r < m; r++) {
          const v = cols[ca + r]!;
          s0 += v * cols[cb + r]!;
          s1 += v * cols[cc + r]!;
        }
        into[ka + b]! += s0;
        into[ka + b + 1]! += s1;
      }
      if (b < d) {
        const cb = b * m;
        let s0 = 0;
        for (let r = 0; r < m; r++) s0 += cols[ca + r]! * cols[cb + r]!;
        into[ka + b]! += s0;
      }
    }
  }
  // Only the upper triangle was added to: `into` was symmetric, so its lower triangle is the mirror.
  for (let a = 0; a < d; a++) {
    for (let b = a + 1; b < d; b++) into[b * d + a] = into[a * d + b]!;
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
  // All q right-hand sides at once, laid out d x q so that the inner loops run over contiguous queries.
  const b = new Float64Array(d * q);
  for (let j = 0; j < q; j++) for (let a = 0; a < d; a++) b[a * q + j] = queries[j * d + a]!;
  const solved = choleskySolveAll(chol, d, b, q);
  const x = new Float64Array(q * d);
  for (let j = 0; j < q; j++) for (let a = 0; a < d; a++) x[j * d + a] = solved[a * q + j]!;
  return x;
}

/**
 * score(i, j) = phi_i . x_j Q_ii for `n` rows, added into `into` (n x q, row-major) times `scale`, in
 * double precision. Blocked: each query's solution x_j is read once per {@link SCORE_ROWS} rows.
 */
export function addScores(phi: Float64Array, weight: Float64Array, n: number, x: Float64Array, q: number, d: number, scale: number, into: Float64Array): void {
  for (let start = 0; start < n; start += SCORE_ROWS) {
    const end = Math.min(n, start + SCORE_ROWS);
    for (let j = 0; j < q; j++) {
      const xj = j * d;
      for (let r = start; r < end; r++) {
        const row = r * d;
        let s = 0;
        for (let a = 0; a < d; a++) s += phi[row + a]! * x[xj + a]!;
        into[r * q + j]! += s * weight[r]! * scale;
      }
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

/** Solves L L^T X = B for the d x q right-hand sides `b` (row-major d x q, overwritten): forward, then back substitution. */
function choleskySolveAll(l: Float64Array, d: number, b: Float64Array, q: number): Float64Array {
  for (let i = 0; i < d; i++) {
    const yi = i * q;
    for (let t = 0; t < i; t++) {
      const lit = l[i * d + t]!;
      if (lit === 0) continue;
      const yt = t * q;
      for (let j = 0; j < q; j++) b[yi + j]! -= lit * b[yt + j]!;
    }
    const lii = l[i * d + i]!;
    for (let j = 0; j < q; j++) b[yi + j]! /= lii;
  }
  for (let i = d - 1; i >= 0; i--) {
    const xi = i * q;
    for (let t = i + 1; t < d; t++) {
      const lti = l[t * d + i]!;
      if (lti === 0) continue;
      const xt = t * q;
      for (let j = 0; j < q; j++) b[xi + j]! -= lti * b[xt + j]!;
    }
    const lii = l[i * d + i]!;
    for (let j = 0; j < q; j++) b[xi + j]! /= lii;
  }
  return b;
}
