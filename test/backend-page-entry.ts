// Page side of backend-browser.test.ts: registers tf.js' webgl and webgpu backends and exposes the per-kind checks to the driver.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { runBackendChecks, type BackendPage } from './backend-checks.js';

(globalThis as unknown as BackendPage).inrunBackendChecks = async (backend, only) => {
  // tf.js refuses SwiftShader's WebGL context unless told a software context is fine.
  tf.env().set('SOFTWARE_WEBGL_ENABLED', true);
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend(${JSON.stringify(backend)}) failed`);
  await tf.ready();
  const float32 = backend === 'webgl' ? tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') && !tf.env().getBool('WEBGL_FORCE_F16_TEXTURES') : true;
  const gpuErrors: string[] = [];
  type Device = { addEventListener(type: 'uncapturederror', f: (e: { error: { message: string } }) => void): void };
  (tf.backend() as unknown as { device?: Device }).device?.addEventListener('uncapturederror', (e) => gpuErrors.push(e.error.message));
  return { backend: tf.getBackend(), float32, results: await runBackendChecks(only), gpuErrors };
};
