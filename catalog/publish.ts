/**
 * Publishing: validate a graph against the schema, the live registry and the
 * published definitions, pin the contracts of the RPCs it calls, and store it
 * under its content hash. Shared by `Pinflow.publish`, the HTTP API and
 * publish-on-start of code definitions.
 */
import { versionHash } from '../graph/canonical';
import { ERROR_CODES, InvalidRequestError } from '../graph/errors';
import { allSteps, DEFINITION_NAME_PATTERN, type Graph, type PinnedContracts } from '../graph/schema';
import { validateGraph } from '../graph/validate';
import { assertCleanJson } from '../graph/json-guard';
import type { RpcRegistry } from '../rpc/registry';
import type { VersionStore } from './versions';
import { assertInputSchemaCompiles } from './contracts';

export interface PublishResult {
  definition: string;
  /** The version hash. */
  version: string;
  /** The version's number within the definition (1, 2, ...). */
  seq: number;
  /** False when this exact graph (and contracts) was already published under this definition. */
  created: boolean;
}

export async function publishGraph(deps: { catalog: VersionStore; registry: RpcRegistry }, definition: string, rawGraph: unknown): Promise<PublishResult> {
  if (typeof definition !== 'string' || !DEFINITION_NAME_PATTERN.test(definition)) {
    throw new InvalidRequestError(
      ERROR_CODES.DEFINITION_NAME_INVALID,
      `definition name ${JSON.stringify(definition)} is invalid; it must be 2-64 lowercase letters, digits and dashes, ` +
        'starting with a letter and not ending with a dash',
      { received: definition, pattern: DEFINITION_NAME_PATTERN.source },
    );
  }
  // Bounded depth and clean strings before the recursive graph schema runs: a
  // mapping nested 2,000 deep would overflow its stack.
  assertCleanJson(rawGraph, 'graph');
  const { catalog, registry } = deps;
  const graph: Graph = await validateGraph(rawGraph, {
    rpcNames: registry.names(),
    resolveChild: async (child, version) => {
      // A definition may start runs of itself; its latest version resolves when the child starts.
      if (child === definition && version === undefined) return 'ok';
      const def = await catalog.getDefinition(child);
      if (!def) return 'definition';
      if (version === undefined) return 'ok';
      return (await catalog.getVersionOf(child, version)) ? 'ok' : 'version';
    },
  });
  assertInputSchemaCompiles(graph.inputSchema);
  const contracts: PinnedContracts = {};
  const rpcNames = new Set(allSteps(graph).flatMap(({ step }) => (step.type === 'rpc' ? [step.rpc] : [])));
  for (const name of [...rpcNames].sort()) contracts[name] = registry.get(name)!.contract;
  const hash = versionHash(graph, contracts);
  const { created, seq } = await catalog.publishVersion({ definition, hash, graph, contracts });
  return { definition, version: hash, seq, created };
}

/** Publish code definitions in order (a child's definition before its parent's). */
export async function publishAll(
  deps: { catalog: VersionStore; registry: RpcRegistry },
  definitions: ReadonlyArray<{ definition: string; graph: unknown }>,
): Promise<PublishResult[]> {
  const out: PublishResult[] = [];
  for (const d of definitions) out.push(await publishGraph(deps, d.definition, d.graph));
  return out;
}
