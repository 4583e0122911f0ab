/**
 * The workflow bundle. Production workers load a bundle prebuilt by
 * `npm run build` (scripts/build-bundle), so a deploy never bundles at start
 * and the bundle that runs is the one that was tested; unless the installed
 * Temporal SDK is not the one the bundle was built with ({@link prebuiltBundle}).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../db/paths';

export function workflowBundlePath(): string {
  return join(projectRoot(), 'dist', 'workflow-bundle.js');
}

/**
 * Beside the bundle, what it was built with: `{ "sdk": "<@temporalio/workflow version>" }`.
 * The bundle carries its own copy of the SDK's workflow half, which talks to
 * the worker half through the SDK's internal interface; the two are released
 * together and only tested together. With the `@temporalio/*` packages as peer
 * dependencies, an installed pinflow can meet a worker of another SDK version,
 * so the worker checks this before it loads the bundle ({@link prebuiltBundle}).
 */
export function workflowBundleMetaPath(): string {
  return join(projectRoot(), 'dist', 'workflow-bundle.meta.json');
}

export interface WorkflowBundleMeta {
  /** The version of `@temporalio/workflow` compiled into the bundle. */
  sdk: string;
}

/** The `@temporalio/workflow` a bundle built now would embed (scripts/build-bundle writes it to the meta file). */
export function bundledSdkVersion(): string {
  return (require('@temporalio/workflow/package.json') as { version: string }).version;
}

/** The `@temporalio/worker` that would run the bundle: the one this pinflow resolves (its peer dependency). */
export function workerSdkVersion(): string {
  return (require('@temporalio/worker/package.json') as { version: string }).version;
}

export type PrebuiltBundle =
  | { usable: true; path: string }
  | { usable: false; path: string; reason: 'missing' }
  | { usable: false; path: string; reason: 'sdk-mismatch'; builtWith: string; worker: string };

/**
 * Whether the worker may load the prebuilt bundle: it exists and was built
 * with the SDK version of the installed `@temporalio/worker`. A bundle without
 * a meta file (built before there was one) is taken as it is.
 */
export function prebuiltBundle(workerVersion: string = workerSdkVersion()): PrebuiltBundle {
  const path = workflowBundlePath();
  if (!existsSync(path)) return { usable: false, path, reason: 'missing' };
  const metaPath = workflowBundleMetaPath();
  if (!existsSync(metaPath)) return { usable: true, path };
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Partial<WorkflowBundleMeta>;
  if (typeof meta.sdk === 'string' && meta.sdk !== workerVersion) return { usable: false, path, reason: 'sdk-mismatch', builtWith: meta.sdk, worker: workerVersion };
  return { usable: true, path };
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

/** A prebuilt bundle this worker may load (see {@link prebuiltBundle}). */
export function hasPrebuiltBundle(): boolean {
  return prebuiltBundle().usable;
}
