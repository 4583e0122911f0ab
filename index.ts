/** pinflow's public library API: the package entry (`main` in package.json). */
export { publishGraph, publishAll } from './catalog/publish';
export { Pinflow, type PinflowOptions, type PublishResult, type StartOptions, type StartedRun, type ListRunsOptions, type Health } from './client/pinflow';
export { createApi, type ApiOptions } from './client/http';
// The event doors for embedding (README: Library API): the stream door and its dead letters, the library door's rejection.
export { RedisIngress, listDeadLetters, replayDeadLetters, type RedisIngressOptions, type DeadLetter, type DeadLetterOptions } from './client/redis-ingress';
export { EventRejectedError } from './client/events';
export { defineRpc, RpcError, RpcRegistry, type RpcContext, type RpcDefinition, type RpcOptions } from './rpc/registry';
export { createWorker, type CreateWorkerOptions } from './worker/worker';
export { EncryptionCodec, codecFromKeys, dataConverterFor, parseKey, parseOldKeys, payloadFromJson, payloadToJson, type EncryptionKey, type EncryptionKeys, type JsonPayload } from './codec/encryption';
export { ProjectionStore } from './projection/store';
export { VersionStore } from './catalog/versions';
export { connectPg, openPglite, type Db } from './db/connection';
export { migrate } from './db/migrate';
export { startStack, type Stack } from './app/stack';
export { loadConfig, type PinflowConfig } from './app/config';
export * from './graph';
// Traces and logs (README: Traces, Logs). Start tracing before creating the Temporal client and the worker.
export { startTracing, stopTracing, clientInterceptors, type TracingOptions } from './observability/tracing';
export { createLogger, TemporalPinoLogger, type LogOptions } from './observability/logging';
