/** pinflow's public library API. */
export { publishGraph, publishAll } from './publish';
export { Pinflow, type PinflowOptions, type PublishResult, type StartOptions, type StartedRun, type ListRunsOptions, type Health } from './pinflow';
export { createApi, type ApiOptions } from './http';
export { defineRpc, RpcError, RpcRegistry, type RpcContext, type RpcDefinition, type RpcOptions } from '../worker/rpc';
export { createWorker, type CreateWorkerOptions } from '../worker/worker';
export { ProjectionStore } from '../projection/store';
export { connectPg, openPglite, type Db } from '../projection/db';
export { migrate } from '../projection/migrate';
export { startStack, type Stack } from '../runtime/stack';
export { loadConfig, type PinflowConfig } from '../runtime/config';
export * from '../graph';
