/**
 * What changed between two versions of a definition: steps (added, removed,
 * changed with the top-level fields that differ), edges of the outline, and
 * each RPC contract's fields as dotted JSON-schema property paths. Pure: the
 * console's `GET /definitions/:name/diff` and the CLI's `versions diff` read it.
 */
import { canonicalJson } from './canonical';
import { outlineGraph, type OutlineEdge } from './outline';
import { DOC_FIELDS, allSteps, type PinnedContracts, type Step, type Subgraph } from './schema';

export interface StepsDiff {
  added: string[];
  removed: string[];
  /** Steps in both whose definition differs (documentation and `ui` aside): the top-level fields that differ. */
  changed: Array<{ stepId: string; fields: string[] }>;
  unchanged: string[];
}

export interface FieldChanges {
  added: string[];
  removed: string[];
  madeRequired: string[];
  madeOptional: string[];
  typeChanged: string[];
}

export interface ContractDiff {
  rpc: string;
  change: 'added' | 'removed' | 'changed' | 'unchanged';
  input: FieldChanges;
  output: FieldChanges;
}

/**
 * A step's fields as compared: documentation fields and `ui` dropped; a
 * nested subgraph (forEach `body`, parallel `branches`) by its entry and step
 * ids only, so a change inside it is reported on the nested step itself.
 */
function comparable(step: Step): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(step)) {
    if ((DOC_FIELDS as readonly string[]).includes(k) || v === undefined) continue;
    const shape = (g: Subgraph) => ({ entry: g.entry, steps: g.steps.map((s) => s.id) });
    if (step.type === 'forEach' && k === 'body') out[k] = canonicalJson(shape(step.body));
    else if (step.type === 'parallel' && k === 'branches') out[k] = canonicalJson(Object.fromEntries(Object.entries(step.branches).map(([b, g]) => [b, shape(g)])));
    else out[k] = canonicalJson(v);
  }
  return out;
}

export function diffSteps(from: Subgraph, to: Subgraph): StepsDiff {
  const a = new Map(allSteps(from).map(({ step }) => [step.id, step]));
  const b = new Map(allSteps(to).map(({ step }) => [step.id, step]));
  const diff: StepsDiff = { added: [], removed: [], changed: [], unchanged: [] };
  for (const id of b.keys()) if (!a.has(id)) diff.added.push(id);
  for (const [id, step] of a) {
    const other = b.get(id);
    if (!other) {
      diff.removed.push(id);
      continue;
    }
    const x = comparable(step);
    const y = comparable(other);
    const fields = [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => x[k] !== y[k]).sort();
    if (fields.length) diff.changed.push({ stepId: id, fields });
    else diff.unchanged.push(id);
  }
  return diff;
}

const edgeKey = (e: OutlineEdge) => canonicalJson([e.from, e.to, e.kind, e.label]);

export function diffEdges(from: Subgraph, to: Subgraph): { added: OutlineEdge[]; removed: OutlineEdge[] } {
  const a = outlineGraph(from).edges;
  const b = outlineGraph(to).edges;
  const inA = new Set(a.map(edgeKey));
  const inB = new Set(b.map(edgeKey));
  return { added: b.filter((e) => !inA.has(edgeKey(e))), removed: a.filter((e) => !inB.has(edgeKey(e))) };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** What "type" a schema node has, for typeChanged: its `type` (a list sorted), else the types of its anyOf/oneOf alternatives. */
function typeOf(node: Obj): string {
  const t = node.type;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return [...(t as string[])].sort().join('|');
  const alts = (node.anyOf ?? node.oneOf);
  if (Array.isArray(alts)) return alts.map((x) => (isObj(x) ? typeOf(x) : '?')).sort().join('|');
  if ('const' in node) return `const ${canonicalJson(node.const)}`;
  if (Array.isArray(node.enum)) return `enum`;
  return 'any';
}

/** Every property path of a JSON schema (`customer.email`, array items as `items[]`), with its type and whether it is required. */
function fieldsOf(schema: unknown): Map<string, { type: string; required: boolean }> {
  const out = new Map<string, { type: string; required: boolean }>();
  const walk = (node: unknown, prefix: string, depth: number) => {
    if (!isObj(node) || depth > 32) return;
    const props = node.properties;
    const required = new Set(Array.isArray(node.required) ? (node.required as string[]) : []);
    if (isObj(props)) {
      for (const [k, child] of Object.entries(props)) {
        const path = prefix ? `${prefix}.${k}` : k;
        out.set(path, { type: isObj(child) ? typeOf(child) : 'any', required: required.has(k) });
        walk(child, path, depth + 1);
      }
    }
    if (isObj(node.items)) walk(node.items, `${prefix}[]`, depth + 1);
  };
  walk(schema, '', 0);
  return out;
}

export function diffSchemaFields(from: unknown, to: unknown): FieldChanges {
  const a = fieldsOf(from);
  const b = fieldsOf(to);
  const c: FieldChanges = { added: [], removed: [], madeRequired: [], madeOptional: [], typeChanged: [] };
  for (const [path, f] of b) {
    const old = a.get(path);
    if (!old) c.added.push(path);
    else {
      if (f.required && !old.required) c.madeRequired.push(path);
      if (!f.required && old.required) c.madeOptional.push(path);
      if (f.type !== old.type) c.typeChanged.push(path);
    }
  }
  for (const path of a.keys()) if (!b.has(path)) c.removed.push(path);
  return c;
}

export function diffContracts(from: PinnedContracts, to: PinnedContracts): ContractDiff[] {
  const rpcs = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
  return rpcs.map((rpc) => {
    const a = from[rpc];
    const b = to[rpc];
    const input = diffSchemaFields(a?.input, b?.input);
    const output = diffSchemaFields(a?.output, b?.output);
    const change = !a ? 'added' : !b ? 'removed' : a.hash === b.hash ? 'unchanged' : 'changed';
    return { rpc, change, input, output };
  });
}
