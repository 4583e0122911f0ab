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

/**
 * Modules the bundle preloads (the SDK's `preloadModules`): with
 * `reuseV8Context` (the SDK's default executor, which pinflow's worker uses)
 * they are evaluated once per worker thread and shared by every workflow,
 * instead of evaluated again for each new workflow (a new run, a replay,
 * every cache miss). Only stateless modules belong here, and pure caches: the
 * expression engine (graph/expression.ts and what it imports: jsonata, the
 * size, sync-path and regex guards). Its compile cache then survives across
 * workflows; that is deterministic because a compiled entry is a function of
 * the source text alone (its checks, its sync plan, a jsonata expression
 * whose `evaluate` sets its own clock from the sandbox's Date each time), and
 * an evaluation never outlives the activation it runs in (the SDK drains the
 * microtasks before it leaves the sandbox). The SDK freezes what a preloaded
 * module exports, so none of them may export mutable state.
 */
export function workflowPreloadModules(): string[] {
  return [require.resolve('jsonata'), require.resolve('../graph/expression')];
}

export function hasPrebuiltBundle(): boolean {
  return existsSync(workflowBundlePath());
}
