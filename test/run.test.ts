import assert from 'node:assert/strict';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { rpcs } from './fixtures/rpcs';
import { singleRpcGraph, sumGraph } from './fixtures/graphs';
import { createEnv, eventually, type Env } from './support/harness';

describe('runs on a real Temporal server, projected into a real Postgres', function () {
  this.timeout(120_000);
  let env: Env;

  before(async () => {
    env = await createEnv('run', rpcs);
    await env.startWorker(rpcs);
  });
  after(async () => env?.stop());

  it('publishes, starts and completes a run, and the projection matches steps, statuses and outputs', async () => {
    const pub = await env.pinflow.publish('sum', sumGraph);
    assert.equal(pub.created, true);
    assert.equal(pub.seq, 1);
    const started = await env.pinflow.start({ definition: 'sum', input: { a: 3, b: 4, name: 'ada' }, tenant: 'acme', metadata: { source: 'test' } });
    assert.equal(started.version, pub.version);
    assert.equal(
      started.temporalUiUrl,
      `http://localhost:8233/namespaces/${env.namespace}/workflows/${started.runId}/${started.temporalRunId}/history`,
    );
    const output = await env.pinflow.result(started.runId);
    assert.deepEqual(output, { sum: 7, doubled: 14, greeting: 'hello ada' });

    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'COMPLETED' ? r : undefined;
    });
    assert.equal(run.definition, 'sum');
    assert.equal(run.version, pub.version);
    assert.equal(run.tenant, 'acme');
    assert.equal(run.currentStep, null);
    assert.equal(run.errorSummary, null);
    assert.ok(run.closedAt);
    assert.deepEqual(run.input, { a: 3, b: 4, name: 'ada' });
    assert.deepEqual(run.output, { sum: 7, doubled: 14, greeting: 'hello ada' });
    assert.deepEqual(run.metadata, { source: 'test' });
    assert.deepEqual(
      run.steps.map((s) => [s.stepInstance, s.attempt, s.stepType, s.status, s.seq]),
      [
        ['add', 1, 'rpc', 'COMPLETED', 1],
        ['double', 1, 'assign', 'COMPLETED', 2],
        ['big', 1, 'if', 'COMPLETED', 3],
        ['greet', 1, 'rpc', 'COMPLETED', 4],
        ['done', 1, 'return', 'COMPLETED', 5],
      ],
    );
    assert.deepEqual(run.steps[0]!.input, { a: 3, b: 4 });
    assert.deepEqual(run.steps[0]!.output, { sum: 7 });
    assert.deepEqual(run.steps[1]!.output, { doubled: 14 });
    assert.deepEqual(run.steps[2]!.output, { branch: 'then', value: true });
    assert.deepEqual(run.steps[3]!.output, { greeting: 'hello ada' });

    // Control steps (assign, if, return) add no Temporal events: the only
    // commands are one activity per rpc step and the run-started and
    // run-closed projections, local activities (one marker each, after the
    // patch marker).
    const history = await env.client.workflow.getHandle(started.runId).fetchHistory();
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((n): n is string => typeof n === 'string');
    assert.deepEqual(scheduled, ['invokeRpc', 'invokeRpc']);
    const markers = (history.events ?? []).filter((e) => e.markerRecordedEventAttributes).map((e) => e.markerRecordedEventAttributes!.markerName);
    // One patch marker first (flag 16, the 0.9.0 release marker: every flag on), then the two local activities.
    assert.deepEqual(markers, ['core_patch', 'core_local_activity', 'core_local_activity']);
    // Search-attribute upserts: the SDK's TemporalChangeVersion for the marker and PinflowStatus at the close. None
    // per rpc step (flag 15: the current step names only a step the run rests at).
    const upserts = (history.events ?? []).filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).map((e) => Object.keys(e.upsertWorkflowSearchAttributesEventAttributes!.searchAttributes?.indexedFields ?? {}).join(','));
    assert.deepEqual(upserts, ['TemporalChangeVersion', 'PinflowStatus']);
    // So the history is the hand-written workflow's (started, first workflow task, 6 events per activity, completed)
    // plus five events in all, however many steps: the patch marker and its upsert, the run-started marker, the status
    // upsert, the run-closed marker.
    assert.equal(history.events?.length, 1 + 3 + 2 * 6 + 1 + 5);
    assert.equal((history.events ?? []).filter((e) => e.timerStartedEventAttributes).length, 0);
  });

  it('pins the run: search attributes, memo and summary name the definition and version', async () => {
    const pub = await env.pinflow.publish('sum', sumGraph);
    const started = await env.pinflow.start({ definition: 'sum', input: { a: 5, b: 5, name: 'bob' }, tenant: 'acme' });
    await env.pinflow.result(started.runId);
    const desc = await env.client.workflow.getHandle(started.runId).describe();
    assert.equal(desc.type, 'pinflowInterpreter');
    assert.equal(desc.taskQueue, 'pinflow');
    assert.deepEqual(desc.searchAttributes.PinflowDefinition, ['sum']);
    assert.deepEqual(desc.searchAttributes.PinflowVersion, [pub.version]);
    assert.deepEqual(desc.searchAttributes.PinflowTenant, ['acme']);
    assert.deepEqual(desc.memo, { definition: 'sum', version: pub.version, versionSeq: 1, tenant: 'acme' });
    assert.equal(await desc.staticSummary(), `sum v1 (${pub.version.slice(0, 12)})`);
    // And the run can be found in Temporal by version.
    const found = await eventually(async () => {
      const ids: string[] = [];
      for await (const w of env.client.workflow.list({ query: `PinflowVersion = '${pub.version}'` })) ids.push(w.workflowId);
      return ids.includes(started.runId) ? ids : undefined;
    });
    assert.ok(found.includes(started.runId));
  });

  it('starts an exact version even after a newer one was published', async () => {
    const v1 = await env.pinflow.publish('pinned', singleRpcGraph('math.add', { a: 'input.x', b: '1' }));
    const v2 = await env.pinflow.publish('pinned', singleRpcGraph('math.add', { a: 'input.x', b: '100' }));
    assert.notEqual(v1.version, v2.version);
    assert.equal(v2.seq, 2);
    const latest = await env.pinflow.start({ definition: 'pinned', input: { x: 1 } });
    const exact = await env.pinflow.start({ version: v1.version, input: { x: 1 } });
    assert.deepEqual(await env.pinflow.result(latest.runId), { sum: 101 });
    assert.deepEqual(await env.pinflow.result(exact.runId), { sum: 2 });
    assert.equal(exact.version, v1.version);
    const versions = await env.pinflow.listVersions('pinned');
    assert.deepEqual(
      versions.map((v) => [v.seq, v.hash, v.latest]),
      [
        [2, v2.version, true],
        [1, v1.version, false],
      ],
    );
  });

  it('publishing the same graph twice is idempotent and stores the version once', async () => {
    const a = await env.pinflow.publish('twice', sumGraph);
    const b = await env.pinflow.publish('twice', { ...sumGraph, description: 'only the docs changed', ui: { zoom: 1 } });
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(a.version, b.version);
    assert.equal(b.seq, 1);
    const rows = await env.db.query<{ n: number }>({ text: 'SELECT count(*)::int AS n FROM versions WHERE hash = $1', values: [a.version] });
    assert.equal(rows[0]!.n, 1);
    const links = await env.db.query<{ n: number }>({ text: 'SELECT count(*)::int AS n FROM definition_versions WHERE definition = $1', values: ['twice'] });
    assert.equal(links[0]!.n, 1);
  });

  it('retries a retryable RPC error and projects each attempt once', async () => {
    await env.pinflow.publish('flaky', singleRpcGraph('test.flaky', { succeedOnAttempt: '3' }));
    const started = await env.pinflow.start({ definition: 'flaky' });
    assert.deepEqual(await env.pinflow.result(started.runId), { attempt: 3 });
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'COMPLETED' ? r : undefined;
    });
    const call = run.steps.filter((s) => s.stepInstance === 'call');
    assert.deepEqual(
      call.map((s) => [s.attempt, s.status]),
      [
        [1, 'FAILED'],
        [2, 'FAILED'],
        [3, 'COMPLETED'],
      ],
    );
    assert.equal(call[0]!.error?.type, 'RpcHandlerError');
    assert.equal(call[0]!.error?.message, 'transient failure on attempt 1');
    const dupes = await env.db.query<{ n: number }>({
      text: 'SELECT count(*)::int AS n FROM run_steps WHERE run_id = $1 GROUP BY step_instance, attempt HAVING count(*) > 1',
      values: [started.runId],
    });
    assert.equal(dupes.length, 0);
  });

  it('ends a non-retryable RPC failure as FAILED with the error in the projection and the whole failure chain', async () => {
    await env.pinflow.publish('decline', singleRpcGraph('test.decline', { reason: "'insufficient funds'" }));
    const started = await env.pinflow.start({ definition: 'decline' });
    const err = await env.pinflow.result(started.runId).then(
      () => assert.fail('run should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'CardDeclined');
    assert.equal(err.cause.message, 'declined: insufficient funds');
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'FAILED' ? r : undefined;
    });
    assert.equal(run.errorSummary, 'CardDeclined at call: declined: insufficient funds');
    assert.deepEqual(run.error, {
      type: 'CardDeclined',
      message: 'declined: insufficient funds',
      stepId: 'call',
      stepInstance: 'call',
      attempt: 1,
      details: { reason: 'insufficient funds' },
    });
    // Non-retryable: exactly one attempt, though the policy allows five.
    assert.deepEqual(
      run.steps.map((s) => [s.stepInstance, s.attempt, s.status]),
      [['call', 1, 'FAILED']],
    );
  });

  it('fails the run when a handler breaks its output contract', async () => {
    await env.pinflow.publish('liar', singleRpcGraph('test.liar'));
    const started = await env.pinflow.start({ definition: 'liar' });
    const err = (await env.pinflow.result(started.runId).catch((e: unknown) => e)) as WorkflowFailedError;
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((err.cause as ApplicationFailure).type, 'RpcOutputInvalid');
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'FAILED' ? r : undefined;
    });
    assert.equal(run.error?.type, 'RpcOutputInvalid');
    assert.deepEqual((run.error?.details as { issues: Array<{ path: string }> }).issues.map((i) => i.path), ['count']);
  });

  it('fails the run at a fail step with its code and evaluated message', async () => {
    const started = await env.pinflow.start({ definition: 'sum', input: { a: 1, b: 1, name: 'x' } });
    const err = (await env.pinflow.result(started.runId).catch((e: unknown) => e)) as WorkflowFailedError;
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'TOO_SMALL');
    assert.equal(err.cause.message, 'doubled sum 4 is too small');
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'FAILED' ? r : undefined;
    });
    assert.deepEqual(
      run.steps.map((s) => [s.stepInstance, s.status]),
      [
        ['add', 'COMPLETED'],
        ['double', 'COMPLETED'],
        ['big', 'COMPLETED'],
        ['small', 'FAILED'],
      ],
    );
    assert.equal(run.errorSummary, 'TOO_SMALL at small: doubled sum 4 is too small');
  });

  it('fails the run when the RPC input does not match the live contract', async () => {
    await env.pinflow.publish('badinput', singleRpcGraph('math.add', { a: "'not a number'", b: '1' }));
    const started = await env.pinflow.start({ definition: 'badinput' });
    const err = (await env.pinflow.result(started.runId).catch((e: unknown) => e)) as WorkflowFailedError;
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'RpcInputInvalid');
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'FAILED' ? r : undefined;
    });
    assert.equal(run.steps.length, 1);
    assert.deepEqual((run.error?.details as { issues: Array<{ path: string }> }).issues.map((i) => i.path), ['a']);
  });

  it('answers the state query with the interpreter state', async () => {
    const started = await env.pinflow.start({ definition: 'sum', input: { a: 10, b: 1, name: 'q' } });
    await env.pinflow.result(started.runId);
    const state = await env.pinflow.state(started.runId);
    assert.equal(state.status, 'COMPLETED');
    assert.equal(state.cursor, null);
    assert.deepEqual(state.completed, ['add', 'double', 'big', 'greet', 'done']);
    assert.deepEqual(state.vars, { result: { sum: 11 }, doubled: 22 });
  });

  it('lists runs with filters and cursor paging, newest first, with no duplicates or gaps', async () => {
    await env.pinflow.publish('listing', singleRpcGraph('math.add', { a: 'input.i', b: '0' }));
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const s = await env.pinflow.start({ definition: 'listing', input: { i }, tenant: i % 2 ? 'odd' : 'even', runId: `listing-${i}` });
      ids.push(s.runId);
      await env.pinflow.result(s.runId);
    }
    await eventually(async () => {
      const p = await env.pinflow.listRuns({ definition: 'listing', status: 'COMPLETED', limit: 100 });
      return p.runs.length === 7;
    });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await env.pinflow.listRuns({ definition: 'listing', limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.runs.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(new Set(seen), new Set(ids));
    // The store itself decodes cursors strictly (not only the HTTP and library doors):
    // times JavaScript accepts and Postgres does not never reach the query.
    for (const s of ['0', '12', '+275760-09-13T00:00:00.000Z', '2026-11-30']) {
      const forged = Buffer.from(JSON.stringify({ s, i: 'listing-1' })).toString('base64url');
      await assert.rejects(env.store.listRuns({}, { cursor: forged }), (e: unknown) => (e as { code?: string }).code === 'CURSOR_INVALID');
    }
    assert.equal(seen.length, 7);
    const all = await env.pinflow.listRuns({ definition: 'listing', limit: 100 });
    const starts = all.runs.map((r) => r.startedAt);
    assert.deepEqual(starts, [...starts].sort().reverse());

    const odd = await env.pinflow.listRuns({ definition: 'listing', tenant: 'odd' });
    assert.deepEqual(odd.runs.map((r) => r.id).sort(), ['listing-1', 'listing-3', 'listing-5']);
    const byVersion = await env.pinflow.listRuns({ version: all.runs[0]!.version });
    assert.equal(byVersion.runs.length, 7);
    assert.equal((await env.pinflow.listRuns({ definition: 'listing', status: 'FAILED' })).runs.length, 0);
  });

  it('refuses a second run with the same run id', async () => {
    await env.pinflow.start({ definition: 'sum', input: { a: 9, b: 9, name: 'z' }, runId: 'unique-run' });
    await assert.rejects(env.pinflow.start({ definition: 'sum', input: {}, runId: 'unique-run' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'RUN_ALREADY_EXISTS');
      assert.equal(e.message, 'a run with id "unique-run" already exists');
      return true;
    });
  });
});
