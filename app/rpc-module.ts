/** Loading the worker's RPCs (and its code definitions) from a module path (PINFLOW_RPC_MODULE). */
import { resolve } from 'node:path';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { toRegistry, type RpcRegistry } from '../rpc/registry';
import type { CodeRule } from '../client/events';

export interface RpcModule {
  registry: RpcRegistry;
  /** Code definitions (`export const definitions = [wf.toDefinition(), ...]`), published on start, in order. */
  definitions: Array<{ definition: string; graph: unknown }>;
  /** Correlation rules in code (`export const correlationRules = { 'ticket.closed': 'payload.ticket.id' }`). */
  correlationRules: Record<string, CodeRule>;
}

/**
 * Load a module whose exports (or whose `rpcs` export) are `defineRpc`
 * results, plus an optional `definitions` export. Relative paths resolve
 * against the working directory.
 */
export function loadRpcModule(path: string): RpcModule {
  let mod: Record<string, unknown>;
  try {
    mod = require(resolve(path)) as Record<string, unknown>;
  } catch (err) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `PINFLOW_RPC_MODULE=${path} could not be loaded: ${(err as Error).message}`, { path });
  }
  const source = (mod.rpcs ?? mod.default ?? mod) as Record<string, unknown>;
  const registry = toRegistry(source);
  if (registry.names().size === 0) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `PINFLOW_RPC_MODULE=${path} exports no RPCs (expected defineRpc results, or an \`rpcs\` array)`, { path });
  }
  const defs = mod.definitions ?? [];
  if (!Array.isArray(defs) || defs.some((d) => typeof (d as { definition?: unknown })?.definition !== 'string' || typeof (d as { graph?: unknown }).graph !== 'object')) {
    throw new PinflowError(
      ERROR_CODES.CONFIG_INVALID,
      `PINFLOW_RPC_MODULE=${path}: the \`definitions\` export must be an array of { definition, graph } (e.g. defineWorkflow(...).toDefinition())`,
      { path },
    );
  }
  const rules = mod.correlationRules ?? {};
  if (rules === null || typeof rules !== 'object' || Array.isArray(rules) || Object.values(rules).some((v) => typeof v !== 'string' && (v === null || typeof v !== 'object' || typeof (v as { expression?: unknown }).expression !== 'string'))) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `PINFLOW_RPC_MODULE=${path}: the \`correlationRules\` export must map event names to JSONata expressions (or { expression, ttl })`, { path });
  }
  return { registry, definitions: defs as RpcModule['definitions'], correlationRules: rules as Record<string, CodeRule> };
}
