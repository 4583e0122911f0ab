/** Reachability from a run's live position (graph/reachability.ts): pure, no server. */
import assert from 'node:assert/strict';
import { reachableFrom, reachableUnknown, type Reachability } from '../graph/reachability';
import type { Subgraph } from '../graph/schema';

const rows = (r: Reachability) => r.rpcs.map((x) => [x.step.id, x.certain]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));

const loop: Subgraph = {
  entry: 'each',
  steps: [
    {
      id: 'each',
      type: 'forEach',
      items: 'input.items',
      body: {
        entry: 'gate',
        steps: [
          { id: 'gate', type: 'wait', event: 'go', correlationKey: "'k'", next: 'call' },
          { id: 'call', type: 'rpc', rpc: 'x.call', next: 'after' },
          { id: 'after', type: 'rpc', rpc: 'x.after' },
        ],
      },
      next: 'tail',
    },
    { id: 'tail', type: 'rpc', rpc: 'x.tail' },
  ],
};

const branchy: Subgraph = {
  entry: 'pick',
  steps: [
    { id: 'pick', type: 'if', condition: 'input.flag', then: 'yes', else: 'no' },
    { id: 'yes', type: 'rpc', rpc: 'x.yes', next: 'end' },
    { id: 'no', type: 'wait', event: 'go', correlationKey: "'k'", next: 'end' },
    { id: 'end', type: 'rpc', rpc: 'x.end', onError: 'rescue' },
    { id: 'rescue', type: 'rpc', rpc: 'x.rescue' },
  ],
};

describe('reachability from the live position', () => {
  it('forEach: the body stays reachable while an item is in flight, though another item completed it', () => {
    const r = reachableFrom(loop, { active: ['each', 'gate[1]'], completed: ['gate[0]', 'call[0]', 'after[0]'], forEachItems: { each: 2 } });
    assert.deepEqual(rows(r), [['after', true], ['call', true], ['tail', true]]);
  });

  it('forEach: items not started yet count (certain when the count is known), and a finished loop counts nothing of its body', () => {
    const r = reachableFrom(loop, { active: ['each'], completed: [], forEachItems: { each: 1 } });
    assert.deepEqual(rows(r), [['after', true], ['call', true], ['tail', true]]);
    const unknown = reachableFrom(loop, { active: ['each'], completed: [] });
    assert.deepEqual(rows(unknown), [['after', false], ['call', false], ['tail', true]]);
    assert.match(unknown.rpcs.find((x) => x.step.id === 'call')!.decidedBy!, /forEach "each"/);
    const done = reachableFrom(loop, { active: ['tail'], completed: ['each', 'gate[0]', 'call[0]', 'after[0]'] });
    assert.deepEqual(rows(done), [['tail', true]]);
  });

  it('a branch already taken excludes the other; onError edges count as possible', () => {
    const r = reachableFrom(branchy, { active: ['no'], completed: ['pick'] });
    assert.deepEqual(rows(r), [['end', true], ['rescue', false]]);
    assert.match(r.rpcs.find((x) => x.step.id === 'rescue')!.decidedBy!, /onError of "end"/);
  });

  it('before the branch: each side is possible, named after the branch step that decides it', () => {
    const r = reachableFrom(branchy, { active: ['pick'], completed: [] });
    assert.deepEqual(rows(r), [['end', true], ['rescue', false], ['yes', false]]);
    assert.match(r.rpcs.find((x) => x.step.id === 'yes')!.decidedBy!, /^if "pick" \(input.flag/);
  });

  it('an active rpc step is the run\'s next RPC; parallel branches not finished count', () => {
    const par: Subgraph = {
      entry: 'both',
      steps: [
        {
          id: 'both',
          type: 'parallel',
          branches: {
            a: { entry: 'a1', steps: [{ id: 'a1', type: 'rpc', rpc: 'x.a1', next: 'a2' }, { id: 'a2', type: 'rpc', rpc: 'x.a2' }] },
            b: { entry: 'b1', steps: [{ id: 'b1', type: 'rpc', rpc: 'x.b1' }] },
          },
        },
      ],
    };
    const r = reachableFrom(par, { active: ['both', 'a1'], completed: ['b1'] });
    assert.deepEqual(rows(r), [['a1', true], ['a2', true]]);
    assert.equal(r.rpcs.find((x) => x.step.id === 'a1')!.activeInstance, 'a1');
  });

  it('position unknown: every rpc step not completed counts, none certain', () => {
    const r = reachableUnknown(branchy, new Set(['pick', 'yes']));
    assert.deepEqual(rows(r), [['end', false], ['rescue', false]]);
  });
});
