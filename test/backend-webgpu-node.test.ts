// The per-kind checks on tf.js' webgpu backend in Node: npm `webgpu` (Dawn) on chromium's SwiftShader Vulkan driver, in a child process.
import { describe, it } from 'vitest';
import { describeBackend } from './backend-expect.js';
import { HAS_ICD, ICD, runWebgpuChild } from './webgpu-node-child.js';

const KNOWN = {};

if (HAS_ICD) describeBackend('webgpu in Node (Dawn on SwiftShader Vulkan)', () => runWebgpuChild(), KNOWN);
else
  describe('webgpu in Node', () => {
    it.skip(`${ICD} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run installs it)`, () => undefined);
  });
