/**
 * Activity factory: built once per worker with its dependencies (the
 * projection store and the live RPC registry). Every activity is wrapped by
 * `withDbErrorsAll`: a permanent database error fails it non-retryably
 * (`ProjectionWriteRejected`) instead of being retried forever.
 */
import type { ProjectionStore } from '../projection/store';
import type { RpcRegistry } from '../worker/rpc';
import { withDbErrorsAll } from './db-errors';
import { createProjectionActivities } from './projection';
import { createRpcActivity } from './rpc';
import { createWaitActivities, type WaitHooks } from './waits';

export type { WaitHooks };

export function createActivities(deps: { store: ProjectionStore; registry: RpcRegistry; hooks?: WaitHooks }) {
  return withDbErrorsAll({
    ...createProjectionActivities(deps),
    ...createWaitActivities(deps),
    invokeRpc: createRpcActivity(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
