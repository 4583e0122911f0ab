/**
 * check-deploy against real deploys (issue #12): for each change type of the
 * RPC `mx.call` (removed, input widened, input narrowed, output changed,
 * behaviour changed with an equal contract), runs are brought to each
 * position on a worker process with the old RPC module, check-deploy runs
 * against the new manifest, the old worker is stopped (SIGTERM), a worker
 * process with the new module starts, the gates are released, and each run
 * stalls or completes. Per cell: the run is listed as certain exactly when it
 * stalls, and a run that completes is not listed at all (safe).
 *
 * Positions: before the changed step (another RPC in between), right before
 * it (parked at a gate: its input is computable now), parked at it (the old
 * deployment's handler fails it retryably, so the run sits at the step
 * between attempts and its next attempt runs on the new deployment), after
 * it, on the branch not taken, inside a forEach with item 0 done, inside a
 * child run.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manifestOf, type DeployReport } from '../client/check-deploy';
import { RpcRegistry } from '../rpc/registry';
import { matrixRegistries } from './fixtures/matrix-rpcs';
import { createEnv, eventually, exitOf, spawnWorkerProcess, type Env } from './support/harness';

const gate = (id: string, key: string, next: string) => ({ id, type: 'wait', event: 'mx.go', correlationKey: key, timeout: '1h', next });
const callStep = (next: string, n = 'input.n') => ({ id: 'call', type: 'rpc', rpc: 'mx.call', input: { n }, next });
const end = { id: 'end', type: 'return', output: { v: 'steps.call.v' } };

const GRAPHS: Record<string, unknown> = {
  'mx-before': { entry: 'gate', steps: [gate('gate', 'input.key', 'mid'), { id: 'mid', type: 'rpc', rpc: 'mx.ok', input: { n: 'input.n' }, next: 'call' }, callStep('end'), end] },
  'mx-right-before': { entry: 'gate', steps: [gate('gate', 'input.key', 'call'), callStep('end'), end] },
  'mx-at': {
    entry: 'call',
    steps: [{ ...callStep('end'), retry: { maximumAttempts: 1000, initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '2s' } }, end],
  },
  'mx-after': { entry: 'call', steps: [callStep('gate'), gate('gate', 'input.key', 'end'), end] },
  'mx-branch': { entry: 'pick', steps: [{ id: 'pick', type: 'if', condition: 'input.flag', then: 'call', else: 'gate' }, callStep('end'), gate('gate', 'input.key', 'end'), end] },
  'mx-loop': {
    entry: 'each',
    steps: [
      { id: 'each', type: 'forEach', items: 'input.items', body: { entry: 'gate', steps: [gate('gate', "input.key & '-' & $string(index)", 'call'), { id: 'call', type: 'rpc', rpc: 'mx.call', input: { n: 'item' } }] }, next: 'end' },
      { id: 'end', type: 'return', output: { results: 'steps.each.results' } },
    ],
  },
  'mx-kid': { entry: 'gate', steps: [gate('gate', 'input.key', 'call'), callStep('end'), end] },
  'mx-parent': { entry: 'kid', steps: [{ id: 'kid', type: 'child', definition: 'mx-kid', input: { key: 'input.key', n: 'input.n' }, next: 'end' }, { id: 'end', type: 'return', output: { v: 'steps.kid.v' } }] },
};

type Position = 'before' | 'right-before' | 'at' | 'after' | 'branch-not-taken' | 'forEach' | 'child';
const POSITIONS: Position[] = ['forEach', 'branch-not-taken', 'before', 'right-before', 'at', 'after', 'child'];
const DEFINITION: Record<Position, string> = {
  before: 'mx-before',
  'right-before': 'mx-right-before',
  at: 'mx-at',
  after: 'mx-after',
  'branch-not-taken': 'mx-branch',
  forEach: 'mx-loop',
  child: 'mx-parent',
};
type Change = 'removed' | 'widened' | 'narrowed' | 'output' | 'behaviour';
/** What the deploy does to a run at each position: the runs that reach `mx.call` stall unless the change is safe. */
const STALLS: Record<Change, boolean> = { removed: true, widened: false, narrowed: true, output: true, behaviour: false };
const REACHES: Record<Position, boolean> = { before: true, 'right-before': true, at: true, after: false, 'branch-not-taken': false, forEach: true, child: true };
const CHANGES: Array<[Change, string]> = [
  ['removed', 'RPC removed'],
  ['narrowed', 'input narrowed'],
  ['widened', 'input widened'],
  ['output', 'output changed'],
  ['behaviour', 'behaviour changed, contract equal'],
];

/**
 * This matrix found the replay failure that flag 9 (pinflow-9-flags-at-start)
 * fixed: a run queried during its first workflow task could fail every task on
 * the new worker with TMPRL1100 (test/findings/, test/replay-boundaries.test.ts).
 * Set PINFLOW_TEST_DUMP_DIR to keep the history of a run whose wait fails.
 */

describe('check-deploy matrix: certain equals what stalls after a real deploy', function () {
  this.timeout(600_000);
  let env: Env;
  const workers: ChildProcess[] = [];

  before(async () => {
    env = await createEnv('deploymatrix', matrixRegistries.old);
    for (const [name, graph] of Object.entries(GRAPHS)) await env.pinflow.publish(name, graph);
  });
  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await env?.stop();
  });

  for (const [change, title] of CHANGES) {
    describe(title, function () {
      let report: DeployReport;
      const outcome = new Map<Position, string>();
      const runOf = (pos: Position) => `mx-${change}-${pos}`;
      /** The run whose fate the cell is about: for a child, the child run. */
      const subjectOf = (pos: Position) => (pos === 'child' ? `${runOf(pos)}:kid` : runOf(pos));
      const key = (pos: Position) => `${change}-${pos}`;
      const waitingAt = (runId: string, instance: string) =>
        eventually(async () => (await env.pinflow.state(runId)).waiting?.stepInstance === instance, { timeoutMs: 90_000, what: `${runId} waiting at ${instance}` });

      before(async () => {
        const old = spawnWorkerProcess(env, 'matrix-old');
        workers.push(old);
        try {
          for (const pos of POSITIONS) {
            // n = -1 parks the "at" run at mx.call: the old deployment refuses it, retryably.
            await env.pinflow.start({ definition: DEFINITION[pos], runId: runOf(pos), input: { key: key(pos), n: pos === 'at' ? -1 : 1, flag: false, items: [1, 2] } });
          }
          for (const pos of POSITIONS) {
            if (pos === 'forEach') {
              await waitingAt(runOf(pos), 'gate[0]');
              await env.pinflow.submitEvent({ name: 'mx.go', correlationKey: `${key(pos)}-0` });
              await waitingAt(runOf(pos), 'gate[1]');
            } else if (pos === 'at') {
              // Parked: at least one attempt failed on the old deployment, and the step is still in flight.
              await eventually(
                async () => {
                  const [state, run] = await Promise.all([env.pinflow.state(runOf(pos)), env.pinflow.getRun(runOf(pos))]);
                  return state.active.includes('call') && run.steps.some((s) => s.stepId === 'call' && s.status === 'FAILED');
                },
                { timeoutMs: 90_000, what: `${runOf(pos)} parked at call` },
              );
            } else await waitingAt(subjectOf(pos), 'gate');
          }
          report = await env.pinflow.checkDeploy(manifestOf(new RpcRegistry(matrixRegistries[change])));
        } catch (err) {
          // Never leave the old deploy's worker polling into the next change type's runs.
          old.kill('SIGKILL');
          await exitOf(old);
          throw err;
        }
        old.kill('SIGTERM');
        assert.deepEqual(await exitOf(old), { code: 0, signal: null });
        const next = spawnWorkerProcess(env, `matrix-${change}`);
        workers.push(next);
        try {
          for (const pos of POSITIONS) {
            if (pos !== 'at') await env.pinflow.submitEvent({ name: 'mx.go', correlationKey: pos === 'forEach' ? `${key(pos)}-1` : key(pos) });
          }
          for (const pos of POSITIONS) {
            try {
              const status = await eventually(
                async () => {
                  const s = (await env.pinflow.getRun(subjectOf(pos))).status;
                  return s === 'STALLED' || s === 'COMPLETED' ? s : undefined;
                },
                { timeoutMs: 240_000, what: `${subjectOf(pos)} stalled or completed` },
              );
              outcome.set(pos, status);
            } catch (err) {
              // Say where the run is and what the new worker printed (read now, not when the wait began).
              const state = await env.pinflow.state(subjectOf(pos)).catch((e: unknown) => String(e));
              if (process.env.PINFLOW_TEST_DUMP_DIR) {
                const h = await env.client.workflow.getHandle(subjectOf(pos)).fetchHistory();
                writeFileSync(join(process.env.PINFLOW_TEST_DUMP_DIR, `${subjectOf(pos)}.json`), JSON.stringify(h));
              }
              throw new Error(`${(err as Error).message}; state: ${JSON.stringify(state).slice(0, 1000)}; worker (exit ${String(next.exitCode ?? next.signalCode)}): ${next.output.join('').slice(-3000)}`);
            }
          }
        } finally {
          // A failed wait must not leave this deploy's worker polling into the next change type's runs.
          if (next.exitCode === null && next.signalCode === null) next.kill('SIGTERM');
          await exitOf(next);
        }
      });

      for (const pos of POSITIONS) {
        it(`${title} × ${pos}`, () => {
          const id = subjectOf(pos);
          const listed = report.impacts.filter((i) => i.runId === id);
          const stalled = outcome.get(pos) === 'STALLED';
          assert.equal(stalled, STALLS[change] && REACHES[pos], `${id}: ${outcome.get(pos)}`);
          // Listed as certain exactly when it stalls; a run that completes is not listed at all.
          assert.equal(listed.some((i) => i.certain), stalled, JSON.stringify(listed));
          if (!stalled) assert.deepEqual(listed, []);
          else assert.ok(listed.every((i) => i.position === 'live' && i.rpc === 'mx.call'), JSON.stringify(listed));
          if (pos === 'child') assert.deepEqual(report.impacts.filter((i) => i.runId === runOf(pos)), [], 'the parent is not listed: its child is a run of its own');
        });
      }
    });
  }
});
