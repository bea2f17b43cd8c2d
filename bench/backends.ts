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
 * A software GPU (SwiftShader: Node webgpu without VK_ICD_FILENAMES, Chromium without `--chromium-gpu`)
 * runs a smaller size (`--soft-batch`, `--soft-seq`, `--soft-budget`), and cpu runs that size too, so
 * each ratio has a cpu row of the same shape (cpu at B 64: the step-time section). Every backend has `--timeout` seconds; rows finished by
 * then are kept, and the rest is a "timed out" row (a loaded machine cannot hang `npm run bench`).
 *
 *   npx tsx bench/backends.ts [--backends cpu,webgpu] [--browser webgl,webgpu] [--chromium-gpu] [--models tabular,text,cnn] [--section backends|gpu] [--out docs/benchmarks.md] [--timeout 300]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine, writeSection } from './report.js';
import type { BackendRow, BackendRowSize } from './workloads.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM = '/usr/bin/chromium';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,webgpu' },
    models: { type: 'string', default: 'tabular,text' },
    section: { type: 'string', default: 'backends' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
    /** Backends in headless Chromium (SwiftShader unless `--chromium-gpu`). */
    browser: { type: 'string', default: 'webgl,webgpu' },
    'chromium-gpu': { type: 'boolean', default: false },
    child: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    /** Sizes for software GPUs (and the cpu rows beside them). */
    'soft-batch': { type: 'string', default: '16' },
    'soft-seq': { type: 'string', default: '32' },
    'soft-budget': { type: 'string', default: '150' },
    /** The child's sizes: 'full', 'soft', or both ('full,soft'). */
    sizes: { type: 'string', default: 'full' },
    /** Seconds per backend (one Node process or one Chromium page). */
    timeout: { type: 'string', default: '300' },
    /** A sentence about the machine for the section (e.g. that it was loaded). */
    note: { type: 'string', default: '' },
  },
});

const FULL: BackendRowSize = { rounds: Number(args.rounds) };
const SOFT: BackendRowSize = { batch: Number(args['soft-batch']), seqLen: Number(args['soft-seq']), rounds: Number(args.rounds), budgetMs: Number(args['soft-budget']) };
const timeoutMs = Number(args.timeout) * 1000;
/**
 * Which size a backend runs: software GPUs the small one, and cpu too when a software GPU is measured
 * (its B 64 numbers are in the step-time section); real GPUs the full one.
 */
function sizesOf(backend: string): string {
  const soft = backend === 'webgpu' && process.env['VK_ICD_FILENAMES'] === undefined;
  if (soft) return 'soft';
  const anySoft = args.backends.split(',').includes('webgpu') || (!args['chromium-gpu'] && args.browser !== '');
  return backend === 'cpu' && anySoft && args.section !== 'gpu' ? 'soft' : 'full';
}

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
  for (const size of args.sizes.split(',')) {
    for (const name of args.models.split(',')) {
      const row: Row = { backend, device, ...(await w.backendRow(workloads[name as keyof typeof workloads], size === 'soft' ? SOFT : FULL)) };
      // One line per row as it finishes: a parent that times the child out keeps what it finished.
      process.stdout.write(`\n@@ROW@@${JSON.stringify(row)}\n`);
      rows.push(row);
    }
  }
  return rows;
}

if (args.child !== undefined) {
  await measure(args.child);
  process.exit(0);
}

const rows: Row[] = [];
for (const backend of args.backends.split(',').filter((b) => b !== '')) {
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
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', backend, '--models', args.models, '--rounds', args.rounds, '--sizes', sizesOf(backend), '--soft-batch', args['soft-batch'], '--soft-seq', args['soft-seq'], '--soft-budget', args['soft-budget']], { env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const done = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('@@ROW@@')).map((l) => JSON.parse(l.slice('@@ROW@@'.length)) as Row);
  rows.push(...done);
  const timedOut = r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
  if (timedOut) rows.push({ backend, device: done[0]?.device ?? '?', model: '(the rest)', error: `timed out after ${args.timeout} s (--timeout)` });
  else if (r.status !== 0) rows.push({ backend, device: done[0]?.device ?? '?', model: '(all)', error: ((r.stderr ?? '') || `exit ${r.status}`).trim().split('\n').slice(-1)[0]!.slice(0, 160) });
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
        const size = args['chromium-gpu'] ? FULL : SOFT;
        const query = new URLSearchParams(Object.entries(size).map(([k, v]): [string, string] => [k, String(v)]));
        await page.goto(`${url}?backend=${backend}&${query.toString()}`, { waitUntil: 'commit' });
        const finished = await page.waitForFunction(() => (globalThis as { benchDone?: unknown }).benchDone !== undefined, null, { timeout: timeoutMs, polling: 500 }).then(
          () => true,
          () => false,
        );
        // The page publishes each row as it finishes (benchState): a timed-out page still gives those.
        const done = await page.evaluate(() => (globalThis as unknown as { benchState: { device: string; rows: Omit<Row, 'backend' | 'device'>[]; error?: string } }).benchState);
        const name = `${backend} (Chromium)`;
        out.push(...done.rows.map((r) => ({ ...r, backend: name, device: done.device })));
        if (!finished) out.push({ backend: name, device: done.device, model: '(the rest)', error: `timed out after ${args.timeout} s (--timeout)` });
        else if (done.error !== undefined) out.push({ backend: name, device: done.device || '?', model: '(the rest)', error: done.error.slice(0, 160) });
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
  '| backend | device | model (K 4) | size | plain ms/step | first order / plain | first, target every 16 / plain | second order / plain | kernels plain | kernels first order |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => (r.error !== undefined ? `| ${r.backend} | ${r.device} | ${r.model} | ${r.size ?? ''} | fails: ${r.error.replaceAll('|', '/')} | | | | | |` : `| ${r.backend} | ${r.device} | ${r.model} | ${r.size ?? ''} | ${fmt(r.plainMs, 1)} | ${fmt(r.ratio?.first)}x | ${fmt(r.ratio?.every16)}x | ${fmt(r.ratio?.second)}x | ${r.kernels?.plain ?? ''} | ${r.kernels?.first ?? ''} |`)),
].join('\n');
const title = args.section === 'gpu' ? '## GPU: webgpu and tfjs-node-gpu on a real GPU' : '## Backends: webgpu in Node (Dawn), webgl and webgpu in Chromium, beside cpu';
const note =
  args.section === 'gpu'
    ? 'Measured by `bench/gpu.sh` on the device named in the table.'
    : 'webgpu and webgl run on SwiftShader (Chromium\'s software GPU): **its absolute times mean nothing**; the ratios and the kernel counts (what a real GPU pays in dispatches) are what carry over. On a real GPU, `bench/gpu.sh` writes the "GPU" section.';
writeSection(args.out, args.section, `${title}\n\n\`bench/backends.ts\`, measured ${machine()}. Ratios are medians of ${args.rounds} interleaved rounds, side by side in one process per backend (a page per Chromium backend); software GPUs and the cpu rows beside them ran at B ${args['soft-batch']} (T ${args['soft-seq']} for text). ${note}${args.note === '' ? '' : ` ${args.note}`}\n\n${table}\n`);
console.log(table);
