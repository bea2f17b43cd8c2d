import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'runs/**', 'coverage/**', 'scratch/**'] },
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
  // Stores, reports and the CLI see records and files, never tensors: a user can write a sink, and run
  // the CLI, without tf.js (docs/architecture.md).
  {
    files: ['src/store/**/*.ts', 'src/report/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@tensorflow/*'], message: 'store/, report/ and cli/ stay free of tf.js.' },
            {
              group: ['../attach/*', '../run/*', '../hooks/*', '../layers/*', '../ghost/*', '../scoring/*', '../accumulators/*', '../posthoc/*', '../unlearn/*'],
              message: 'store/, report/ and cli/ read what runs left behind; they do not reach into the training side.',
            },
          ],
        },
      ],
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  // Ambient declarations of untyped packages: their classes are declared, not used.
  { files: ['types/**/*.d.ts'], rules: { '@typescript-eslint/no-unused-vars': 'off' } },
);
