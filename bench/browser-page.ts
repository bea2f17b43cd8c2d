// The browser half of bench/backends.ts: the same workloads and measurements in a page, on the backend and at the size named in the URL.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { useFastEmbeddingGradient } from 'inrun';
import { backendRow, tabular, text, type BackendRow, type BackendRowSize, type Workload } from './workloads.js';

/** What the driver reads: `benchState` grows row by row (kept if the page times out), `benchDone` is set at the end. */
const out = globalThis as unknown as { benchState: { device: string; rows: BackendRow[]; error?: string }; benchDone?: true };
out.benchState = { device: '', rows: [] };

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const backend = params.get('backend') ?? 'webgl';
  const number = (key: keyof BackendRowSize) => (params.has(key) ? { [key]: Number(params.get(key)) } : {});
  const size: BackendRowSize = { ...number('batch'), ...number('seqLen'), ...number('rounds'), ...number('budgetMs') };
  tf.env().set('SOFTWARE_WEBGL_ENABLED', true); // SwiftShader in CI; a real GPU ignores it
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  useFastEmbeddingGradient();
  let device = backend;
  if (backend === 'webgl') {
    const gl = document.createElement('canvas').getContext('webgl2');
    const ext = gl?.getExtension('WEBGL_debug_renderer_info');
    device = ext ? String(gl!.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : 'unknown renderer';
  } else {
    const adapter = await (navigator as unknown as { gpu: { requestAdapter(): Promise<{ info?: Record<string, string> } | null> } }).gpu.requestAdapter();
    device = adapter?.info ? [adapter.info['vendor'], adapter.info['architecture'], adapter.info['description']].filter(Boolean).join(' ') : 'unknown adapter';
  }
  out.benchState.device = device;
  const workloads: Workload[] = [tabular, text];
  for (const w of workloads) out.benchState.rows.push(await backendRow(w, size));
}

main()
  .catch((error: unknown) => {
    out.benchState.error = String(error);
  })
  .finally(() => {
    out.benchDone = true;
  });
