// The one precision warning at attach: webgl with 16-bit float textures (many phones).
import * as tf from '@tensorflow/tfjs';
import { warn } from '../warn.js';

let warned = false;

/** Whether webgl stores tensors in 16-bit floats here (forced, or float32 render targets missing). */
function halfFloatTextures(): boolean {
  try {
    const env = tf.env();
    return env.getBool('WEBGL_FORCE_F16_TEXTURES') || !env.getBool('WEBGL_RENDER_FLOAT32_ENABLED');
  } catch {
    // The webgl flags are registered with the webgl backend; without them there is nothing to warn about.
    return false;
  }
}

/**
 * Warns once per process when attaching on webgl with 16-bit textures: scores drift by 0.1-7% there
 * (and plain training by about 4%), and integers past 2,048 (ids, indices) are no longer exact
 * (docs/layers.md, "GPU backends").
 */
export function warnOnHalfFloat(): void {
  if (warned || tf.getBackend() !== 'webgl' || !halfFloatTextures()) return;
  warned = true;
  warn(
    'inrun: the webgl backend stores tensors as 16-bit floats here (WEBGL_FORCE_F16_TEXTURES, or no float32 render targets): scores are off by 0.1-7% and ids past 2,048 are not exact; use a device with float32 textures, webgpu, or the cpu/wasm backends for exact scores (docs/layers.md, "GPU backends")',
  );
}
