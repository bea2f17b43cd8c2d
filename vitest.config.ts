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
    // Bounds for a hang, not speed checks: on a loaded 2-core machine a tiny evaluation that takes 40 s
    // quietly took 136 s (past the old 120 s bound). Nothing here asserts a duration.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // tf.js keeps global state (backend, registered gradients): one process per file.
    pool: 'forks',
    // Three files at a time on CI's 2 cores: vitest's default is cores - 1 (one file), and many files wait
    // on a child (chromium, redis-server, a tsx process) or on a timeout they test; the whole suite took
    // 584 s with three against 627 s with two, side by side on this machine.
    maxWorkers: 3,
    // Memory tests collect garbage before they measure.
    execArgv: ['--expose-gc'],
    // tf.js' node-backend banner is noise in test output (test/setup-quiet.ts).
    setupFiles: ['test/setup-quiet.ts'],
  },
});
