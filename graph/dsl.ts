/**
 * A typed code DSL for graphs. It builds exactly the JSON a hand-written graph
 * would be (same keys, same values, plain objects only), so a code definition
 * and its JSON form publish to the same version hash.
 *
 * The RPC registry drives the types: an RPC name that is not registered, or an
 * input field the RPC's zod input schema does not have, is a compile error.
 * Nothing is validated at runtime beyond that; publishing validates the graph.
 *
 * Pure: importable by anything (no Node builtins, zod only as a type, nothing
 * from worker/ at runtime).
 */
import type { z } from 'zod';
import type {
  AssignStep,
  ChildStep,
  Duration,
  FailStep,
  ForEachStep,
  Graph,
  IfStep,
  Mapping,
  ParallelStep,
  ReturnStep,
  RpcStep,
  SleepStep,
  Step,
  Subgraph,
  SwitchStep,
  WaitStep,
} from './schema';

/** What the DSL needs of an RPC; every `defineRpc` result fits. */
export interface RpcShape {
  readonly name: string;
  readonly input: z.ZodType;
  readonly output: z.ZodType;
}

/** RPCs keyed by their name. */
export type RpcMap = Readonly<Record<string, RpcShape>>;

/**
 * The registry a workflow is typed against: an array of RPCs whose `name`s
 * are string literal types, or a record keyed by RPC name (which works whatever
 * the type of `name`; each key must equal its RPC's name).
 */
export type RpcList = readonly RpcShape[] | RpcMap;

/** The registry as a map from RPC name to RPC. */
export type RegistryOf<S extends RpcList> = S extends readonly RpcShape[] ? { [N in S[number]['name']]: Extract<S[number], { readonly name: N }> } : S;

/** Names of the RPCs in a registry map. */
export type RpcNameOf<M extends RpcMap> = keyof M & string;

/** The (zod input) type an RPC accepts. */
export type RpcInputOf<M extends RpcMap, N extends RpcNameOf<M>> = z.input<M[N]['input']>;

/**
 * The mapping accepted for an input of type `T`: for an object, exactly its
 * keys (optional ones optional), each a {@link Mapping}, or one expression
 * producing the whole object; otherwise any mapping.
 */
export type InputMappingOf<T> = T extends readonly unknown[] ? Mapping : T extends object ? { [K in keyof T]: Mapping } | string : Mapping;

/** Compile-time checks of the registry passed to {@link defineWorkflow}; `unknown` when it is fine. */
type RpcListCheck<S> = S extends readonly RpcShape[]
  ? string extends S[number]['name']
    ? { readonly 'RPC names must be string literal types here; pass a record keyed by name instead: { "orders.validate": validateOrder }': never }
    : unknown
  : { [K in keyof S]: S[K] extends { readonly name: infer N } ? (string extends N ? unknown : [N] extends [K] ? unknown : { readonly 'each key of rpcs must be its RPC name': K }) : unknown };

/** Fields of a step other than `id` and `type` (and the RPC name for `rpc`), as in the JSON form. */
type FieldsOf<S extends Step> = Omit<S, 'id' | 'type'>;

/** Fields of an `rpc` step calling RPC `N`: `input` is checked against the RPC's input type, and required when that has required keys. */
export type RpcFields<M extends RpcMap, N extends RpcNameOf<M>> = Omit<RpcStep, 'id' | 'type' | 'rpc' | 'input'> &
  (Record<never, never> extends RpcInputOf<M, N>
    ? { /** Mapping evaluated into the RPC input. Omitted means `{}`. */ input?: InputMappingOf<RpcInputOf<M, N>> }
    : { /** Mapping evaluated into the RPC input. */ input: InputMappingOf<RpcInputOf<M, N>> });

/**
 * A nested subgraph (forEach `body`, parallel branch): a callback that adds
 * steps to the builder it is given (its return value is ignored, so the chain
 * may be returned), or a plain {@link Subgraph} (copied as is, not type-checked).
 */
export type SubgraphSpec<M extends RpcMap> = Subgraph | ((sub: SubgraphBuilder<M>) => unknown);

export type ForEachFields<M extends RpcMap> = Omit<FieldsOf<ForEachStep>, 'body'> & { body: SubgraphSpec<M> };
export type ParallelFields<M extends RpcMap> = Omit<FieldsOf<ParallelStep>, 'branches'> & { branches: Record<string, SubgraphSpec<M>> };
/** Exactly one of `duration` and `until`. */
export type SleepFields = Omit<FieldsOf<SleepStep>, 'duration' | 'until'> &
  ({ duration: Duration; until?: never } | { until: string; duration?: never });
/** At most one of `timeout` and `timeoutUntil`; `onTimeout` only with one of them. */
export type WaitFields = Omit<FieldsOf<WaitStep>, 'timeout' | 'timeoutUntil' | 'onTimeout'> &
  (
    | { timeout?: never; timeoutUntil?: never; onTimeout?: never }
    | { timeout: Duration; timeoutUntil?: never; onTimeout?: string }
    | { timeoutUntil: string; timeout?: never; onTimeout?: string }
  );
/** A fail step takes no `onError`: it ends the (sub)graph with its code on purpose. */
export type FailFields = Omit<FieldsOf<FailStep>, 'onError'>;

/** Documentation-only fields of a graph (left out of the version hash). */
export interface GraphDocs {
  description?: string | undefined;
  notes?: string | undefined;
  ui?: Record<string, unknown> | undefined;
}

export interface WorkflowOptions<S extends RpcList> extends GraphDocs {
  /** Version policy when a long run continues as new. @default 'pinned' */
  onContinueAsNew?: 'pinned' | 'latest' | undefined;
  /** The RPCs the graph may call; their names and input types type the `rpc` steps. */
  rpcs: S & NoInfer<RpcListCheck<S>>;
}

/** A code definition, published by the worker on start. */
export interface CodeDefinition {
  /** The definition name. */
  definition: string;
  graph: Graph;
}

/** A deep copy made of plain objects and arrays, with `undefined`-valued keys left out. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

/**
 * Builds a (sub)graph step by step. Every method adds one step, with the same
 * field names as the JSON form, and returns the builder for chaining; steps
 * appear in the order they are added.
 */
export class SubgraphBuilder<M extends RpcMap> {
  protected entryId: string | undefined;
  protected readonly steps: Step[] = [];

  /** Set the entry step id. @default the first step's id */
  entry(id: string): this {
    this.entryId = id;
    return this;
  }

  /** Call a registered RPC: `input` may only use the fields of its input type. */
  rpc<N extends RpcNameOf<M>>(id: string, rpc: N, ...[fields]: Record<never, never> extends RpcFields<M, N> ? [fields?: RpcFields<M, N>] : [fields: RpcFields<M, N>]): this {
    return this.add({ id, type: 'rpc', rpc, ...fields });
  }

  /** Set variables, each from a mapping. */
  assign(id: string, fields: FieldsOf<AssignStep>): this {
    return this.add({ id, type: 'assign', ...fields });
  }

  /** Branch on a condition. */
  if(id: string, fields: FieldsOf<IfStep>): this {
    return this.add({ id, type: 'if', ...fields });
  }

  /** Take the first case whose `when` is truthy, else `default`. */
  switch(id: string, fields: FieldsOf<SwitchStep>): this {
    return this.add({ id, type: 'switch', ...fields });
  }

  /** Run `body` once per item of `items`. */
  forEach(id: string, fields: ForEachFields<M>): this {
    return this.add({ id, type: 'forEach', ...fields, body: this.subgraph(fields.body) });
  }

  /** Run named branches at once. */
  parallel(id: string, fields: ParallelFields<M>): this {
    const branches: Record<string, Subgraph> = {};
    for (const [name, spec] of Object.entries(fields.branches)) branches[name] = this.subgraph(spec);
    return this.add({ id, type: 'parallel', ...fields, branches });
  }

  /** Sleep for a `duration`, or `until` a timestamp. */
  sleep(id: string, fields: SleepFields): this {
    return this.add({ id, type: 'sleep', ...fields });
  }

  /** Wait for an event with a correlation key. */
  wait(id: string, fields: WaitFields): this {
    return this.add({ id, type: 'wait', ...fields });
  }

  /** Run another definition as a child. */
  child(id: string, fields: FieldsOf<ChildStep>): this {
    return this.add({ id, type: 'child', ...fields });
  }

  /** End the run as COMPLETED with `output` (`null` if omitted). */
  return(id: string, fields: FieldsOf<ReturnStep> = {}): this {
    return this.add({ id, type: 'return', ...fields });
  }

  /** End the run as FAILED with `code`. */
  fail(id: string, fields: FailFields): this {
    return this.add({ id, type: 'fail', ...fields });
  }

  /** The subgraph built so far, as plain JSON. */
  toSubgraph(): Subgraph {
    const entry = this.entryId ?? this.steps[0]?.id;
    if (entry === undefined) throw new Error('the graph has no steps: add steps (and call entry()) before building it');
    return plain({ entry, steps: this.steps }) as Subgraph;
  }

  private add(step: Record<string, unknown>): this {
    this.steps.push(plain(step) as Step);
    return this;
  }

  private subgraph(spec: SubgraphSpec<M>): Subgraph {
    if (typeof spec !== 'function') return plain(spec) as Subgraph;
    const sub = new SubgraphBuilder<M>();
    spec(sub);
    return sub.toSubgraph();
  }
}

/** Builds a workflow graph; see {@link defineWorkflow}. */
export class WorkflowBuilder<M extends RpcMap> extends SubgraphBuilder<M> {
  constructor(
    /** The definition name the graph is published under. */
    readonly definition: string,
    private readonly docs: GraphDocs & { onContinueAsNew?: 'pinned' | 'latest' | undefined },
  ) {
    super();
  }

  /** The graph as plain JSON, identical to its hand-written JSON form. A fresh copy on every call. */
  toGraph(): Graph {
    const { entry, steps } = this.toSubgraph();
    const { onContinueAsNew, ...docs } = this.docs;
    return plain({ ...docs, entry, ...(onContinueAsNew ? { onContinueAsNew } : {}), steps }) as Graph;
  }

  /** `{ definition, graph }`, for the worker to publish on start (export it in `definitions`). */
  toDefinition(): CodeDefinition {
    return { definition: this.definition, graph: this.toGraph() };
  }
}

/**
 * Start a workflow graph in code. `rpcs` types the `rpc` steps: an unknown RPC
 * name, or an input field its zod input schema does not have, is a compile
 * error. Pass the RPCs as an array when their `name`s are string literal
 * types, or as a record keyed by RPC name otherwise. `description`, `notes` and
 * `ui` go on the graph as documentation.
 *
 * @example
 * ```ts
 * const wf = defineWorkflow('order-fulfilment', { rpcs: { 'orders.validate': validateOrder }, description: 'Validate an order.' })
 *   .entry('validate')
 *   .rpc('validate', 'orders.validate', { input: { orderId: 'input.orderId', customerId: 'input.customer.id', items: 'input.items' }, next: 'is-valid' })
 *   .if('is-valid', { condition: 'steps.validate.valid', then: 'done', else: 'reject' })
 *   .fail('reject', { code: 'ORDER_INVALID', message: "'order ' & input.orderId & ' rejected'" })
 *   .return('done', { output: { orderId: 'input.orderId' } });
 * export const definitions = [wf.toDefinition()]; // → { definition: 'order-fulfilment', graph: { description, entry, steps } }
 * ```
 */
export function defineWorkflow<const S extends RpcList>(definition: string, options: WorkflowOptions<S>): WorkflowBuilder<RegistryOf<S>> {
  const { rpcs, ...docs } = options;
  if (!Array.isArray(rpcs)) {
    for (const [key, rpc] of Object.entries(rpcs as RpcMap)) {
      if (rpc.name !== key) throw new Error(`defineWorkflow(${JSON.stringify(definition)}): rpcs key ${JSON.stringify(key)} holds RPC ${JSON.stringify(rpc.name)}`);
    }
  }
  return new WorkflowBuilder<RegistryOf<S>>(definition, docs);
}
