import assert from 'node:assert/strict';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { examples, exampleRpcs } from '../examples';
import { createEnv, eventually, type Env } from './support/harness';

function example(definition: string) {
  const ex = examples.find((e) => e.definition === definition);
  if (!ex) throw new Error(`no example ${definition}`);
  return ex;
}

describe('examples: every bundled definition publishes and runs to its documented result', function () {
  this.timeout(120_000);
  let env: Env;
  const published: Array<{ definition: string; created: boolean; seq: number }> = [];

  before(async () => {
    env = await createEnv('examples', exampleRpcs);
    await env.startWorker(exampleRpcs);
    for (const ex of examples) published.push(await env.pinflow.publish(ex.definition, ex.graph));
  });
  after(async () => env?.stop());

  /** Start a definition with its sample input (or `input`) and await its output. */
  async function run(definition: string, input: unknown = example(definition).sampleInput) {
    const started = await env.pinflow.start({ definition, input });
    return { runId: started.runId, output: await env.pinflow.result(started.runId) };
  }

  async function closedRun(runId: string) {
    return eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status !== 'RUNNING' ? r : undefined;
    });
  }

  it('publishes every example, a child definition before the definition that starts it, with RPC names unique across examples', () => {
    assert.deepEqual(
      published.map((p) => [p.definition, p.created, p.seq]),
      [
        ['order-fulfilment', true, 1],
        ['invoice-approval', true, 1],
        ['customer-import', true, 1],
        ['incident-postmortem', true, 1],
        ['incident-response', true, 1],
        ['support-ticket', true, 1],
      ],
    );
    const names = exampleRpcs.map((r) => r.name);
    assert.equal(new Set(names).size, names.length);
    for (const name of names) assert.match(name, /^(orders|inventory|payments|shipping|notifications|invoices|crm|incidents|support)\./);
  });

  it('fulfils the sample order: free shipping above 100, charged and shipped by the postal carrier', async () => {
    const { output } = await run('order-fulfilment');
    assert.deepEqual(output, { orderId: 'ord-1001', total: 138, chargeId: 'ch-ord-1001', trackingNumber: 'TRK-ORD-1001', carrier: 'PostalCo' });
  });

  it('approves the sample invoice via the director after the away manager escalates, reminding the approver after a pause', async () => {
    const { runId, output } = await run('invoice-approval');
    assert.deepEqual(output, {
      invoiceId: 'inv-2024-0042',
      approved: true,
      decidedBy: 'dana.director@example.com',
      comment: 'approved by the director within their limit of 100000',
      route: 'director',
      escalated: true,
      escalationReason: 'the manager of CC-ENG (lin.eng-manager@example.com) is out of office',
      reminderSent: true,
      checks: { creditAvailable: 37500, riskScore: 10, budgetRemaining: 26800 },
    });
    const detail = await closedRun(runId);
    assert.equal(detail.status, 'COMPLETED');
    const byInstance = new Map(detail.steps.map((s) => [s.stepInstance, s]));
    assert.equal(byInstance.get('manager-approval')?.status, 'FAILED');
    assert.equal(byInstance.get('manager-approval')?.error?.type, 'ApproverUnavailable');
    assert.equal(detail.steps.filter((s) => s.stepId === 'manager-approval').length, 1, 'a non-retryable approver failure is tried once');
    assert.equal(byInstance.get('escalate')?.status, 'COMPLETED');
    assert.equal(byInstance.has('director-approval'), false);
    assert.deepEqual(byInstance.get('reminder-delay')?.output, { sleptMs: 1000 });
  });

  it('auto-approves an invoice below 1000 without asking an approver or sending a reminder', async () => {
    const input = {
      ...(example('invoice-approval').sampleInput as object),
      invoiceId: 'inv-2024-0043',
      vendor: { id: 'ven-23', name: 'Contoso Catering', bankAccountChanged: false },
      amount: 480,
      costCenter: 'CC-MKT',
    };
    const { output } = await run('invoice-approval', input);
    assert.deepEqual(output, {
      invoiceId: 'inv-2024-0043',
      approved: true,
      decidedBy: 'auto-approval-policy',
      comment: 'below the auto-approval threshold of 1000 EUR',
      route: 'auto',
      escalated: false,
      escalationReason: null,
      reminderSent: false,
      checks: { creditAvailable: 1000, riskScore: 10, budgetRemaining: 29520 },
    });
  });

  it('fails an invoice from a blocked vendor at the parallel checks, with the credit branch error', async () => {
    const input = { ...(example('invoice-approval').sampleInput as object), invoiceId: 'inv-2024-0044', vendor: { id: 'blocked-99', name: 'Shady Ltd' } };
    const started = await env.pinflow.start({ definition: 'invoice-approval', input });
    const err = await env.pinflow.result(started.runId).then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'BranchFailed');
    assert.match(err.cause.message, /vendor blocked-99 is blocked for payments/);
    const detail = await closedRun(started.runId);
    assert.equal(detail.status, 'FAILED');
    assert.equal(detail.error?.stepId, 'checks');
    const failures = (detail.error?.details as { failures: Array<{ branch: string; error: { type: string } }> }).failures;
    assert.deepEqual(
      failures.map((f) => [f.branch, f.error.type]),
      [['credit', 'VendorBlocked']],
    );
    assert.equal(detail.steps.some((s) => s.stepId === 'amount-band'), false);
  });

  it('imports the valid customer rows and reports each invalid row by its index, without retrying it', async () => {
    const { runId, output } = await run('customer-import');
    assert.deepEqual(output, {
      batchId: 'crm-import-2024-06-01',
      total: 7,
      imported: 4,
      created: 3,
      updated: 1,
      failed: 3,
      errors: [
        { index: 2, externalId: 'C-003', field: 'name', type: 'InvalidCustomerRow', message: 'row 3 (C-003): name is required' },
        {
          index: 3,
          externalId: 'C-004',
          field: 'email',
          type: 'InvalidCustomerRow',
          message: 'row 4 (C-004): email "alan-at-example.com" is not an email address',
        },
        {
          index: 5,
          externalId: 'C-006',
          field: 'country',
          type: 'InvalidCustomerRow',
          message: 'row 6 (C-006): country "NLD" is not a two-letter ISO code',
        },
      ],
    });
    assert.deepEqual(
      (output as { errors: Array<{ index: number }> }).errors.map((e) => e.index),
      [2, 3, 5],
    );

    const detail = await closedRun(runId);
    assert.equal(detail.status, 'COMPLETED');
    const importStep = detail.steps.find((s) => s.stepInstance === 'import');
    const results = (importStep?.output as { results: Array<{ customerId: string } | null> }).results;
    assert.deepEqual(
      results.map((r) => r?.customerId ?? null),
      ['cus-c-001', 'cus-c-002', null, null, 'cus-c-005', null, 'cus-c-007'],
    );
    const failedValidations = detail.steps.filter((s) => s.stepId === 'validate-row' && s.status === 'FAILED');
    assert.deepEqual(failedValidations.map((s) => [s.attempt, s.error?.type]), [
      [1, 'InvalidCustomerRow'],
      [1, 'InvalidCustomerRow'],
      [1, 'InvalidCustomerRow'],
    ]);
    assert.equal(detail.steps.filter((s) => s.stepId === 'upsert-customer').length, 4);
  });

  it('writes a postmortem on its own from its sample input, scheduling a review for a SEV1', async () => {
    const { output } = await run('incident-postmortem');
    assert.deepEqual(output, {
      docId: 'pm-inc-1042',
      url: 'https://docs.example.com/postmortems/pm-inc-1042',
      firstAlertAt: '2024-06-01T09:11:00.000Z',
      timelineEvents: 3,
      reviewMeetingId: 'review-INC-1042',
      reviewAt: '2024-06-03T15:00:00.000Z',
    });
  });

  it('responds to the sample incident: pages the on-call and runs the postmortem as a child run linked to its parent', async () => {
    const { runId, output } = await run('incident-response');
    const postmortem = {
      docId: 'pm-inc-1042',
      url: 'https://docs.example.com/postmortems/pm-inc-1042',
      firstAlertAt: '2024-06-01T09:11:00.000Z',
      timelineEvents: 3,
      reviewMeetingId: 'review-INC-1042',
      reviewAt: '2024-06-03T15:00:00.000Z',
    };
    assert.deepEqual(output, {
      incidentId: 'INC-1042',
      severity: 'SEV1',
      team: 'payments',
      runbook: 'https://runbooks.example.com/checkout-api',
      response: { paged: true, pageId: 'page-INC-1042-payments', responder: 'ravi@example.com', fallbackChannel: null, fallbackMessageId: null },
      postmortem,
    });

    const parent = await eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status === 'COMPLETED' && r.children.length > 0 ? r : undefined;
    });
    assert.equal(parent.children.length, 1);
    const child = parent.children[0]!;
    assert.equal(child.definition, 'incident-postmortem');
    assert.equal(child.parentRunId, runId);
    assert.equal(child.parentStep, 'postmortem');
    const [latestPostmortem] = await env.pinflow.listVersions('incident-postmortem');
    assert.equal(child.version, latestPostmortem!.hash, "the child runs the postmortem's latest version");
    assert.deepEqual(await env.pinflow.result(child.id), postmortem);
    assert.equal(parent.steps.some((s) => s.stepId === 'notify-fallback'), false);
  });

  it('falls back to a channel notification when the owning team has no on-call rotation, and still writes the postmortem', async () => {
    const input = {
      incidentId: 'INC-1043',
      service: 'legacy-reports',
      title: 'Nightly revenue report missing',
      errorRate: 0.02,
      customerImpact: false,
      detectedAt: '2024-06-02T04:30:00.000Z',
    };
    const { runId, output } = await run('incident-response', input);
    assert.deepEqual(output, {
      incidentId: 'INC-1043',
      severity: 'SEV3',
      team: 'data',
      runbook: 'https://runbooks.example.com/legacy-reports',
      response: { paged: false, pageId: null, responder: null, fallbackChannel: '#inc-data', fallbackMessageId: 'msg-INC-1043-inc-data' },
      postmortem: {
        docId: 'pm-inc-1043',
        url: 'https://docs.example.com/postmortems/pm-inc-1043',
        firstAlertAt: '2024-06-02T04:27:00.000Z',
        timelineEvents: 3,
        reviewMeetingId: null,
        reviewAt: null,
      },
    });
    const detail = await closedRun(runId);
    assert.equal(detail.status, 'COMPLETED');
    const page = detail.steps.filter((s) => s.stepId === 'page-oncall');
    assert.deepEqual(
      page.map((s) => [s.status, s.error?.type, s.error?.message]),
      [['FAILED', 'NoOnCallRotation', 'team data has no on-call rotation']],
    );
    const fallback = detail.steps.find((s) => s.stepId === 'notify-fallback');
    assert.equal(fallback?.status, 'COMPLETED');
    assert.deepEqual(fallback?.input, {
      channel: '#inc-data',
      incidentId: 'INC-1043',
      text: '[SEV3] Nightly revenue report missing: paging failed (NoOnCallRotation: team data has no on-call rotation), please pick this up here',
    });
  });
  it('support-ticket waits for the customer reply: an agent reply is ignored by the match filter, the customer reply resumes it', async () => {
    const ticketId = `TCK-${Date.now()}`;
    const { runId } = await env.pinflow.start({ definition: 'support-ticket', input: { ...(example('support-ticket').sampleInput as object), ticketId } });
    await eventually(async () => (await env.pinflow.events.listWaits({ event: 'ticket.replied', correlationKey: ticketId })).length === 1, { what: 'the reply wait' });
    const agent = await env.pinflow.submitEvent({ name: 'ticket.replied', correlationKey: ticketId, payload: { author: 'agent', text: 'bump' } });
    assert.deepEqual(agent.runIds, [runId]);
    const customer = await env.pinflow.submitEvent({ name: 'ticket.replied', correlationKey: ticketId, payload: { author: 'customer', text: 'Order 5531, thanks' } });
    assert.deepEqual(await env.pinflow.result(runId), { ticketId, resolution: 'answered', reply: 'Order 5531, thanks', replyEventId: customer.eventId });
    const detail = await closedRun(runId);
    assert.deepEqual(detail.steps.find((s) => s.stepId === 'close-answered')?.output, { ticketId, status: 'closed', resolution: 'answered' });
  });
});
