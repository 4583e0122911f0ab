/**
 * Prebuild the workflow bundle into dist/workflow-bundle.js (run by `npm run build`),
 * and beside it dist/workflow-bundle.meta.json: the SDK version it embeds.
 *
 * The SDK's bundler appends an inline source map that carries the full text
 * of every bundled source. The text of pinflow's own sources is kept (the
 * SDK's enhanced stack trace query shows it); that of dependencies is
 * dropped: their mappings stay, so stack traces still name the file and line,
 * and the bundle every worker thread loads is about 2 MB smaller.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { bundledSdkVersion, workflowBundleMetaPath, workflowBundlePath, workflowInterceptorModules, workflowPreloadModules, workflowsEntry, type WorkflowBundleMeta } from '../worker/bundle';

const MAP_PREFIX = '//# sourceMappingURL=data:application/json;';

/** Drops `sourcesContent` of every source under node_modules from the bundle's inline source map. */
export function trimSourceMap(code: string): string {
  const at = code.lastIndexOf(MAP_PREFIX);
  if (at < 0) return code;
  const b64 = code.indexOf('base64,', at);
  if (b64 < 0) return code;
  const map = JSON.parse(Buffer.from(code.slice(b64 + 'base64,'.length).trimEnd(), 'base64').toString('utf8')) as {
    sources: string[];
    sourcesContent?: Array<string | null>;
  };
  if (map.sourcesContent) map.sourcesContent = map.sourcesContent.map((c, i) => (map.sources[i]!.includes('/node_modules/') ? null : c));
  return `${code.slice(0, at)}${MAP_PREFIX}base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`;
}

/** The production workflow bundle: the interpreter's entry, interceptors and preloaded modules, its source map trimmed. */
export async function buildProductionBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: workflowsEntry(),
    workflowInterceptorModules: workflowInterceptorModules(),
    preloadModules: workflowPreloadModules(),
    logger: undefined,
  });
  return trimSourceMap(code);
}

async function main(): Promise<void> {
  const code = await buildProductionBundle();
  const out = workflowBundlePath();
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, code);
  // What the bundle embeds, so a worker of another SDK version does not load it (worker/bundle.ts, prebuiltBundle).
  const meta: WorkflowBundleMeta = { sdk: bundledSdkVersion() };
  writeFileSync(workflowBundleMetaPath(), `${JSON.stringify(meta)}\n`);
  console.log(`workflow bundle written to ${out} (${(Buffer.byteLength(code) / 1024).toFixed(0)} KiB, @temporalio/workflow ${meta.sdk})`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
