/**
 * Records the replay corpus: complete histories of representative runs,
 * written to test/histories/<release>-<case>.json. Run with
 * `npm run histories:record` (after `npm run build`) and commit the new files.
 * A case already recorded by any release is skipped: histories from earlier
 * releases are never overwritten, and each case is recorded once, by the
 * release that introduced it. test/replay.test.ts replays every
 * file against the current interpreter, so a change to the command sequence
 * of an existing history fails CI unless it is gated with `patched()`.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../../app/config';
import { startDevServer } from '../../app/dev-server';
import { projectRoot } from '../../db/paths';
import { findConfiguredTemporalCli } from '../../app/temporal-cli';
import { singleRpcGraph, sumGraph } from '../fixtures/graphs';
import { Pinflow } from '../../client/pinflow';
import { contractAdd, rpcs } from '../fixtures/rpcs';
import { createEnv, setTemporalAddress, TEST_NAMESPACES } from './harness';
import { firstTaskSplitAfterLocalActivity } from './task-split';
import { CARD, charge, EMAIL, paymentGraph, refundRpc } from '../fixtures/sensitive';
import { testCodec } from '../fixtures/encryption-keys';

const RELEASE = process.env.PINFLOW_HISTORY_RELEASE ?? `v${(require(join(projectRoot(), 'package.json')) as { version: string }).version}`;

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
  const cli = await findConfiguredTemporalCli(config);
  const dir = mkdtempSync(join(tmpdir(), 'pinflow-record-'));
  // Temporal suggests continue-as-new after 150 events here, so the long case records one.
  const server = await startDevServer({
    cliPath: cli.path,
    dbFile: join(dir, 't.sqlite'),
    // PINFLOW_RECORD_PORT: another free frontend port when 17433 is taken (the UI takes port + 1000).
    port: Number(process.env.PINFLOW_RECORD_PORT ?? 17433),
    uiPort: Number(process.env.PINFLOW_RECORD_PORT ?? 17433) + 1000,
    headless: true,
    namespaces: TEST_NAMESPACES,
    dynamicConfig: ['limit.historyCount.suggestContinueAsNew=150'],
  });
  setTemporalAddress(server.address);
  const env = await createEnv('record', [...rpcs, contractAdd]);
  try {
    await env.startWorker(rpcs);
    await env.pinflow.publish('sum', sumGraph);
    await env.pinflow.publish('flaky', singleRpcGraph('test.flaky', { succeedOnAttempt: '2' }));
    await env.pinflow.publish('decline', singleRpcGraph('test.decline', { reason: "'no funds'" }));
    await env.pinflow.publish('child-adder', { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: '1' }, next: 'r' }, { id: 'r', type: 'return', output: 'steps.add.sum' }] });
    await env.pinflow.publish('language', {
      entry: 'pick',
      steps: [
        { id: 'pick', type: 'switch', cases: [{ when: 'input.n > 0', next: 'each' }], default: 'each' },
        {
          id: 'each',
          type: 'forEach',
          items: '[1..3]',
          concurrency: 2,
          body: { entry: 'call', steps: [{ id: 'call', type: 'rpc', rpc: 'math.add', input: { a: 'item', b: 'index' } }] },
          next: 'both',
        },
        {
          id: 'both',
          type: 'parallel',
          branches: {
            left: { entry: 'l', steps: [{ id: 'l', type: 'rpc', rpc: 'text.greet', input: { name: "'left'" } }] },
            right: { entry: 'kid', steps: [{ id: 'kid', type: 'child', definition: 'child-adder', input: { a: '41' } }] },
          },
          next: 'nap',
        },
        { id: 'nap', type: 'sleep', duration: '100ms', next: 'risky' },
        { id: 'risky', type: 'rpc', rpc: 'test.boom', input: { why: "'recorded'" }, onError: 'await' },
        { id: 'await', type: 'wait', event: 'ticket.closed', correlationKey: "'T-1'", timeout: '100ms', onTimeout: 'done' },
        { id: 'done', type: 'return', output: { each: 'steps.each.results.sum', both: 'steps.both', error: 'error.type' } },
      ],
    });
    const cases: Array<[string, Parameters<typeof env.pinflow.start>[0]]> = [
      ['language', { definition: 'language', input: { n: 1 }, runId: 'h-language' }],
      ['completed', { definition: 'sum', input: { a: 3, b: 4, name: 'ada' }, runId: 'h-completed' }],
      ['fail-step', { definition: 'sum', input: { a: 1, b: 1, name: 'x' }, runId: 'h-fail-step' }],
      ['rpc-retried', { definition: 'flaky', runId: 'h-rpc-retried' }],
      ['rpc-non-retryable', { definition: 'decline', runId: 'h-rpc-non-retryable' }],
    ];
    const dir = join(projectRoot(), 'test', 'histories');
    const recorded = new Set(readdirSync(dir).map((f) => f.replace(/^v[^-]+-/, '').replace(/\.json$/, '')));
    /** Saves one execution: the first one (a migration's continue-as-new starts a second). */
    const save = (name: string, runId: string, temporalRunId: string, namespace = env.namespace) => {
      // The CLI's JSON export is the format the UI downloads and the SDK replays.
      const res = spawnSync(cli.path, ['workflow', 'show', '--workflow-id', runId, '--run-id', temporalRunId, '--namespace', namespace, '--address', server.address, '--output', 'json'], {
        encoding: 'utf8',
      });
      if (res.status !== 0) throw new Error(`temporal workflow show failed: ${res.stderr}`);
      const history = JSON.parse(res.stdout) as { events: unknown[] };
      const file = join(dir, `${RELEASE}-${name}.json`);
      if (existsSync(file)) throw new Error(`refusing to overwrite ${file}`);
      writeFileSync(file, `${JSON.stringify(history, null, 2)}\n`);
      console.log(`recorded ${file} (${history.events.length} events)`);
    };
    const stalled = async (runId: string) => {
      for (;;) {
        if ((await env.pinflow.getRun(runId)).status === 'STALLED') return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // Stalls and decisions (0.3.0): a run pinned to contract.add, served by a deployment without it.
    const publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, contractAdd] });
    const pinned = { entry: 'greet', steps: [
      { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: "'ada'" }, next: 'call' },
      { id: 'call', type: 'rpc', rpc: 'contract.add', input: { a: '1', b: '2' }, next: 'done' },
      { id: 'done', type: 'return', output: 'steps.call.sum' },
    ] };
    const v1 = await publisher.publish('stalls', pinned);
    const v2 = await publisher.publish('stalls', { ...pinned, steps: [{ ...pinned.steps[0], next: 'add' }, { ...pinned.steps[1], id: 'add', rpc: 'math.add' }, { ...pinned.steps[2], output: 'steps.add.sum' }] });
    const stallCases: Array<[string, (runId: string) => Promise<unknown>]> = [
      ['stall-retry', async (runId) => {
        await env.startWorker([...rpcs, contractAdd]);
        await env.pinflow.resolveStall(runId, { action: 'retry', by: 'recorder' });
      }],
      ['stall-skip', (runId) => env.pinflow.resolveStall(runId, { action: 'skip', by: 'recorder', output: { sum: 3 } })],
      ['stall-cancel', (runId) => env.pinflow.cancel(runId, { by: 'recorder' })],
      ['stall-migrate', (runId) => env.pinflow.migrate(runId, { targetVersion: v2.version, mapping: { call: 'add' }, by: 'recorder' })],
    ];
    for (const [name, decide] of stallCases) {
      if (recorded.has(name)) continue;
      await env.startWorker(rpcs);
      const run = await env.pinflow.start({ version: v1.version, runId: `h-${name}` });
      await stalled(run.runId);
      await decide(run.runId);
      await env.pinflow.result(run.runId).catch(() => undefined);
      save(name, run.runId, run.temporalRunId);
    }
    await env.startWorker(rpcs);

    // Concurrent branches whose order of commands depends on the microtask
    // schedule (0.5.0 check, recorded by the 0.4.0 interpreter): heavy
    // branches run one assign with a long sum then a timer; the light branch
    // runs ten small assigns then an activity. Any extra microtask per step
    // moves the light branch's activity among the heavy branches' timers, and
    // replay fails on the command type.
    if (!recorded.has('fan-out-ticks')) {
      const branches: Record<string, { entry: string; steps: unknown[] }> = {};
      for (let j = 1; j <= 30; j++) {
        const sum = Array.from({ length: j }, () => '1').join(' + ');
        const name = `heavy${String(j).padStart(2, '0')}`;
        branches[name] = { entry: `${name}h`, steps: [{ id: `${name}h`, type: 'assign', set: { x: sum }, next: `${name}nap` }, { id: `${name}nap`, type: 'sleep', duration: '10ms' }] };
      }
      branches.light = {
        entry: 'l1',
        steps: [
          ...Array.from({ length: 10 }, (_, i) => ({ id: `l${i + 1}`, type: 'assign', set: { [`v${i}`]: `${i}` }, next: i < 9 ? `l${i + 2}` : 'call' })),
          { id: 'call', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '2' } },
        ],
      };
      await env.pinflow.publish('fan-out-ticks', { entry: 'all', steps: [{ id: 'all', type: 'parallel', branches, next: 'done' }, { id: 'done', type: 'return', output: 'steps.all.light' }] });
      const run = await env.pinflow.start({ definition: 'fan-out-ticks', runId: 'h-fan-out-ticks' });
      await env.pinflow.result(run.runId);
      save('fan-out-ticks', run.runId, run.temporalRunId);
    }

    // A run migrated between steps (0.3.0): requested during a top-level sleep, applied at the boundary.
    if (!recorded.has('migrate-between-steps')) {
      const from = await env.pinflow.publish('between', { entry: 'nap', steps: [
        { id: 'nap', type: 'sleep', duration: '1s', next: 'after' },
        { id: 'after', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '1' }, next: 'done' },
        { id: 'done', type: 'return', output: "'v1'" },
      ] });
      const to = await env.pinflow.publish('between', { entry: 'after', steps: [
        { id: 'after', type: 'rpc', rpc: 'math.add', input: { a: '2', b: '2' }, next: 'done' },
        { id: 'done', type: 'return', output: "'v2'" },
      ] });
      const run = await env.pinflow.start({ version: from.version, runId: 'h-migrate-between-steps' });
      for (;;) {
        if ((await env.pinflow.state(run.runId)).cursor === 'nap') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await env.pinflow.migrate(run.runId, { targetVersion: to.version, by: 'recorder' });
      await env.pinflow.result(run.runId);
      save('migrate-between-steps', run.runId, run.temporalRunId);
    }

    // A long run: 40 sequential steps continue as new once Temporal suggests it.
    if (!recorded.has('continue-as-new')) {
      const steps: unknown[] = Array.from({ length: 40 }, (_, i) => ({ id: `s${i}`, type: 'rpc', rpc: 'math.add', input: { a: `${i}`, b: '1' }, next: i === 39 ? 'done' : `s${i + 1}` }));
      steps.push({ id: 'done', type: 'return', output: 'steps.s39.sum' });
      await env.pinflow.publish('long', { entry: 's0', steps });
      const run = await env.pinflow.start({ definition: 'long', runId: 'h-continue-as-new' });
      await env.pinflow.result(run.runId);
      save('continue-as-new', run.runId, run.temporalRunId);
    }

    // Events (0.4.0): waits resumed through the correlation index.
    const waitingOn = async (runId: string, count: number) => {
      for (;;) {
        if ((await env.pinflow.events.listWaits({ runId })).length === count) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    if (!recorded.has('event-wait')) {
      // An ignored event (the filter), a matching one, then a second wait that times out onto its edge.
      await env.pinflow.publish('event-wait', { entry: 'closed', steps: [
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', match: "event.payload.resolution = 'fixed'", timeout: '1h', saveAs: 'closed', next: 'greet' },
        { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: 'vars.closed.payload.by' }, next: 'reopened' },
        { id: 'reopened', type: 'wait', event: 'ticket.reopened', correlationKey: 'input.ticket', timeout: '200ms', onTimeout: 'done' },
        { id: 'done', type: 'return', output: { by: 'vars.closed.payload.by', greeting: 'steps.greet.greeting' } },
      ] });
      const run = await env.pinflow.start({ definition: 'event-wait', input: { ticket: 'T-1' }, runId: 'h-event-wait' });
      await waitingOn(run.runId, 1);
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-1', payload: { resolution: 'wontfix', by: 'nobody' }, eventId: 'h-e1' });
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-1', payload: { resolution: 'fixed', by: 'ada' }, eventId: 'h-e2' });
      await env.pinflow.result(run.runId);
      save('event-wait', run.runId, run.temporalRunId);
    }
    if (!recorded.has('event-wait-foreach')) {
      // Concurrent waits in one run, each on its own key; one event arrives twice.
      await env.pinflow.publish('event-foreach', { entry: 'each', steps: [
        { id: 'each', type: 'forEach', items: 'input.tickets', concurrency: 3, body: { entry: 'w', steps: [
          { id: 'w', type: 'wait', event: 'ticket.closed', correlationKey: 'item', timeout: '1h' },
        ] }, next: 'done' },
        { id: 'done', type: 'return', output: 'steps.each.results.payload.n' },
      ] });
      const run = await env.pinflow.start({ definition: 'event-foreach', input: { tickets: ['A', 'B', 'C'] }, runId: 'h-event-wait-foreach' });
      await waitingOn(run.runId, 3);
      for (const [i, key] of ['C', 'A', 'B'].entries()) await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: key, payload: { n: i }, eventId: `h-f${key}` });
      await env.pinflow.result(run.runId);
      save('event-wait-foreach', run.runId, run.temporalRunId);
    }
    if (!recorded.has('event-migrate-carry')) {
      // A migration at a wait and an event in the same workflow task: the event is carried over.
      const waitV1 = { entry: 'closed', steps: [
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', saveAs: 'closed', next: 'done' },
        { id: 'done', type: 'return', output: "'v1'" },
      ] };
      const from = await env.pinflow.publish('event-carry', waitV1);
      const to = await env.pinflow.publish('event-carry', { ...waitV1, steps: [waitV1.steps[0], { id: 'done', type: 'return', output: 'vars.closed.payload.by' }] });
      const run = await env.pinflow.start({ version: from.version, input: { ticket: 'T-9' }, runId: 'h-event-migrate-carry' });
      await waitingOn(run.runId, 1);
      await env.stopWorker();
      const migrating = env.pinflow.migrate(run.runId, { targetVersion: to.version, by: 'recorder' });
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-9', payload: { by: 'carried' }, eventId: 'h-c1' });
      await new Promise((r) => setTimeout(r, 1500));
      await env.startWorker(rpcs);
      await migrating;
      await env.pinflow.result(run.runId);
      save('event-migrate-carry', run.runId, run.temporalRunId);
    }

    // Run-level projection as local activities (0.4.0): a completed and a failed run.
    for (const [name, input] of [['local-projection-completed', { a: 3, b: 4, name: 'ada' }], ['local-projection-failed', { a: 1, b: 1, name: 'x' }]] as const) {
      if (recorded.has(name)) continue;
      const run = await env.pinflow.start({ definition: 'sum', input, runId: `h-${name}` });
      await env.pinflow.result(run.runId).catch(() => undefined);
      save(name, run.runId, run.temporalRunId);
    }

    // The correlation-key rule (0.5.0): a wait whose key is over the limit fails its step, behind its patch marker.
    if (!recorded.has('wait-key-too-long')) {
      await env.pinflow.publish('wait-key-too-long', { entry: 'closed', steps: [
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', next: 'done' },
        { id: 'done', type: 'return', output: "'unreachable'" },
      ] });
      const run = await env.pinflow.start({ definition: 'wait-key-too-long', input: { ticket: 'K'.repeat(600) }, runId: 'h-wait-key-too-long' });
      await env.pinflow.result(run.runId).catch(() => undefined);
      save('wait-key-too-long', run.runId, run.temporalRunId);
    }

    // Buffered events (0.6.0): an event with a ttl sent while the run waits at
    // a gate is consumed by the wait that opens after it (consumeBuffered,
    // behind its patch marker).
    if (!recorded.has('event-buffer')) {
      await env.pinflow.publish('event-buffer', { entry: 'gate', steps: [
        { id: 'gate', type: 'wait', event: 'gate.open', correlationKey: 'input.ticket', timeout: '1h', next: 'closed' },
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', match: "event.payload.by != 'nobody'", timeout: '1h', saveAs: 'closed', next: 'done' },
        { id: 'done', type: 'return', output: 'vars.closed.payload.by' },
      ] });
      const run = await env.pinflow.start({ definition: 'event-buffer', input: { ticket: 'T-B' }, runId: 'h-event-buffer' });
      await waitingOn(run.runId, 1);
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-B', payload: { by: 'nobody' }, eventId: 'h-b0', ttl: '1h' });
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-B', payload: { by: 'early' }, eventId: 'h-b1', ttl: '1h' });
      await env.pinflow.submitEvent({ name: 'gate.open', correlationKey: 'T-B', eventId: 'h-g1' });
      await env.pinflow.result(run.runId);
      save('event-buffer', run.runId, run.temporalRunId);
    }

    // Expression guards (0.6.0): an expression over the run's budget and a value
    // Postgres cannot store each fail their step, behind their patch marker;
    // a forEach over the run's item limit fails before its first item.
    const guardCases: Array<[string, unknown, unknown]> = [
      ['expression-budget', { entry: 'compute', steps: [
        { id: 'compute', type: 'assign', set: { x: '($f := function($x){ $f($x) }; $f(input.x))' }, next: 'done' },
        { id: 'done', type: 'return', output: 'vars.x' },
      ] }, { x: 1 }],
      ['value-not-storable', { entry: 'compute', steps: [
        { id: 'compute', type: 'assign', set: { note: '{"lines": ["ok", $decodeUrlComponent(input.code)]}' }, next: 'done' },
        { id: 'done', type: 'return', output: 'vars.note' },
      ] }, { code: '%00' }],
      ['foreach-too-many-items', { entry: 'each', steps: [
        { id: 'each', type: 'forEach', items: '[1..input.n]', body: { entry: 'b', steps: [{ id: 'b', type: 'assign', set: { y: 'item' } }] }, next: 'done' },
        { id: 'done', type: 'return', output: "'unreachable'" },
      ] }, { n: 20_000 }],
    ];
    for (const [name, graph, input] of guardCases) {
      if (recorded.has(name)) continue;
      await env.pinflow.publish(name, graph);
      const run = await env.pinflow.start({ definition: name, input, runId: `h-${name}` });
      await env.pinflow.result(run.runId).catch(() => undefined);
      save(name, run.runId, run.temporalRunId);
    }

    // Flags decided at start (0.7.0): one marker first, then no patched() call
    // at all. The first case is a run queried before its first workflow task
    // (no worker polls yet) so that the task may be split after the
    // run-started local activity: up to 12 tries for a split one, else the
    // last run is kept (its commands are the same either way).
    if (!recorded.has('flags-at-start-split')) {
      await env.pinflow.publish('flags-at-start', { entry: 'gate', steps: [
        { id: 'gate', type: 'wait', event: 'gate.open', correlationKey: 'input.ticket', timeout: '1h', next: 'add' },
        { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.n', b: '1' }, next: 'done' },
        { id: 'done', type: 'return', output: 'steps.add.sum' },
      ] });
      for (let i = 0; i < 12; i++) {
        await env.stopWorker();
        const run = await env.pinflow.start({ definition: 'flags-at-start', input: { ticket: `T-S${i}`, n: i }, runId: `h-flags-at-start-split-${i}` });
        let querying = true;
        const hammer = (async () => {
          while (querying) await env.pinflow.state(run.runId).catch(() => undefined);
        })();
        await env.startWorker(rpcs);
        await waitingOn(run.runId, 1);
        querying = false;
        await hammer;
        await env.pinflow.submitEvent({ name: 'gate.open', correlationKey: `T-S${i}`, eventId: `h-s${i}` });
        await env.pinflow.result(run.runId);
        const history = await env.client.workflow.getHandle(run.runId).fetchHistory();
        const split = firstTaskSplitAfterLocalActivity(history);
        if (split || i === 11) {
          console.log(`flags-at-start-split: try ${i + 1}, first task ${split ? 'split' : 'not split'} after the local activity`);
          save('flags-at-start-split', run.runId, run.temporalRunId);
          break;
        }
      }
    }
    if (!recorded.has('flags-at-start-stall-retry')) {
      await env.startWorker(rpcs);
      const run = await env.pinflow.start({ version: v1.version, runId: 'h-flags-at-start-stall-retry' });
      await stalled(run.runId);
      await env.startWorker([...rpcs, contractAdd]);
      await env.pinflow.resolveStall(run.runId, { action: 'retry', by: 'recorder' });
      await env.pinflow.result(run.runId);
      save('flags-at-start-stall-retry', run.runId, run.temporalRunId);
      await env.startWorker(rpcs);
    }

    // The run's story (0.7.0, flag 10): status, current step and stall reason
    // upserted as they change; summaries on activities and timers, current
    // details (user metadata, not compared on replay).
    if (!recorded.has('run-story-stall')) {
      await env.startWorker(rpcs);
      const run = await env.pinflow.start({ version: v1.version, runId: 'h-run-story-stall' });
      await stalled(run.runId);
      await env.pinflow.resolveStall(run.runId, { action: 'skip', by: 'recorder', output: { sum: 3 } });
      await env.pinflow.result(run.runId);
      save('run-story-stall', run.runId, run.temporalRunId);
    }
    if (!recorded.has('run-story-wait')) {
      await env.pinflow.publish('run-story-wait', { entry: 'nap', steps: [
        { id: 'nap', type: 'sleep', duration: '50ms', next: 'closed' },
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', saveAs: 'closed', next: 'greet' },
        { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: 'vars.closed.payload.by' }, next: 'reopened' },
        { id: 'reopened', type: 'wait', event: 'ticket.reopened', correlationKey: 'input.ticket', timeout: '200ms', onTimeout: 'done' },
        { id: 'done', type: 'return', output: 'steps.greet.greeting' },
      ] });
      const run = await env.pinflow.start({ definition: 'run-story-wait', input: { ticket: 'T-RS' }, runId: 'h-run-story-wait' });
      await waitingOn(run.runId, 1);
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-RS', payload: { by: 'ada' }, eventId: 'h-rs1' });
      await env.pinflow.result(run.runId);
      save('run-story-wait', run.runId, run.temporalRunId);
    }
    // Since 0.8.0 (flag 11): a run paused at a top-level step boundary, held
    // (PinflowStatus=PAUSED, a projection activity), then resumed; and a run of
    // a paused definition that starts paused, held before its first step.
    const projectedStatus = async (runId: string, status: string) => {
      for (;;) {
        if ((await env.pinflow.getRun(runId).catch(() => undefined))?.status === status) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const pauseGraph = { entry: 'nap', steps: [
      { id: 'nap', type: 'sleep', duration: '300ms', next: 'greet' },
      { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: "'ada'" }, next: 'done' },
      { id: 'done', type: 'return', output: 'steps.greet.greeting' },
    ] };
    if (!recorded.has('pause-resume')) {
      await env.startWorker(rpcs);
      await env.pinflow.publish('pause-resume', pauseGraph);
      const run = await env.pinflow.start({ definition: 'pause-resume', runId: 'h-pause-resume' });
      for (;;) {
        if ((await env.pinflow.state(run.runId).catch(() => undefined))?.active.includes('nap')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await env.pinflow.pause(run.runId, { by: 'recorder', reason: 'recording' });
      await projectedStatus(run.runId, 'PAUSED');
      await env.pinflow.resume(run.runId, { by: 'recorder' });
      await env.pinflow.result(run.runId);
      save('pause-resume', run.runId, run.temporalRunId);
    }
    if (!recorded.has('pause-definition-start')) {
      await env.startWorker(rpcs);
      await env.pinflow.publish('pause-definition', pauseGraph);
      await env.pinflow.pauseDefinition('pause-definition', { by: 'recorder', reason: 'recording' });
      const run = await env.pinflow.start({ definition: 'pause-definition', runId: 'h-pause-definition-start' });
      await projectedStatus(run.runId, 'PAUSED');
      await env.pinflow.resumeDefinition('pause-definition', { by: 'recorder' });
      await env.pinflow.result(run.runId);
      save('pause-definition-start', run.runId, run.temporalRunId);
    }
    // Since 0.9.0 (flag 16): a plain run records one patch marker, the release's, and no current-step upsert per rpc step.
    if (!recorded.has('release-marker-sequential')) {
      await env.startWorker(rpcs);
      const run = await env.pinflow.start({ definition: 'sum', input: { a: 2, b: 5, name: 'eve' }, runId: 'h-release-marker-sequential' });
      await env.pinflow.result(run.runId);
      save('release-marker-sequential', run.runId, run.temporalRunId);
    }
    // Since 0.9.0 (flag 15, on with the release marker, flag 16): PinflowCurrentStep names the step a run rests at: a
    // top-level rpc step only once it stalls (one upsert with the status), a wait or sleep as it starts, cleared by the
    // rpc step after a wait.
    if (!recorded.has('current-step-at-rest-stall')) {
      await env.startWorker(rpcs); // without contract.add: the run stalls at 'call' (rpc_missing)
      const run = await env.pinflow.start({ version: v1.version, runId: 'h-current-step-at-rest-stall' });
      await stalled(run.runId);
      await env.pinflow.resolveStall(run.runId, { action: 'skip', by: 'recorder', output: { sum: 3 } });
      await env.pinflow.result(run.runId);
      save('current-step-at-rest-stall', run.runId, run.temporalRunId);
    }
    if (!recorded.has('current-step-at-rest-wait')) {
      await env.startWorker(rpcs);
      await env.pinflow.publish('current-step-at-rest-wait', { entry: 'nap', steps: [
        { id: 'nap', type: 'sleep', duration: '50ms', next: 'closed' },
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', saveAs: 'closed', next: 'greet' },
        { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: 'vars.closed.payload.by' }, next: 'done' },
        { id: 'done', type: 'return', output: 'steps.greet.greeting' },
      ] });
      const run = await env.pinflow.start({ definition: 'current-step-at-rest-wait', input: { ticket: 'T-CS' }, runId: 'h-current-step-at-rest-wait' });
      await waitingOn(run.runId, 1);
      await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'T-CS', payload: { by: 'ada' }, eventId: 'h-cs1' });
      await env.pinflow.result(run.runId);
      save('current-step-at-rest-wait', run.runId, run.temporalRunId);
    }

    // Synchronous expressions (0.9.0, FLAGS.SYNC_EXPRESSIONS): control steps, a forEach (two lanes) and a
    // parallel whose mappings are in the sync subset, one that leaves it at run time (an array on a path)
    // and one outside it ($sum), so the new interleaving of concurrent branches is on record.
    if (!recorded.has('sync-expressions-fan-out')) {
      await env.pinflow.publish('sync-expressions', {
        entry: 'init',
        steps: [
          { id: 'init', type: 'assign', set: { x: 'input.n', label: '"run-" & input.n' }, next: 'check' },
          { id: 'check', type: 'if', condition: 'vars.x % 2 = 0 and input.flag', then: 'each', else: 'each' },
          {
            id: 'each',
            type: 'forEach',
            items: 'input.list',
            concurrency: 2,
            body: {
              entry: 'twice',
              steps: [
                { id: 'twice', type: 'assign', set: { y: 'item * 2' }, next: 'call' },
                { id: 'call', type: 'rpc', rpc: 'math.add', input: { a: 'vars.y', b: 'index + vars.x' } },
              ],
            },
            next: 'both',
          },
          {
            id: 'both',
            type: 'parallel',
            branches: {
              left: { entry: 'l', steps: [{ id: 'l', type: 'rpc', rpc: 'text.greet', input: { name: 'vars.label' } }] },
              right: {
                entry: 'r1',
                steps: [
                  { id: 'r1', type: 'assign', set: { z: 'vars.x > 2 ? "big" : "small"' }, next: 'r2' },
                  { id: 'r2', type: 'rpc', rpc: 'math.add', input: { a: 'input.deep.items.n', b: '$sum(input.list)' } },
                ],
              },
            },
            next: 'done',
          },
          { id: 'done', type: 'return', output: { each: 'steps.each.results.sum', both: 'steps.both', x: 'vars.x' } },
        ],
      });
      const run = await env.pinflow.start({ definition: 'sync-expressions', input: { n: 4, flag: true, list: [1, 2, 3], deep: { items: [{ n: 1 }] } }, runId: 'h-sync-expressions-fan-out' });
      await env.pinflow.result(run.runId);
      save('sync-expressions-fan-out', run.runId, run.temporalRunId);
    }

    // Since 0.9.0 (flag 14): rpc steps the walk awaits directly, in concurrent
    // forEach lanes and parallel branches with control steps between them,
    // where a change of microtask schedule would reorder the commands.
    if (!recorded.has('direct-rpc-fan-out')) {
      await env.startWorker(rpcs);
      await env.pinflow.publish('direct-rpc-fan-out', {
        entry: 'each',
        steps: [
          {
            id: 'each',
            type: 'forEach',
            items: '[1..4]',
            concurrency: 3,
            body: {
              entry: 'bump',
              steps: [
                { id: 'bump', type: 'assign', set: { n: 'item * 10' }, next: 'add' },
                { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'vars.n', b: 'index' }, next: 'again' },
                { id: 'again', type: 'rpc', rpc: 'math.add', input: { a: 'steps.add.sum', b: '1' } },
              ],
            },
            next: 'both',
          },
          {
            id: 'both',
            type: 'parallel',
            branches: {
              left: { entry: 'l1', steps: [{ id: 'l1', type: 'rpc', rpc: 'text.greet', input: { name: "'left'" }, next: 'l2' }, { id: 'l2', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '2' } }] },
              right: {
                entry: 'r0',
                steps: [
                  { id: 'r0', type: 'if', condition: '1 < 2', then: 'r1', else: 'r1' },
                  { id: 'r1', type: 'rpc', rpc: 'math.add', input: { a: '3', b: '4' }, next: 'r2' },
                  { id: 'r2', type: 'rpc', rpc: 'text.greet', input: { name: "'right'" } },
                ],
              },
            },
            next: 'done',
          },
          { id: 'done', type: 'return', output: { each: 'steps.each.results.sum', both: 'steps.both' } },
        ],
      });
      const run = await env.pinflow.start({ definition: 'direct-rpc-fan-out', runId: 'h-direct-rpc-fan-out' });
      await env.pinflow.result(run.runId);
      save('direct-rpc-fan-out', run.runId, run.temporalRunId);
    }

    for (const [name, opts] of cases) {
      if (recorded.has(name)) continue;
      const run = await env.pinflow.start(opts);
      await env.pinflow.result(run.runId).catch(() => undefined);
      save(name, run.runId, run.temporalRunId);
    }

    // Payload encryption (0.8.0): every payload encrypted with the fixed TEST key (test/fixtures/encryption-keys.ts).
    if (!recorded.has('encrypted')) {
      const enc = await createEnv('record-enc', [charge, refundRpc()], {}, { codec: testCodec() });
      try {
        await enc.startWorker([charge]);
        await enc.pinflow.publish('payment', paymentGraph);
        const run = await enc.pinflow.start({ definition: 'payment', input: { card: CARD, email: EMAIL, amount: 5 }, runId: 'h-encrypted' });
        await enc.pinflow.result(run.runId);
        save('encrypted', run.runId, run.temporalRunId, enc.namespace);
      } finally {
        await enc.stop();
      }
    }
  } finally {
    await env.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
