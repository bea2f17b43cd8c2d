import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url));

// Tests import the packages ('inrun', '@inrun/cli', ...) the way a user does; these point them at the sources.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^inrun$/, replacement: source('inrun/src/index.ts') },
      { find: /^inrun\/internal$/, replacement: source('inrun/src/internal.ts') },
      { find: /^@inrun\/store$/, replacement: source('store/src/index.ts') },
      { find: /^@inrun\/store\/internal$/, replacement: source('store/src/internal.ts') },
      { find: /^@inrun\/store\/core$/, replacement: source('store/src/core.ts') },
      { find: /^inrun\/browser$/, replacement: source('inrun/src/browser.ts') },
      { find: /^@inrun\/store\/browser$/, replacement: source('store/src/browser.ts') },
      { find: /^@inrun\/cli$/, replacement: source('cli/src/index.ts') },
      { find: /^@inrun\/jobs$/, replacement: source('jobs/src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tf.js keeps global state (backend, registered gradients): one process per file.
    pool: 'forks',
    // Two files at a time: vitest's default here is cores - 1 (one file on CI's 2 cores), and many files
    // wait on a child (chromium, redis-server, a tsx process) that runs on the other core.
    maxWorkers: 2,
    // Memory tests collect garbage before they measure.
    execArgv: ['--expose-gc'],
    // tf.js' node-backend banner is noise in test output (test/setup-quiet.ts).
    setupFiles: ['test/setup-quiet.ts'],
  },
});
