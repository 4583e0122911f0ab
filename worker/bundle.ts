/**
 * The workflow bundle. Production workers load a bundle prebuilt by
 * `npm run build` (scripts/build-bundle), so a deploy never bundles at start
 * and the bundle that runs is the one that was tested.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../db/paths';

export function workflowBundlePath(): string {
  return join(projectRoot(), 'dist', 'workflow-bundle.js');
}

/** The interpreter's source entry, for bundling. */
export function workflowsEntry(): string {
  return require.resolve('../workflows');
}

/**
 * The workflow interceptor modules baked into the bundle: workflow-side
 * tracing (workflows/tracing.ts), present in every bundle and active only for
 * runs whose history carries a trace context.
 */
export function workflowInterceptorModules(): string[] {
  return [require.resolve('../workflows/observability')];
}

export function hasPrebuiltBundle(): boolean {
  return existsSync(workflowBundlePath());
}
