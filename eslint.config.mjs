// ESLint flat config. The workflow sandbox rule is the important one:
// workflows/ may not import Node builtins, pg or any I/O module, because
// workflow code must be deterministic and replayable.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const ioModules = ['pg', 'pg-*', '@electric-sql/*', 'ioredis', 'redis', 'fastify', 'fastify/*', 'undici', 'axios', 'node-fetch', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', 'prom-client'];

/**
 * Folder directions. Library folders depend only downward:
 *
 *   graph  <-  workflows
 *   graph  <-  db  <-  catalog / projection  <-  activities  <-  worker
 *   graph  <-  rpc <-  catalog
 *   graph  <-  codec (payload encryption)  <-  worker / client
 *   graph  <-  observability (metrics, traces, logs)  <-  projection / activities / worker / client; workflows never
 *   client uses graph, db, rpc, catalog, projection, observability and the workflow's message
 *          definitions (workflows/definitions), and the history reader (worker/history, which uses
 *          the interpreter's capture sink, workflows/capture); app/, cli/, scripts/ use everything.
 *
 * Each folder lists the folders it may import (`only`: the modules it may
 * import from one more). `sandbox` adds the workflow rule
 * (no Node builtins, no I/O modules). One rule per folder, because a later
 * flat-config block would replace an earlier one's options, not merge them.
 */
const FOLDERS = ['graph', 'workflows', 'observability', 'db', 'rpc', 'codec', 'catalog', 'projection', 'activities', 'worker', 'client', 'app', 'cli', 'scripts'];
const LAYERS = {
  graph: { may: [], sandbox: true },
  // Metrics, traces and logs (observability/): below every non-workflow folder; workflows may not use it.
  workflows: { may: ['graph'], typesFrom: ['activities'], sandbox: true },
  db: { may: ['graph'] },
  rpc: { may: ['graph'] },
  // The payload codec (encryption in Temporal history): Node crypto, outside the sandbox.
  codec: { may: ['graph'] },
  projection: { may: ['graph', 'db', 'observability'] },
  catalog: { may: ['graph', 'db', 'rpc'] },
  observability: { may: ['graph'] },
  activities: { may: ['graph', 'db', 'rpc', 'catalog', 'projection', 'observability'] },
  worker: { may: ['graph', 'db', 'rpc', 'codec', 'catalog', 'projection', 'activities', 'observability'], only: { workflows: ['capture'] } },
  client: { may: ['graph', 'db', 'rpc', 'codec', 'catalog', 'projection', 'observability'], only: { workflows: ['definitions'], worker: ['history'] } },
};

function layers() {
  return Object.entries(LAYERS).map(([folder, rule]) => {
    const patterns = [];
    for (const other of FOLDERS) {
      if (other === folder || rule.may.includes(other)) continue;
      // A relative import that climbs to that top-level folder (or its index), from any depth;
      // `only` lists the modules that stay allowed.
      const allowed = rule.only?.[other] ?? [];
      const regex = `^(\\.\\./)+${other}(/${allowed.length ? `(?!(${allowed.join('|')})$)` : ''}.*)?$`;
      const typesOnly = rule.typesFrom?.includes(other);
      patterns.push({
        regex,
        ...(typesOnly ? { allowTypeImports: true } : {}),
        message: rule.only?.[other]
          ? `${folder}/ may import only ${rule.only[other].map((m) => `${other}/${m}`).join(', ')} from ${other}/ (folder directions: see eslint.config.mjs)`
          : typesOnly
            ? `${folder}/ may import only types from ${other}/`
            : `${folder}/ may not import ${other}/: library folders depend only downward (see eslint.config.mjs)`,
      });
    }
    if (rule.sandbox) patterns.push({ group: ioModules, message: 'workflow code must not do I/O: call an activity instead' });
    return {
      files: [`${folder}/**/*.ts`],
      rules: {
        '@typescript-eslint/no-restricted-imports': [
          'error',
          {
            ...(rule.sandbox ? { paths: nodeBuiltins.map((name) => ({ name, message: 'workflow code runs in the Temporal sandbox: no Node builtins' })) } : {}),
            patterns,
          },
        ],
      },
    };
  });
}

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
  // The workflow sandbox: workflow code and the shared pure modules it imports.
  {
    files: ['workflows/**/*.ts', 'graph/**/*.ts', 'bench/baseline.ts', 'bench/workflows.ts'],
    rules: {
      'no-restricted-globals': ['error', { name: 'process', message: 'no process in workflow code' }, { name: 'Buffer', message: 'no Buffer in the sandbox' }],
    },
  },
  ...layers(),
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
);
