/**
 * Step time on tf.js' GPU backends in Node, side by side with cpu: plain training vs first-order
 * attribution (shapley1 + tracin_self) vs second order, as ratios, and the kernels per plain and
 * attributed step (tf.profile). Each backend runs in its own process (tf.js keeps one global engine;
 * the Vulkan loader and its driver list are found at process start). webgpu runs through the npm package
 * `webgpu` (Dawn for Node) on the Vulkan driver named by VK_ICD_FILENAMES: Chromium's SwiftShader
 * (software) by default, NVIDIA's on a GPU machine (bench/gpu.sh). Writes the "backends" section of
 * docs/benchmarks.md, or the "gpu" section with `--section gpu`.
 *
 * The same workloads (tabular, text) also run in headless Chromium on webgl and webgpu (`--browser`).
 *
 *   npx tsx bench/backends.ts [--backends cpu,webgpu] [--browser webgl,webgpu] [--chromium-gpu] [--models tabular,cnn,text] [--section backends|gpu] [--out docs/benchmarks.md]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine, writeSection } from './report.js';
import type { BackendRow } from './workloads.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM = '/usr/bin/chromium';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,webgpu' },
    models: { type: 'string', default: 'tabular,cnn,text' },
    section: { type: 'string', default: 'backends' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
    /** Backends in headless Chromium (SwiftShader unless `--chromium-gpu`). */
    browser: { type: 'string', default: 'webgl,webgpu' },
    'chromium-gpu': { type: 'boolean', default: false },
    child: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});

/** A row of the table: where it ran, and what `backendRow` measured there. */
interface Row extends BackendRow {
  readonly backend: string;
  readonly device: string;
}

/** One backend's rows, in this (child) process. */
async function measure(backend: string): Promise<Row[]> {
  let device = 'CPU';
  if (backend === 'webgpu') {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    const adapter = await gpu.requestAdapter();
    if (adapter === null) throw new Error(`no WebGPU adapter (VK_ICD_FILENAMES=${process.env['VK_ICD_FILENAMES'] ?? ''})`);
    const info = (adapter as unknown as { info?: { vendor?: string; architecture?: string; device?: string; description?: string } }).info;
    device = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s !== undefined && s !== '').join(' ') || 'unknown adapter';
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (backend === 'tensorflow') {
    // tfjs-node(-gpu) registers the 'tensorflow' backend (libtensorflow, CUDA where the -gpu build finds it).
    const gpuBuild = process.env['INRUN_TFJS_NODE'] ?? '@tensorflow/tfjs-node-gpu';
    await import(gpuBuild);
    device = gpuBuild;
  }
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  const { useFastEmbeddingGradient } = await import('inrun');
  useFastEmbeddingGradient();
  const w = await import('./workloads.js');
  const workloads = { tabular: w.tabular, cnn: w.cnn, text: w.text, recurrent: w.recurrent, layernorm: w.layerNormMlp };
  const rows: Row[] = [];
  for (const name of args.models.split(',')) rows.push({ backend, device, ...(await w.backendRow(workloads[name as keyof typeof workloads], Number(args.rounds))) });
  return rows;
}

if (args.child !== undefined) {
  const rows = await measure(args.child);
  process.stdout.write(`\n@@ROWS@@${JSON.stringify(rows)}\n`);
  process.exit(0);
}

const rows: Row[] = [];
for (const backend of args.backends.split(',')) {
  const env = { ...process.env };
  if (backend === 'webgpu' && env['VK_ICD_FILENAMES'] === undefined) {
    if (!existsSync(SWIFTSHADER_ICD)) {
      console.warn(`bench/backends.ts: ${SWIFTSHADER_ICD} is missing (apt-get install -y chromium): webgpu skipped`);
      continue;
    }
    env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
    // Chromium ships the Vulkan loader (libvulkan.so.1) beside its driver; Debian's libvulkan1 may be absent.
    env['LD_LIBRARY_PATH'] = [dirname(SWIFTSHADER_ICD), env['LD_LIBRARY_PATH']].filter(Boolean).join(':');
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', backend, '--models', args.models, '--rounds', args.rounds], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('@@ROWS@@'));
  if (line === undefined) {
    rows.push({ backend, device: '?', model: '(all)', error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0]!.slice(0, 160) });
    continue;
  }
  rows.push(...(JSON.parse(line.slice('@@ROWS@@'.length)) as Row[]));
}

rows.push(...(await browserRows()));

/** The same workloads in headless Chromium (Debian's, never a downloaded one), one page per backend. */
async function browserRows(): Promise<Row[]> {
  const backends = args.browser.split(',').filter((b) => b !== '');
  if (backends.length === 0) return [];
  if (!existsSync(CHROMIUM)) {
    console.warn(`bench/backends.ts: ${CHROMIUM} is missing (apt-get install -y chromium): browser rows skipped`);
    return [];
  }
  const { build } = await import('esbuild');
  const { chromium } = await import('playwright-core');
  const { serve, stubNode, packagesBySource } = await import('../examples/browser/serve.js');
  const dir = mkdtempSync(join(tmpdir(), 'inrun-bench-page-'));
  const here = dirname(fileURLToPath(import.meta.url));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="app.js"></script>');
  await build({ entryPoints: [join(here, 'browser-page.ts')], outfile: join(dir, 'app.js'), bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'error', plugins: [stubNode, packagesBySource],
    // The examples' "run me directly" guards read process.argv at module level.
    define: { 'process.argv': '[]', 'process.env': '{}' }, });
  const { server, url } = await serve(dir);
  const out: Row[] = [];
  try {
    for (const backend of backends) {
      // SwiftShader flags (docs/benchmarks.md); with --chromium-gpu, the machine's GPU through ANGLE/Vulkan (untested here: no GPU).
      const gpu = args['chromium-gpu'] ? ['--enable-gpu', '--ignore-gpu-blocklist', '--use-angle=vulkan', '--enable-features=Vulkan,WebGPU', '--enable-unsafe-webgpu'] : backend === 'webgl' ? ['--use-angle=swiftshader', '--enable-unsafe-swiftshader'] : ['--enable-unsafe-webgpu', '--enable-features=Vulkan,WebGPU', '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader'];
      const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--no-first-run', ...gpu] });
      try {
        const page = await browser.newPage();
        page.on('pageerror', (e) => console.warn(`bench page (${backend}): ${String(e)}`));
        // 'commit': the page's long synchronous work must not count against navigation's own timeout.
        await page.goto(`${url}?backend=${backend}&rounds=${args.rounds}`, { waitUntil: 'commit' });
        await page.waitForFunction(() => (globalThis as { benchDone?: unknown }).benchDone !== undefined, null, { timeout: 600_000, polling: 500 });
        const done = await page.evaluate(() => (globalThis as unknown as { benchDone: { backend: string; device: string; rows: Omit<Row, 'backend' | 'device'>[]; error?: string } }).benchDone);
        if (done.error !== undefined) out.push({ backend: `${backend} (Chromium)`, device: '?', model: '(all)', error: done.error.slice(0, 160) });
        else out.push(...done.rows.map((r) => ({ ...r, backend: `${backend} (Chromium)`, device: done.device })));
      } finally {
        await browser.close();
      }
    }
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const fmt = (x: number | undefined, d = 2) => (x === undefined ? '' : x.toFixed(d));
const table = [
  '| backend | device | model (B 64, K 4) | plain ms/step | first order / plain | first, target every 16 / plain | second order / plain | kernels plain | kernels first order |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => (r.error !== undefined ? `| ${r.backend} | ${r.device} | ${r.model} | fails: ${r.error.replaceAll('|', '/')} | | | | | |` : `| ${r.backend} | ${r.device} | ${r.model} | ${fmt(r.plainMs, 1)} | ${fmt(r.ratio?.first)}x | ${fmt(r.ratio?.every16)}x | ${fmt(r.ratio?.second)}x | ${r.kernels?.plain ?? ''} | ${r.kernels?.first ?? ''} |`)),
].join('\n');
const title = args.section === 'gpu' ? '## GPU: webgpu and tfjs-node-gpu on a real GPU' : '## Backends: webgpu in Node (Dawn), webgl and webgpu in Chromium, beside cpu';
const note =
  args.section === 'gpu'
    ? 'Measured by `bench/gpu.sh` on the device named in the table.'
    : 'webgpu and webgl run on SwiftShader (Chromium\'s software GPU): **its absolute times mean nothing**; the ratios and the kernel counts (what a real GPU pays in dispatches) are what carry over. On a real GPU, `bench/gpu.sh` writes the "GPU" section.';
writeSection(args.out, args.section, `${title}\n\n\`bench/backends.ts\`, measured ${machine()}. Ratios are medians of ${args.rounds} interleaved rounds, side by side in one process per backend. ${note}\n\n${table}\n`);
console.log(table);
