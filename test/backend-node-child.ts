// Child process of backend-webgpu-node.test.ts and webgpu-forward-first.test.ts: tf.js' webgpu backend on Dawn (npm `webgpu`), every per-kind check, results as JSON on stdout.
// A child because the Vulkan loader reads VK_ICD_FILENAMES and LD_LIBRARY_PATH when the process starts.
import * as tf from '@tensorflow/tfjs';
import { create, globals } from 'webgpu';
import { runBackendChecks } from './backend-checks.js';

Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
// The backend registers itself on import only where navigator.gpu exists: import it after.
await import('@tensorflow/tfjs-backend-webgpu');
const only = process.env['INRUN_BACKEND_CASES']?.split(',');
if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
await tf.ready();
// INRUN_SUITE=forward-first: test/forward-first-checks.ts (with the tf.js int32-transpose control).
const results =
  process.env['INRUN_SUITE'] === 'forward-first'
    ? await (await import('./forward-first-checks.js')).runForwardFirstChecks({ ...(only === undefined ? {} : { cases: only }), intTranspose: true })
    : await runBackendChecks(only);
process.stdout.write(`\nINRUN_RESULTS ${JSON.stringify({ backend: tf.getBackend(), results })}\n`);
// Dawn keeps the event loop alive with its device; the results are out.
process.exit(0);
