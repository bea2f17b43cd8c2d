// Runs test/backend-node-child.ts on tf.js' webgpu backend (npm `webgpu`, Dawn on chromium's SwiftShader Vulkan driver) and returns its results.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BackendResult } from './backend-checks.js';

const CHROMIUM_LIB = '/usr/lib/chromium';
/** chromium's SwiftShader Vulkan driver (Debian's Mesa lavapipe is refused by Dawn). */
export const ICD = `${CHROMIUM_LIB}/vk_swiftshader_icd.json`;
export const HAS_ICD = existsSync(ICD);
const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs the child with the Vulkan loader pointed at SwiftShader (it reads VK_ICD_FILENAMES when the
 * process starts, hence a child); `env` picks what it runs (INRUN_SUITE, INRUN_BACKEND_CASES).
 */
export function runWebgpuChild(env: Record<string, string> = {}): Promise<BackendResult[]> {
  return runWebgpuChildLogged(env).then((r) => r.results);
}

/**
 * The WebGPU validation errors Dawn printed (a shader that failed to compile, an invalid command
 * buffer): each drops GPU work silently, so a run must print none (docs/layers.md, "GPU backends").
 */
export function validationErrors(log: string): string[] {
  return log.split('\n').filter((l) => /Error while parsing WGSL|is invalid due to a previous error/.test(l));
}

/** {@link runWebgpuChild}, with the child's whole output (stdout and stderr) for {@link validationErrors}. */
export function runWebgpuChildLogged(env: Record<string, string> = {}): Promise<{ results: BackendResult[]; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`${root}node_modules/.bin/tsx`, [`${root}test/backend-node-child.ts`], {
      cwd: root,
      env: { ...process.env, ...env, VK_ICD_FILENAMES: ICD, LD_LIBRARY_PATH: [CHROMIUM_LIB, process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('INRUN_RESULTS '));
      if (line === undefined) return reject(new Error(`the webgpu child exited with ${code} and no results:\n${(out + err).slice(-4000)}`));
      const parsed = JSON.parse(line.slice('INRUN_RESULTS '.length)) as { backend: string; results: BackendResult[] };
      if (parsed.backend !== 'webgpu') return reject(new Error(`the child ran on ${parsed.backend}, not webgpu`));
      resolve({ results: parsed.results, log: out + err });
    });
  });
}
