/**
 * Activity factory: built once per worker with its dependencies (the
 * projection store, the projection writer, the catalog and the live RPC
 * registry). Every activity is wrapped by `withDbErrorsAll`: a permanent
 * database error fails it non-retryably (`ProjectionWriteRejected`) instead of
 * being retried forever. The projection writes of the RPC and run-level
 * activities never reach that wrapper: the writer absorbs them.
 */
import { VersionStore } from '../catalog/versions';
import type { ProjectionStore } from '../projection/store';
import type { RpcRegistry } from '../rpc/registry';
import { ProjectionWriter, type ProjectionWriterOptions } from '../projection/writer';
import { isPermanentDbError, RACE_RETRIES, withDbErrorsAll } from './db-errors';
import { createProjectionActivities } from './projection';
import { createRpcActivity, type RpcHooks } from './rpc';
import { createWaitActivities, type WaitHooks } from './waits';

export type { RpcHooks, WaitHooks };
/** Test-only hooks inside activities. Never set in production. */
export type ActivityHooks = WaitHooks & RpcHooks;

/**
 * Attempts of one projection write after which a race SQLSTATE (23505, 23503)
 * is permanent: with the writer's backoff (200 ms doubling to 30 s) about a
 * minute and a half, time for a run's row written by another worker process
 * (a step row's parent) to land even while the projection is slow.
 */
const WRITER_RACE_ATTEMPTS = 10;

/** A projection writer on `store` with the SQLSTATE classification of activities/db-errors.ts. */
export function createProjectionWriter(store: ProjectionStore, opts: Omit<ProjectionWriterOptions, 'isPermanent'> = {}): ProjectionWriter {
  return new ProjectionWriter(store, { ...opts, isPermanent: (err, attempt) => isPermanentDbError(err, attempt >= WRITER_RACE_ATTEMPTS ? RACE_RETRIES : 1) });
}

export interface ActivityDeps {
  store: ProjectionStore;
  /** @default a catalog on the projection's database (they share one database and its migrations) */
  catalog?: VersionStore;
  registry: RpcRegistry;
  /** @default a writer on `store` (whoever passes one drains and closes it) */
  writer?: ProjectionWriter;
  hooks?: ActivityHooks;
}

export function createActivities(options: ActivityDeps) {
  const deps = { ...options, catalog: options.catalog ?? new VersionStore(options.store.db), writer: options.writer ?? createProjectionWriter(options.store) };
  return withDbErrorsAll({
    ...createProjectionActivities(deps),
    ...createWaitActivities(deps),
    invokeRpc: createRpcActivity(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
