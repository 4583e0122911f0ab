// ESLint flat config. The workflow sandbox rule is the important one:
// workflows/ may not import Node builtins, pg or any I/O module, because
// workflow code must be deterministic and replayable.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const ioModules = ['pg', 'pg-*', '@electric-sql/*', 'ioredis', 'redis', 'fastify', 'fastify/*', 'undici', 'axios', 'node-fetch', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.pinflow/**', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The workflow sandbox, and the shared pure modules it imports.
    files: ['workflows/**/*.ts', 'graph/**/*.ts', 'bench/baseline.ts', 'bench/workflows.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'workflow code runs in the Temporal sandbox: no Node builtins' })),
          patterns: [
            {
              group: ioModules,
              message: 'workflow code must not do I/O: call an activity instead',
            },
            {
              group: ['../activities', '../activities/*', '../worker/*', '../client/*', '../projection/*', '../runtime/*'],
              allowTypeImports: true,
              message: 'workflows/ may import only types from outside the sandbox',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'no process in workflow code' }, { name: 'Buffer', message: 'no Buffer in the sandbox' }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
);
