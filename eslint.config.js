import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'packages/*/dist/**', 'node_modules/**', 'runs/**', 'coverage/**', 'scratch/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // tf.js ops return rank-generic tensors; `op(x) as tf.Tensor2D` is the idiomatic way to name
      // a rank, and the rule's suggested `op<tf.Tensor2D>(x)` does not type-check for most ops.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  // Package boundaries (docs/architecture.md#packages). A package reaches another only through its name,
  // never a relative path; @inrun/store and @inrun/cli never see tensors or the training side, so a user
  // can write a sink, and run the CLI, without tf.js.
  {
    files: ['packages/*/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../../*'], message: 'import another package by its name, not a relative path.' }] }],
    },
  },
  {
    files: ['packages/store/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*'], message: 'import another package by its name, not a relative path.' },
            { group: ['@tensorflow/*'], message: '@inrun/store stays free of tf.js.' },
            { group: ['inrun', 'inrun/*', '@inrun/*'], message: '@inrun/store is the bottom of the house: it imports no other inrun package.' },
          ],
        },
      ],
    },
  },
  // @inrun/store/browser's import graph (a page bundles it): no Node built-in, no native or file-based sink.
  {
    files: ['packages/store/src/{browser,sqlite-wasm,sqlite-ddl,schema,records,sink,errors,run-id,version,parquet-browser,parquet-run-writer,parquet-encode}.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*'], message: 'import another package by its name, not a relative path.' },
            { group: ['@tensorflow/*'], message: '@inrun/store stays free of tf.js.' },
            { group: ['inrun', 'inrun/*', '@inrun/*'], message: '@inrun/store is the bottom of the house: it imports no other inrun package.' },
            { group: ['node:*', 'fs', 'path', 'os', 'url', 'crypto', 'stream', 'events', 'better-sqlite3', 'hyparquet', './sqlite.js', './parquet.js', './parquet-file.js', './index.js'], message: 'the browser entry of @inrun/store (browser.ts) has no Node built-in or Node sink on its graph (hyparquet-writer runs in browsers; the Node Parquet files stay out).' },
          ],
        },
      ],
    },
  },
  // The arrows run down: an app that installs inrun (or @inrun/jobs) must not get the CLI's DuckDB, vega and
  // commander back through an import (test/install.test.ts measures that install). The rest of the graph
  // (circles, undeclared packages, tf.js under @inrun/store) is `npm run check:imports`.
  {
    files: ['packages/inrun/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*'], message: 'import another package by its name, not a relative path.' },
            { group: ['@inrun/cli', '@inrun/cli/*', '@inrun/jobs', '@inrun/jobs/*'], message: 'inrun sits below @inrun/cli and @inrun/jobs: it never imports them.' },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/jobs/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*'], message: 'import another package by its name, not a relative path.' },
            { group: ['@inrun/cli', '@inrun/cli/*'], message: '@inrun/jobs sits below @inrun/cli: the CLI loads the jobs, never the other way.' },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/cli/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*'], message: 'import another package by its name, not a relative path.' },
            { group: ['@tensorflow/*'], message: '@inrun/cli stays free of tf.js.' },
            { group: ['inrun', 'inrun/*'], message: '@inrun/cli reads what runs left behind (through @inrun/store); it does not reach into the training side.' },
            { group: ['@inrun/jobs'], allowTypeImports: true, message: '@inrun/cli loads @inrun/jobs with a dynamic import() in the job commands only (an optional peer).' },
          ],
        },
      ],
    },
  },
  // Page code (DOM types) is typed by its own project.
  {
    files: ['examples/browser/app.ts', 'bench/browser-page.ts'],
    languageOptions: { parserOptions: { projectService: false, project: './tsconfig.browser.json', tsconfigRootDir: import.meta.dirname } },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  // Ambient declarations of untyped packages: their classes are declared, not used.
  { files: ['types/**/*.d.ts'], rules: { '@typescript-eslint/no-unused-vars': 'off' } },
);
