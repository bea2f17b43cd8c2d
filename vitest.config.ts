import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import 'inrun' the way a user does; this points it at the sources.
export default defineConfig({
  resolve: { alias: { inrun: fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tf.js keeps global state (backend, registered gradients): one process per file.
    pool: 'forks',
    // Memory tests collect garbage before they measure.
    execArgv: ['--expose-gc'],
  },
});
