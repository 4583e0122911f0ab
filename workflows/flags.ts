/**
 * The interpreter's behaviour-change registry. Every change that alters the
 * command sequence of an existing history is numbered here with why and
 * since when, and gated with `patched(FLAGS.x)`, so histories recorded by an
 * earlier release replay unchanged (see test/histories and replay.test.ts).
 * Never rename or reuse an id: it is recorded in histories as a marker.
 *
 * Since flag 9 a new run asks `patched()` only in its first task, as its
 * very first commands (RunContext.decideFlags), and never again: flags 1 to 8
 * are on for it without a marker of their own. Since flag 16 a new run
 * records ONE marker, its release's (flag 16 for 0.9.0), which turns every
 * earlier flag on: each `patched()` that records costs two history events
 * (the marker and the SDK's TemporalChangeVersion upsert). A later release
 * adds one marker of its own (say `pinflow-17-flags-at-start-<release>`),
 * asked first in decideFlags, and turns its new flags on with it; the
 * earlier markers are asked after it, in order, for the histories that
 * recorded them. Never ask a flag at the step that uses it (see flag 9 for
 * why). Workflow code asks `ctx.flag(FLAGS.x)`, never `patched()`.
 *
 * Retiring a flag follows the SDK's rule for its own flags: `patched(id)` →
 * `deprecatePatch(id)` → removed. A flag may become `deprecatePatch(id)` (its
 * old branch deleted, with the corpus histories recorded before it) once no
 * open run started before the release that added it; it may be removed once
 * no open run started before the release that deprecated it.
 */
export const FLAGS = {
  /**
   * 1. Since 0.3.0: an RPC whose live contract cannot serve the pinned one
   * (missing, incompatible input or output) stalls the run for an operator
   * decision instead of failing it. Before: the run failed (RpcMissing,
   * RpcInputInvalid, RpcOutputInvalid).
   */
  STALL_ON_CONTRACT_MISMATCH: 'pinflow-1-stall-on-contract-mismatch',
  /**
   * 2. Since 0.3.0: at a top-level step boundary, when Temporal suggests it,
   * the run continues as new carrying its state (and, with onContinueAsNew:
   * latest, moves to the latest version if it can take the state). Before:
   * histories grew without bound.
   */
  CONTINUE_AS_NEW_WHEN_SUGGESTED: 'pinflow-2-continue-as-new-when-suggested',
  /**
   * 3. Since 0.4.0: a wait step registers in the correlation index (openWait
   * activity, with the mailbox look-back), ends on a matching `pinflow.event`
   * signal or its timer, and closes its index row (closeWait activity).
   * Before: a wait ended only by its timeout, with no activities.
   */
  EVENT_WAITS: 'pinflow-3-event-waits',
  /**
   * 4. Since 0.4.0: the run-started and run-closed projection writes are
   * local activities (one marker event each, no task-queue round trip)
   * instead of activities (three events and a workflow task each). Measured
   * in BENCHMARKS.md: two activity round trips were most of the interpreter's
   * latency and history overhead over a hand-written workflow.
   */
  LOCAL_RUN_PROJECTION: 'pinflow-4-local-run-projection',
  /**
   * 5. Since 0.5.0: a wait whose evaluated correlation key breaks the shared
   * rule (graph/correlation.ts: over CORRELATION_KEY_MAX characters, a NUL,
   * a lone surrogate) fails its step with WaitKeyInvalid, non-retryable.
   * Before: the wait opened with a key no event could match, and a very long
   * key failed the `run_waits` btree index inside openWait, retried forever.
   * Checked (and its marker recorded) only when a key breaks the rule.
   */
  CORRELATION_KEY_RULE: 'pinflow-5-correlation-key-rule',
  /**
   * 6. Since 0.6.0: every expression runs under the run's evaluation budget
   * (RunInput.limits: steps, depth, items, string length, regex input) and
   * refuses a regex literal that can backtrack catastrophically; a value
   * Postgres cannot store (NUL, lone surrogate) produced by an expression
   * that is stored (assign, inputs, return output, if value, fail message,
   * idempotency key) fails the step too. Over budget the step fails with
   * ExpressionBudgetExceeded, an unsafe regex with ExpressionError
   * (REGEX_UNSAFE), an unstorable value with ValueNotStorable, all
   * non-retryable. Before: no budget (an expensive expression ran into the
   * SDK's 5 s workflow-task deadline, was retried forever and could abort the
   * worker), and an unstorable value wedged the run on a projection write.
   * Checked (and its marker recorded) only when an evaluation breaks a guard;
   * without the marker (replay of an earlier run) the expression is evaluated
   * unbounded as before, which is what that run did.
   */
  EXPRESSION_GUARDS: 'pinflow-6-expression-guards',
  /**
   * 7. Since 0.6.0: a forEach whose items number more than the run's
   * maxForEachItems fails before its first item with ForEachTooManyItems,
   * non-retryable. Before: the loop ran, and a large control-only loop ran
   * into the workflow-task deadline (retried forever) while a large RPC loop
   * ran towards the history limit. Checked (and its marker recorded) only
   * when a loop is over the limit.
   */
  FOREACH_LIMIT: 'pinflow-7-foreach-limit',
  /**
   * 8. Since 0.6.0: a wait that opens may consume a buffered event (sent with
   * a time to live before the run reached the wait, routed to no wait): the
   * openWait activity offers them, the run checks its match filter on each
   * in order and calls the consumeBuffered activity, which only one wait can
   * win; the first one won resumes the wait. Before: such an event was
   * UNMATCHED and lost. Checked (and its marker recorded) only when openWait
   * offered a buffered event and no mailbox or inbox event resumed the wait
   * first, so runs that never meet a buffered event record no marker.
   */
  EVENT_BUFFER: 'pinflow-8-event-buffer',
  /**
   * 9. Since 0.7.0: a run decides its behaviour once, with this one marker
   * as its first command, before the run-started local activity; flags 1 to 8
   * are on without markers of their own. Before: each flag was asked where
   * its behaviour begins, and that broke replay after a split first task. A
   * query that reaches a run before its first workflow task is delivered with
   * that task, and the SDK may then complete the task with the local
   * activity's marker before the run has seen the activity's result; the run
   * goes on in a forced second task. A full replay resolves the activity
   * inside the first task, so the next `patched()` call (pinflow-3 at the
   * first wait) was evaluated against the first task's markers, returned
   * false, and the run failed every workflow task on a new worker with
   * TMPRL1100 (test/findings/nde-local-activity-forced-task.json). With no
   * `patched()` call after the local activity, no task boundary is consulted.
   */
  FLAGS_AT_START: 'pinflow-9-flags-at-start',
  /**
   * 10. Since 0.7.0 (after flag 9): the run tells its story to the Temporal
   * UI with search attributes kept current: PinflowStatus (RUNNING, WAITING,
   * STALLED, then COMPLETED, FAILED or CANCELLED at close),
   * PinflowCurrentStep (the top-level step instance in flight, for rpc, wait,
   * sleep, child, forEach and parallel steps) and PinflowStallReason (set
   * while stalled). Each change is an UpsertWorkflowSearchAttributes command,
   * so it is gated. Before: PinflowStatus was upserted only on stall, resolve
   * and migrate (a resolved run kept RUNNING after it completed), and
   * nothing else. Decided in decideFlags, right after flag 9 and only when
   * flag 9 is on, so it is asked once, as the run's second command, and
   * never at a step (see flag 9 for why). Activity and timer summaries and
   * the current details are user metadata, not commands: they are not
   * compared on replay and are not gated.
   */
  RUN_STORY: 'pinflow-10-run-story',
  /**
   * 11. Since 0.8.0 (after flag 10): a run can be paused by an operator
   * (`pinflow.pause` update, or its start input's `pause` for a new run of a
   * paused definition) and resumed (`pinflow.resume`). A paused run holds at
   * its next TOP-LEVEL step boundary on a condition (no polling): a step
   * inside a forEach or parallel finishes its whole top-level step first, and
   * a pause that arrives while the run is stalled or waiting takes effect once
   * that step is over. While held: PinflowStatus=PAUSED (an upsert) and a
   * projection activity (pause, then resume), so it is gated. Before: no
   * pause. Decided in decideFlags, right after flag 10 and only when flag 9
   * is on, so it is asked once, at the start, and never at a step (see flag 9
   * for why). A run without it (started by 0.7.0 or earlier) refuses a pause
   * with PAUSE_NOT_SUPPORTED.
   */
  PAUSE: 'pinflow-11-pause',
  /**
   * 12. Since 0.9.0 (after flag 11): an expression in the synchronous subset
   * (graph/expression-sync.ts: literals, plain paths, arithmetic,
   * comparisons, and/or, &, ?:) is evaluated by a closure compiled once,
   * and its value is handed to the step without a promise; the rest still
   * goes through jsonata. Same values and errors, but fewer promises and
   * awaits, so the concurrent branches of a forEach or parallel interleave
   * differently and their commands can come in another order: gated. Before:
   * every expression went through jsonata's async evaluator (in the sandbox
   * every promise captures a stack: most of a control step's CPU). On with
   * flag 16, never asked on its own.
   */
  SYNC_EXPRESSIONS: 'pinflow-12-sync-expressions',
  // 13 is not used: a change that was withdrawn before its release (the client alone writing a run's start
  // left the run's step writes without their run row while the database was away). Never reuse it.
  /**
   * 14. Since 0.9.0 (after flag 12): an rpc step is a step program
   * of its own (workflows/steps/rpc.ts): the walk awaits the activity's
   * promise itself. Before: the step ran in an async function that the walk
   * awaited, two more promises and awaits per rpc step (in the workflow
   * sandbox the SDK captures a stack for every promise: measured in
   * BENCHMARKS.md, "Control and replay CPU"). The activities and their order
   * in one branch are the same, but concurrent branches (forEach lanes,
   * parallel branches) interleave by microtasks, so their commands can come
   * in another order: gated. On with flag 16, never asked on its own.
   */
  DIRECT_RPC_STEP: 'pinflow-14-direct-rpc-step',
  /**
   * 15. Since 0.9.0: PinflowCurrentStep names the top-level step the run
   * RESTS at: a wait, sleep, child, forEach or parallel step in flight, or
   * the rpc step it is stalled at; it is cleared (one upsert, only when it
   * was set) when the run moves on to a top-level rpc step. Before (flag
   * 10): it was upserted at every top-level rpc step too, one history event
   * per step (a 20-step run had 20 more events than the same workflow by
   * hand; BENCHMARKS.md, "History events"). A step in flight is still shown
   * by its activity's summary and the current details, which are user
   * metadata, not events. On with flag 16, never asked on its own.
   */
  CURRENT_STEP_AT_REST: 'pinflow-15-current-step-at-rest',
  /**
   * 16. Since 0.9.0: the release marker. A new run asks it first in
   * decideFlags and, when it records it, asks nothing else: flags 1 to 15
   * except 13 (withdrawn) are on. A history without it (0.8.0 and earlier) asks flag 9 and the
   * flags after it as before. Before: a new run recorded flags 9, 10 and 11
   * (six events); flags 12, 14 and 15 would have added six more.
   */
  FLAGS_AT_START_0_9: 'pinflow-16-flags-at-start-0.9',
} as const;

export type FlagId = (typeof FLAGS)[keyof typeof FLAGS];

/** The flags a run that recorded FLAGS_AT_START (or FLAGS_AT_START_0_9) has on without asking. */
export const ON_WITH_FLAGS_AT_START: ReadonlySet<FlagId> = new Set<FlagId>([
  FLAGS.STALL_ON_CONTRACT_MISMATCH,
  FLAGS.CONTINUE_AS_NEW_WHEN_SUGGESTED,
  FLAGS.EVENT_WAITS,
  FLAGS.LOCAL_RUN_PROJECTION,
  FLAGS.CORRELATION_KEY_RULE,
  FLAGS.EXPRESSION_GUARDS,
  FLAGS.FOREACH_LIMIT,
  FLAGS.EVENT_BUFFER,
]);
