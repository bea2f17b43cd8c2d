// The browser half of bench/backends.ts: the same workloads and measurements in a page, on the backend named in the URL (webgl or webgpu).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { useFastEmbeddingGradient } from 'inrun';
import { backendRow, tabular, text, type BackendRow, type Workload } from './workloads.js';

const out = globalThis as unknown as { benchDone?: { backend: string; device: string; rows: BackendRow[]; error?: string } };

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const backend = params.get('backend') ?? 'webgl';
  const rounds = Number(params.get('rounds') ?? 3);
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
  const rows: BackendRow[] = [];
  const workloads: Workload[] = [tabular, text];
  for (const w of workloads) rows.push(await backendRow(w, rounds));
  out.benchDone = { backend, device, rows };
}

main().catch((error: unknown) => {
  out.benchDone = { backend: '', device: '', rows: [], error: String(error) };
});
