// The per-kind checks on tf.js' webgpu backend in Node: npm `webgpu` (Dawn) on chromium's SwiftShader Vulkan driver, in a child process.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import type { BackendResult } from './backend-checks.js';
import { describeBackend } from './backend-expect.js';

const CHROMIUM_LIB = '/usr/lib/chromium';
const ICD = `${CHROMIUM_LIB}/vk_swiftshader_icd.json`;
const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs test/backend-node-child.ts with the Vulkan loader pointed at SwiftShader; returns its results. */
function runChild(): Promise<BackendResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(`${root}node_modules/.bin/tsx`, [`${root}test/backend-node-child.ts`], {
      cwd: root,
      env: { ...process.env, VK_ICD_FILENAMES: ICD, LD_LIBRARY_PATH: [CHROMIUM_LIB, process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':') },
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
      resolve(parsed.results);
    });
  });
}

const KNOWN = {};

if (existsSync(ICD)) describeBackend('webgpu in Node (Dawn on SwiftShader Vulkan)', runChild, KNOWN);
else
  describe('webgpu in Node', () => {
    it.skip(`${ICD} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run installs it)`, () => undefined);
  });
