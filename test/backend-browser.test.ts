// The per-kind checks on webgl (float32) and webgpu in headless Debian chromium (SwiftShader), the page served from 127.0.0.1.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendPage, BackendResult } from './backend-checks.js';
import { describeBackend } from './backend-expect.js';
import { hasChromium, NO_CHROMIUM } from './browser.js';
import { bundleForBrowser } from './browser-bundle.js';
import { launchWithGpu, open } from './browser-gpu.js';
import { js, pageWith, serve, type TestServer } from './browser-server.js';

let browser: Browser | undefined;
let server: TestServer | undefined;

beforeAll(async () => {
  if (!hasChromium) return;
  const code = await bundleForBrowser('test/backend-page-entry.ts');
  server = await serve({ '/': pageWith('/checks.js'), '/checks.js': js(code) });
  browser = await launchWithGpu();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** The WebGPU device's uncaptured errors during its checks (test/backend-page-entry.ts). */
let webgpuErrors: string[] | undefined;

/** A fresh page per backend (a lost WebGPU device must not take webgl's checks with it). */
async function checksOn(backend: 'webgl' | 'webgpu'): Promise<BackendResult[]> {
  const { page, errors } = await open(browser!, `${server!.url}/`);
  await page.waitForFunction(() => typeof (globalThis as unknown as Partial<BackendPage>).inrunBackendChecks === 'function', undefined, { timeout: 120_000 }).catch(() => {
    throw new Error(`the page did not load its checks: ${errors.join('\n')}`);
  });
  const out = await page.evaluate((b) => (globalThis as unknown as BackendPage).inrunBackendChecks(b), backend);
  expect(out.backend).toBe(backend);
  if (backend === 'webgl') expect(out.float32, 'webgl must render float32 textures here (SwiftShader does)').toBe(true);
  await page.context().close();
  if (backend === 'webgpu') webgpuErrors = out.gpuErrors;
  return out.results;
}

if (!hasChromium) {
  describe('GPU backends in chromium', () => {
    it.skip(NO_CHROMIUM, () => undefined);
  });
} else {
  describeBackend('webgl in chromium (SwiftShader, float32)', () => checksOn('webgl'));
  describeBackend('webgpu in chromium (SwiftShader)', () => checksOn('webgpu'));
  // After the webgpu checks (tests run in order): a kernel that failed to compile drops the GPU work queued with it, which no single check may catch.
  it('webgpu in chromium raised no WebGPU validation error', () => {
    expect(webgpuErrors, 'the webgpu checks did not run').toBeDefined();
    expect(webgpuErrors).toEqual([]);
  });
}
