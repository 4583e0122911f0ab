/**
 * The few error classes pinflow throws, each with a stable `code` that the
 * HTTP API returns and tests assert on. Pure: importable by the workflow
 * bundle. Across the activity/workflow boundary failures travel as
 * `ApplicationFailure` type strings (see {@link FAILURE_TYPES}), never as
 * classes, because `instanceof` does not survive the sandbox boundary.
 */

/** Stable error codes. Wire contract: never rename a value. */
export const ERROR_CODES = {
  /** The graph failed validation; `details.issues` lists every problem. */
  GRAPH_INVALID: 'GRAPH_INVALID',
  DEFINITION_NAME_INVALID: 'DEFINITION_NAME_INVALID',
  DEFINITION_NOT_FOUND: 'DEFINITION_NOT_FOUND',
  VERSION_NOT_FOUND: 'VERSION_NOT_FOUND',
  /** The version was removed from the catalog by the version GC; `details` is its tombstone (hash, definitions and numbers, publish and removal times, who and why). Runs of it keep their graph in Temporal history. */
  VERSION_REMOVED: 'VERSION_REMOVED',
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
  /** An operator call (decision, migrate, cancel, bulk resolve) on a run that Temporal says is closed; `details.status` is its Temporal status. */
  RUN_CLOSED: 'RUN_CLOSED',
  RUN_ALREADY_EXISTS: 'RUN_ALREADY_EXISTS',
  /** Temporal runs it, but its row has not reached the projection yet (the run-started write is late); nothing was done: retry shortly. */
  RUN_NOT_PROJECTED: 'RUN_NOT_PROJECTED',
  REQUEST_INVALID: 'REQUEST_INVALID',
  /** A run input does not satisfy the definition's `inputSchema`; `details.issues` names each field, what was received (sensitive values redacted) and what is allowed. */
  INPUT_INVALID: 'INPUT_INVALID',
  /** A codec request (POST /codec/encode, /codec/decode) cannot be served: no encryption key, an unknown key id, a payload that does not decrypt. */
  CODEC_FAILED: 'CODEC_FAILED',
  MALFORMED_JSON: 'MALFORMED_JSON',
  CURSOR_INVALID: 'CURSOR_INVALID',
  RPC_DEFINITION_INVALID: 'RPC_DEFINITION_INVALID',
  CONFIG_INVALID: 'CONFIG_INVALID',
  TEMPORAL_CLI_NOT_FOUND: 'TEMPORAL_CLI_NOT_FOUND',
  TEMPORAL_UNAVAILABLE: 'TEMPORAL_UNAVAILABLE',
  /** The namespace or pinflow's search attributes are missing and could not be created (no permission); `details.commands` says how. */
  TEMPORAL_SETUP_MISSING: 'TEMPORAL_SETUP_MISSING',
  DATABASE_VERSION_UNKNOWN: 'DATABASE_VERSION_UNKNOWN',
  /** The database could not be reached (connection refused or lost, server shutting down); retry once it is back. */
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  NOT_FOUND: 'NOT_FOUND',
  RUN_NOT_STALLED: 'RUN_NOT_STALLED',
  DECISION_REJECTED: 'DECISION_REJECTED',
  SKIP_OUTPUT_INVALID: 'SKIP_OUTPUT_INVALID',
  MIGRATION_REFUSED: 'MIGRATION_REFUSED',
  /** Rerun from a step that cannot be a rerun point: not in the graph, or nested (forEach body, parallel branch); `details.nearest` names the enclosing top-level step. */
  RERUN_POINT_INVALID: 'RERUN_POINT_INVALID',
  /** Rerun from a step the source run never reached (or an occurrence it did not have); `details.reached` lists the steps it did reach. */
  RERUN_POINT_NOT_REACHED: 'RERUN_POINT_NOT_REACHED',
  /** Rerun or replay onto another version that cannot take the run's position or state; nothing was started. */
  RERUN_INCOMPATIBLE: 'RERUN_INCOMPATIBLE',
  /** The source run's Temporal history could not be read or replayed (rerun, replay); nothing was started. */
  HISTORY_UNREADABLE: 'HISTORY_UNREADABLE',
  /** A pause of a run started by a release without pause (before 0.8.0, FLAGS.PAUSE): it cannot hold at a boundary; cancel it or let it finish. */
  PAUSE_NOT_SUPPORTED: 'PAUSE_NOT_SUPPORTED',
  /** An event has no explicit correlation key and its name has no correlation rule. */
  CORRELATION_KEY_MISSING: 'CORRELATION_KEY_MISSING',
  /** The explicit key, or the rule's result, is not a non-empty string or finite number. */
  CORRELATION_KEY_INVALID: 'CORRELATION_KEY_INVALID',
  /** An eventId was submitted again with a different name, payload or key. */
  EVENT_ID_CONFLICT: 'EVENT_ID_CONFLICT',
  EVENT_NOT_FOUND: 'EVENT_NOT_FOUND',
  /** An event envelope is malformed (missing name, bad tenant, not JSON). */
  EVENT_INVALID: 'EVENT_INVALID',
  /** A correlation rule's expression does not compile or uses a disallowed function. */
  RULE_INVALID: 'RULE_INVALID',
  /** The event name's correlation rule is configured in code; the API cannot change it. */
  RULE_DEFINED_IN_CODE: 'RULE_DEFINED_IN_CODE',
  /** A string (a path parameter, a query value, a body field or a key, at any depth) holds a NUL character or a lone UTF-16 surrogate. */
  STRING_INVALID: 'STRING_INVALID',
  /** A JSON body nests deeper than the limit (64 levels). */
  REQUEST_TOO_DEEP: 'REQUEST_TOO_DEEP',
  /** The request body is over the size limit (5 MiB by default). */
  REQUEST_TOO_LARGE: 'REQUEST_TOO_LARGE',
  /** The body's content type is not application/json. */
  CONTENT_TYPE_UNSUPPORTED: 'CONTENT_TYPE_UNSUPPORTED',
  /** The URL is not valid percent-encoded UTF-8. */
  URL_INVALID: 'URL_INVALID',
  /** A path parameter or the URL is over the length limit. */
  URL_TOO_LONG: 'URL_TOO_LONG',
  /** The request headers are over Node's size limit. */
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  /** A contract manifest holds a JSON Schema that is invalid, or a `$ref` that is not local (`#...`). */
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  /** A `pattern` (or `patternProperties` key) in a contract manifest can backtrack catastrophically; it is never run. */
  REGEX_UNSAFE: 'REGEX_UNSAFE',
  /** No API key, or an unknown, revoked or malformed one (`Authorization: Bearer pf_<id>_<secret>`). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The key lacks the route's scope, or is bound to a tenant the request is not for; `details` names the scope needed and the scopes held. */
  FORBIDDEN: 'FORBIDDEN',
  /** The key made more requests than its rate limit allows; `Retry-After` says when to try again. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A destructive action without a `reason`; `details.field` names the field. */
  REASON_REQUIRED: 'REASON_REQUIRED',
  /** No API key with this id. */
  KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  /** No batch has this id. */
  BATCH_NOT_FOUND: 'BATCH_NOT_FOUND',
  /** A batch state change that its current state does not allow (resume a cancelled batch, pause a completed one); `details.state` is the state. */
  BATCH_STATE_CONFLICT: 'BATCH_STATE_CONFLICT',
  /** No retention rule for this definition and status (DELETE /retention/policies). */
  RETENTION_POLICY_NOT_FOUND: 'RETENTION_POLICY_NOT_FOUND',
  /** The global default of runs and the event log's rule can be set (days: null keeps forever), not removed; or no finite run policy to size the namespace by. */
  RETENTION_DEFAULT_REQUIRED: 'RETENTION_DEFAULT_REQUIRED',
  /** No retention sweep has this id. */
  RETENTION_SWEEP_NOT_FOUND: 'RETENTION_SWEEP_NOT_FOUND',
  /** A retention sweep is already running (one at a time); `details.sweepId` is its id. */
  RETENTION_SWEEP_RUNNING: 'RETENTION_SWEEP_RUNNING',
  /** Anything unexpected; the body carries an `errorId` that is in the server log, never the internal message. */
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Codes of individual graph validation issues (inside GRAPH_INVALID). */
export const GRAPH_ISSUE_CODES = {
  SCHEMA_INVALID: 'SCHEMA_INVALID',
  UNKNOWN_STEP_TYPE: 'UNKNOWN_STEP_TYPE',
  DUPLICATE_STEP_ID: 'DUPLICATE_STEP_ID',
  UNKNOWN_ENTRY: 'UNKNOWN_ENTRY',
  UNKNOWN_EDGE_TARGET: 'UNKNOWN_EDGE_TARGET',
  UNREACHABLE_STEP: 'UNREACHABLE_STEP',
  CYCLE: 'CYCLE',
  RPC_NOT_REGISTERED: 'RPC_NOT_REGISTERED',
  EXPRESSION_INVALID: 'EXPRESSION_INVALID',
  EXPRESSION_FUNCTION_NOT_ALLOWED: 'EXPRESSION_FUNCTION_NOT_ALLOWED',
  EXPRESSION_TOO_COMPLEX: 'EXPRESSION_TOO_COMPLEX',
  EXPRESSION_OUTPUT_TOO_LARGE: 'EXPRESSION_OUTPUT_TOO_LARGE',
  UNKNOWN_CHILD_DEFINITION: 'UNKNOWN_CHILD_DEFINITION',
  UNKNOWN_CHILD_VERSION: 'UNKNOWN_CHILD_VERSION',
  GRAPH_TOO_LARGE: 'GRAPH_TOO_LARGE',
  /** A regex literal in an expression can backtrack catastrophically. */
  REGEX_UNSAFE: 'REGEX_UNSAFE',
} as const;
export type GraphIssueCode = (typeof GRAPH_ISSUE_CODES)[keyof typeof GRAPH_ISSUE_CODES];

/** `ApplicationFailure.type` strings crossing the activity/workflow boundary. */
export const FAILURE_TYPES = {
  /** The live deployment cannot serve the pinned contract: the run stalls (details[0].reason). */
  RPC_STALL: 'RpcStall',
  RPC_MISSING: 'RpcMissing',
  RPC_INPUT_INVALID: 'RpcInputInvalid',
  RPC_OUTPUT_INVALID: 'RpcOutputInvalid',
  RPC_HANDLER_ERROR: 'RpcHandlerError',
  EXPRESSION_ERROR: 'ExpressionError',
  /**
   * An expression ran over the run's evaluation budget (steps, depth, items,
   * string length, regex input; see graph/limits.ts). Non-retryable: a replay
   * would count the same. details: the ExpressionError (stepId, field,
   * expression, jsonataCode EXPRESSION_BUDGET_EXCEEDED).
   */
  EXPRESSION_BUDGET_EXCEEDED: 'ExpressionBudgetExceeded',
  /**
   * An expression produced, in a value pinflow stores, a string Postgres
   * cannot store (NUL, lone surrogate). details: stepId, field, path.
   */
  VALUE_NOT_STORABLE: 'ValueNotStorable',
  /** A forEach has more items than the run's maxForEachItems; checked before its first item. */
  FOREACH_TOO_MANY_ITEMS: 'ForEachTooManyItems',
  FOREACH_ITEMS_NOT_ARRAY: 'ForEachItemsNotArray',
  ITEM_FAILED: 'ItemFailed',
  BRANCH_FAILED: 'BranchFailed',
  CHILD_FAILED: 'ChildFailed',
  WAIT_TIMED_OUT: 'WaitTimedOut',
  WAIT_KEY_INVALID: 'WaitKeyInvalid',
  SLEEP_UNTIL_INVALID: 'SleepUntilInvalid',
  /**
   * An activity's database write failed with an error no retry can fix (a
   * permanent SQLSTATE class: 22 data, 23 integrity, 42 syntax/undefined
   * object, 54 limits, ...; see activities/db-errors.ts). Raised non-retryable
   * so the activity fails instead of retrying forever; details[0].details
   * carries the activity, run, step or wait, SQLSTATE and Postgres's message.
   */
  PROJECTION_WRITE_REJECTED: 'ProjectionWriteRejected',
  /**
   * An RPC attempt outlived its start-to-close (or schedule-to-close) deadline
   * before its handler started, so the handler was not run: Temporal has timed
   * it out and retries the step with another attempt. Retryable; Temporal
   * never records it, since the attempt is already over on its side.
   */
  ATTEMPT_TIMED_OUT: 'AttemptTimedOut',
} as const;

/** One problem found in a graph. */
export interface GraphIssue {
  code: GraphIssueCode;
  /** JSON path into the submitted graph, e.g. `steps[2].next`. */
  path: string;
  /** The step the problem belongs to, when there is one. */
  stepId?: string;
  message: string;
}

/** Base class: every pinflow error has a stable code and JSON-safe details. */
export class PinflowError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'PinflowError';
  }
}

/** A graph failed validation. Carries every issue at once. */
export class GraphValidationError extends PinflowError {
  constructor(readonly issues: GraphIssue[]) {
    super(
      ERROR_CODES.GRAPH_INVALID,
      `graph is invalid (${issues.length} issue${issues.length === 1 ? '' : 's'}): ` +
        issues.map((i) => `${i.path}: ${i.message}`).join('; '),
      { issues },
    );
    this.name = 'GraphValidationError';
  }
}

/** A referenced thing (definition, version, run) does not exist. */
export class NotFoundError extends PinflowError {
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(code, message, details);
    this.name = 'NotFoundError';
  }
}

/** A request or option was malformed. */
export class InvalidRequestError extends PinflowError {
  /**
   * @param httpStatus The HTTP status when it is not the code's usual one:
   * 422 for a request that is well-formed but names something that does not
   * fit (a version of another definition).
   */
  constructor(code: ErrorCode, message: string, details?: unknown, readonly httpStatus?: number) {
    super(code, message, details);
    this.name = 'InvalidRequestError';
  }
}

