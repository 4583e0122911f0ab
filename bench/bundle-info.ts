/**
 * What a workflow bundle holds: its size as the worker loads it (the code and
 * the inline source map the SDK's bundler appends), its webpack modules, the
 * packages they come from, and any module that has no place in workflow code
 * (zod, ajv, a Node builtin, a Node-only package or a package's Node
 * platform build). Used by the benchmark (`bundle.*`) and by
 * test/bundle.test.ts.
 */
import { builtinModules } from 'node:module';

/** Packages that must never be in the workflow bundle: validation (zod, ajv) and Node-only ones. */
export const FORBIDDEN_PACKAGES = [
  'zod',
  'zod-to-json-schema',
  'ajv',
  'ajv-formats',
  'pg',
  'pg-pool',
  'pg-protocol',
  '@electric-sql/pglite',
  'pino',
  'fastify',
  'ioredis',
  'redis',
  '@temporalio/worker',
  '@temporalio/client',
  '@temporalio/core-bridge',
  '@temporalio/testing',
  '@opentelemetry/sdk-trace-node',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/otlp-exporter-base',
  '@grpc/grpc-js',
];

export interface BundleInfo {
  /** The whole file the worker loads. */
  bytes: number;
  /** Without the inline source map. */
  codeBytes: number;
  sourceMapBytes: number;
  /** Webpack module ids (ignored optional modules, `?xxxx`, excluded). */
  modules: string[];
  /** Modules per package (`(project)` for pinflow's own). */
  packages: Record<string, number>;
  /** Modules that must not be there, with why. */
  forbidden: Array<{ module: string; why: string }>;
}

/** The package a module path belongs to (`(project)` when it is not under node_modules). */
export function packageOf(modulePath: string): string {
  const i = modulePath.lastIndexOf('node_modules/');
  if (i < 0) return '(project)';
  const parts = modulePath.slice(i + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

export function analyseBundle(code: string): BundleInfo {
  const mapAt = code.lastIndexOf('//# sourceMappingURL=data:');
  const codeBytes = Buffer.byteLength(mapAt > 0 ? code.slice(0, mapAt) : code);
  const bytes = Buffer.byteLength(code);
  // webpack 5 (mode development) writes each module as `/***/ "<id>"` at the start of a line.
  const modules = [...code.matchAll(/^\/\*\*\*\/ "([^"]+)"/gm)].map((m) => m[1]!).filter((id) => !id.startsWith('?'));
  const packages: Record<string, number> = {};
  const forbidden: BundleInfo['forbidden'] = [];
  for (const id of modules) {
    const pkg = packageOf(id);
    packages[pkg] = (packages[pkg] ?? 0) + 1;
    if (FORBIDDEN_PACKAGES.includes(pkg)) forbidden.push({ module: id, why: `package ${pkg} is validation or Node-only code` });
    else if (BUILTINS.has(id)) forbidden.push({ module: id, why: 'a Node builtin' });
    else if (/\/platform\/node\//.test(id)) forbidden.push({ module: id, why: `the Node platform build of ${pkg}` });
  }
  return { bytes, codeBytes, sourceMapBytes: bytes - codeBytes, modules, packages, forbidden };
}
