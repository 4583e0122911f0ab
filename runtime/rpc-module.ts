/** Loading the worker's RPCs from a module path (PINFLOW_RPC_MODULE). */
import { resolve } from 'node:path';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { toRegistry, type RpcRegistry } from '../worker/rpc';

/**
 * Load a module whose exports (or whose `rpcs` export) are `defineRpc`
 * results. Relative paths resolve against the working directory.
 */
export function loadRpcModule(path: string): RpcRegistry {
  let mod: Record<string, unknown>;
  try {
    mod = require(resolve(path)) as Record<string, unknown>;
  } catch (err) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `PINFLOW_RPC_MODULE=${path} could not be loaded: ${(err as Error).message}`, { path });
  }
  const source = (mod.rpcs ?? mod.default ?? mod) as Record<string, unknown>;
  const registry = toRegistry(Array.isArray(source) ? source : source);
  if (registry.names().size === 0) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `PINFLOW_RPC_MODULE=${path} exports no RPCs (expected defineRpc results, or an \`rpcs\` array)`, { path });
  }
  return registry;
}
