/**
 * The RPC registry: named, zod-typed handlers the live deployment offers.
 * A handler's contract is the JSON Schema of its input and output (zod's own
 * conversion) plus their hash; a published version pins the contract of every
 * RPC it references.
 */
import { msToNumber } from '@temporalio/common/lib/time';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../graph/canonical';
import { ERROR_CODES, InvalidRequestError } from '../graph/errors';
import { RPC_NAME_PATTERN, type PinnedContract, type RpcRetryPolicy } from '../graph/schema';

/** What a handler learns about the call besides its input. */
export interface RpcContext {
  runId: string;
  tenant: string;
  /** The step id in the graph. */
  stepId: string;
  /** The step instance (`charge`, `charge#2`). */
  stepInstance: string;
  /** 1-based Temporal activity attempt. */
  attempt: number;
  /**
   * Stable across retries and replays of this step instance: pass it to
   * external systems to make side effects idempotent.
   */
  idempotencyKey: string;
  /** Aborted when Temporal cancels the activity (run cancelled, worker shutdown). */
  signal: AbortSignal;
}

export interface RpcRetryOptions {
  /** @default 5 */
  maximumAttempts?: number;
  /** Milliseconds or a duration string such as `'1s'`. @default '1s' */
  initialInterval?: number | string;
  /** @default 2 */
  backoffCoefficient?: number;
  /** @default '1m' */
  maximumInterval?: number | string;
  /** Error `type`s (see {@link RpcError}) that are never retried. */
  nonRetryableErrorTypes?: string[];
}

export interface RpcOptions<I extends z.ZodType, O extends z.ZodType> {
  input: I;
  output: O;
  handler: (input: z.output<I>, ctx: RpcContext) => Promise<z.input<O>> | z.input<O>;
  retry?: RpcRetryOptions;
  /** Start-to-close timeout, ms or a duration string. @default '30s' */
  timeout?: number | string;
}

export interface RpcDefinition<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType, N extends string = string> extends RpcOptions<I, O> {
  /** Kept as a literal type, so the code DSL can type-check RPC names. */
  readonly name: N;
  readonly contract: PinnedContract;
}

/**
 * A failure a handler throws on purpose. `type` is matched against the retry
 * policy's `nonRetryableErrorTypes`; `nonRetryable: true` skips retries outright.
 */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly type: string = 'RpcError',
    readonly options: { nonRetryable?: boolean; details?: unknown } = {},
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

const DEFAULT_RETRY: Required<Omit<RpcRetryPolicy, 'nonRetryableErrorTypes'>> = {
  maximumAttempts: 5,
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
};
const DEFAULT_TIMEOUT_MS = 30_000;

function toJsonSchema(name: string, which: 'input' | 'output', schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { io: which === 'input' ? 'input' : 'output', target: 'draft-2020-12' });
  } catch (err) {
    throw new InvalidRequestError(
      ERROR_CODES.RPC_DEFINITION_INVALID,
      `RPC ${JSON.stringify(name)}: the ${which} schema cannot be expressed as JSON Schema (${(err as Error).message}); ` +
        'contracts must be JSON-representable (no transforms to non-JSON types, dates, functions or bigints)',
      { rpc: name, field: which },
    );
  }
}

/** Define an RPC. Throws RPC_DEFINITION_INVALID for a bad name or schema. */
export function defineRpc<I extends z.ZodType, O extends z.ZodType, const N extends string = string>(name: N, options: RpcOptions<I, O>): RpcDefinition<I, O, N> {
  if (!RPC_NAME_PATTERN.test(name)) {
    throw new InvalidRequestError(
      ERROR_CODES.RPC_DEFINITION_INVALID,
      `RPC name ${JSON.stringify(name)} is invalid; it must match ${RPC_NAME_PATTERN}`,
      { rpc: name, field: 'name' },
    );
  }
  if (!(options.input instanceof z.ZodType) || !(options.output instanceof z.ZodType)) {
    throw new InvalidRequestError(ERROR_CODES.RPC_DEFINITION_INVALID, `RPC ${JSON.stringify(name)}: input and output must be zod schemas`, {
      rpc: name,
    });
  }
  const input = toJsonSchema(name, 'input', options.input);
  const output = toJsonSchema(name, 'output', options.output);
  const r = options.retry ?? {};
  const retry: RpcRetryPolicy = {
    maximumAttempts: r.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts,
    initialIntervalMs: r.initialInterval !== undefined ? msToNumber(r.initialInterval as never) : DEFAULT_RETRY.initialIntervalMs,
    backoffCoefficient: r.backoffCoefficient ?? DEFAULT_RETRY.backoffCoefficient,
    maximumIntervalMs: r.maximumInterval !== undefined ? msToNumber(r.maximumInterval as never) : DEFAULT_RETRY.maximumIntervalMs,
    nonRetryableErrorTypes: [...(r.nonRetryableErrorTypes ?? [])].sort(),
  };
  const contract: PinnedContract = {
    input,
    output,
    hash: sha256Hex(canonicalJson({ input, output })),
    retry,
    timeoutMs: options.timeout !== undefined ? msToNumber(options.timeout as never) : DEFAULT_TIMEOUT_MS,
  };
  return Object.freeze({ ...options, name, contract });
}

/** The live set of RPCs, by name. */
export class RpcRegistry {
  private readonly byName = new Map<string, RpcDefinition>();

  constructor(rpcs: Iterable<RpcDefinition>) {
    for (const rpc of rpcs) {
      if (this.byName.has(rpc.name)) {
        throw new InvalidRequestError(ERROR_CODES.RPC_DEFINITION_INVALID, `RPC ${JSON.stringify(rpc.name)} is registered twice`, {
          rpc: rpc.name,
        });
      }
      this.byName.set(rpc.name, rpc);
    }
  }

  get(name: string): RpcDefinition | undefined {
    return this.byName.get(name);
  }

  names(): ReadonlySet<string> {
    return new Set(this.byName.keys());
  }
}

/** Accept an array, a registry or a module namespace of `defineRpc` results. */
export function toRegistry(rpcs: RpcRegistry | Iterable<RpcDefinition> | Record<string, unknown>): RpcRegistry {
  if (rpcs instanceof RpcRegistry) return rpcs;
  if (Symbol.iterator in Object(rpcs)) return new RpcRegistry(rpcs as Iterable<RpcDefinition>);
  const defs = Object.values(rpcs as Record<string, unknown>).filter(
    (v): v is RpcDefinition => typeof v === 'object' && v !== null && 'contract' in v && 'handler' in v && 'name' in v,
  );
  return new RpcRegistry(defs);
}
