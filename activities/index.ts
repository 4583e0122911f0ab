/**
 * Activity factory: built once per worker with its dependencies (the
 * projection store, the catalog and the live RPC registry). Every activity
 * is wrapped by `withDbErrorsAll`: a permanent database error fails it
 * non-retryably (`ProjectionWriteRejected`) instead of being retried forever.
 */
import { VersionStore } from '../catalog/versions';
import type { ProjectionStore } from '../projection/store';
import type { RpcRegistry } from '../rpc/registry';
import { withDbErrorsAll } from './db-errors';
import { createProjectionActivities } from './projection';
import { createRpcActivity } from './rpc';
import { createWaitActivities, type WaitHooks } from './waits';

export type { WaitHooks };

export interface ActivityDeps {
  store: ProjectionStore;
  /** @default a catalog on the projection's database (they share one database and its migrations) */
  catalog?: VersionStore;
  registry: RpcRegistry;
  hooks?: WaitHooks;
}

export function createActivities(options: ActivityDeps) {
  const deps = { ...options, catalog: options.catalog ?? new VersionStore(options.store.db) };
  return withDbErrorsAll({
    ...createProjectionActivities(deps),
    ...createWaitActivities(deps),
    invokeRpc: createRpcActivity(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
