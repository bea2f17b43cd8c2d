// Brute-force pieces shared by the TRAK tests: the dense Kronecker projection of the sketches, and an explicit matrix inverse.
import * as tf from '@tensorflow/tfjs';

/**
 * The dense projection the sketches apply: per Dense layer i, kron(Pa, Pb) on the gradient [kernel; bias]
 * flattened row-major, Pa and Pb drawn from seeds `base + 2i` and `base + 2i + 1` (ghost/sketch.ts);
 * block-diagonal over layers.
 */
export async function denseProjection(model: tf.LayersModel, dim: number, base: number): Promise<number[][]> {
  const blocks: number[][][] = [];
  const dense = model.layers.filter((l) => l.trainableWeights.length > 0);
  for (const [i, layer] of dense.entries()) {
    const [dIn, dOut] = layer.trainableWeights[0]!.shape as [number, number];
    const side = (d: number, s: number) => (d <= dim ? tf.eye(d) : tf.randomNormal([d, dim], 0, 1 / Math.sqrt(dim), 'float32', s));
    const pa = (await side(dIn + 1, base + 2 * i).array()) as number[][];
    const pb = (await side(dOut, base + 1 + 2 * i).array()) as number[][];
    const [ka, kb] = [pa[0]!.length, pb[0]!.length];
    const block: number[][] = [];
    for (let r = 0; r <= dIn; r++) {
      for (let c = 0; c < dOut; c++) {
        const row = new Array<number>(ka * kb);
        for (let a = 0; a < ka; a++) for (let b = 0; b < kb; b++) row[a * kb + b] = pa[r]![a]! * pb[c]![b]!;
        block.push(row);
      }
    }
    blocks.push(block);
  }
  const width = blocks.reduce((s, b) => s + b[0]!.length, 0);
  const out: number[][] = [];
  let at = 0;
  for (const b of blocks) {
    for (const row of b) out.push([...new Array<number>(at).fill(0), ...row, ...new Array<number>(width - at - row.length).fill(0)]);
    at += b[0]!.length;
  }
  return out;
}

/** Gauss-Jordan inverse with partial pivoting. */
export function invert(m: number[][]): number[][] {
  const d = m.length;
  const a = m.map((row, i) => [...row, ...Array.from({ length: d }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    [a[c], a[p]] = [a[p]!, a[c]!];
    const pivot = a[c]![c]!;
    for (let j = 0; j < 2 * d; j++) a[c]![j]! /= pivot;
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r]![c]!;
      for (let j = 0; j < 2 * d; j++) a[r]![j]! -= f * a[c]![j]!;
    }
  }
  return a.map((row) => row.slice(d));
}
