// The per-kind checks on tf.js' webgpu backend in Node: npm `webgpu` (Dawn) on chromium's SwiftShader Vulkan driver, in a child process.
import { describe, expect, it } from 'vitest';
import { describeBackend } from './backend-expect.js';
import { HAS_ICD, ICD, runWebgpuChildLogged, validationErrors } from './webgpu-node-child.js';

const KNOWN = {};

let run: ReturnType<typeof runWebgpuChildLogged> | undefined;
const once = () => (run ??= runWebgpuChildLogged());

if (HAS_ICD) {
  describeBackend('webgpu in Node (Dawn on SwiftShader Vulkan)', () => once().then((r) => r.results), KNOWN);
  // A kernel that fails to compile makes the GPU skip the commands queued with it, which no single check may catch.
  it('prints no WebGPU validation error (no shader failed to compile, no command buffer was dropped)', async () => {
    expect(validationErrors((await once()).log)).toEqual([]);
  }, 540_000);
} else
  describe('webgpu in Node', () => {
    it.skip(`${ICD} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run installs it)`, () => undefined);
  });
