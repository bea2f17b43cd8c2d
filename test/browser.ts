// Debian's chromium driven by playwright-core for the report tests (never a downloaded browser).
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
/** Why browser tests skip, printed where they would run. */
export const NO_CHROMIUM = `${CHROMIUM} is missing: browser tests skipped (apt-get install -y chromium; .ci/run installs it)`;

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root has no user namespace sandbox here; nothing may reach the network either.
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** What a page did while loading a file: console errors, page errors, requests other than the file. */
export interface Visit {
  readonly page: Page;
  readonly errors: string[];
  readonly requests: string[];
}

export async function visit(browser: Browser, file: string, options: { javaScriptEnabled?: boolean } = {}): Promise<Visit> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled: options.javaScriptEnabled ?? true });
  const page = await context.newPage();
  const url = pathToFileURL(resolve(file)).href;
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors, requests };
}

/** Per chart: the number of drawn marks (bars, lines) Vega put in its SVG. */
export async function marksPerChart(page: Page): Promise<number[]> {
  const charts = page.locator('figure.chart svg');
  const out: number[] = [];
  for (let i = 0; i < (await charts.count()); i++) out.push(await charts.nth(i).locator('g.role-mark path[d]:not([d=""])').count());
  return out;
}
