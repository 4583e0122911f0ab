/**
 * Canonical JSON and content hashing. Pure (no Node builtins) so the workflow
 * bundle and the client share it.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { DOC_FIELDS, type Graph, type PinnedContracts } from './schema';

/**
 * JSON with object keys sorted recursively and no whitespace. `undefined`
 * members are dropped, as JSON.stringify does. Non-finite numbers are refused:
 * they are not JSON and would hash ambiguously.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
  }
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** The graph with every documentation-only field removed, graph- and step-level. */
export function stripDocumentation(graph: Graph): Graph {
  const strip = <T extends object>(o: T): T => {
    const copy = { ...o } as Record<string, unknown>;
    for (const f of DOC_FIELDS) delete copy[f];
    return copy as T;
  };
  return { ...strip(graph), steps: graph.steps.map(strip) };
}

/**
 * The version hash: sha256 over the canonical JSON of the documentation-free
 * graph and the pinned contracts. Contracts are part of the content because a
 * version pins them: the same graph published against a changed RPC contract
 * is a different version.
 */
export function versionHash(graph: Graph, contracts: PinnedContracts): string {
  return sha256Hex(canonicalJson({ graph: stripDocumentation(graph), contracts }));
}
