// The files a checkpoint keeps of in-run gradient sketches (sketches.json, sketches.f32), read by tracin().
import type { IdIndex } from '../hooks/ids.js';
import type { RunSketch } from '../scoring/attributor.js';

/** The sketches of every example seen so far, as files for a checkpoint folder (see docs/methods.md). */
export async function sketchFiles(sketch: RunSketch, ids: IdIndex): Promise<Record<string, string | Uint8Array>> {
  const { sketches, steps } = await sketch.store.read(ids.size);
  const seen = Array.from(steps.keys()).filter((i) => steps[i]! >= 0);
  const dim = sketch.store.dim;
  const rows = new Float32Array(seen.length * dim);
  seen.forEach((slot, r) => rows.set(sketches.subarray(slot * dim, (slot + 1) * dim), r * dim));
  const meta = {
    size: sketch.size,
    seed: sketch.seed,
    dim,
    layers: sketch.order.map((name, i) => ({ name, pieces: sketch.layers[i]! })),
    ids: seen.map((slot) => ids.ids[slot]!),
    steps: seen.map((slot) => steps[slot]!),
  };
  return { 'sketches.json': JSON.stringify(meta), 'sketches.f32': new Uint8Array(rows.buffer) };
}
