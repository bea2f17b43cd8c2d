// Debian's chromium with its software GPUs (SwiftShader): WebGL 2 with float32 textures, and WebGPU; flags measured in docs/backends.md.
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { CHROMIUM } from './browser.js';

/** Flags that give headless chromium SwiftShader's WebGL and WebGPU (no GPU, no network). */
export const GPU_FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan,WebGPU',
  '--use-webgpu-adapter=swiftshader',
] as const;

export function launchWithGpu(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...GPU_FLAGS] });
}

/** Opens `url`, collecting console errors and page errors; resolves once the page has loaded. */
export async function open(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.stack ?? String(e)));
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors };
}
