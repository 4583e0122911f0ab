import assert from 'node:assert/strict';
import { carriedOutputs, carriedSteps, checkMigrationPosition } from '../graph/compat';

const hash = 'a'.repeat(64);
const v1 = { steps: [{ id: 'greet', type: 'rpc' as const }, { id: 'call', type: 'rpc' as const }, { id: 'after', type: 'return' as const }] };
const v2 = { steps: [{ id: 'greet', type: 'rpc' as const }, { id: 'add', type: 'rpc' as const }, { id: 'after', type: 'assign' as const }] };

describe('compat: a run position in another version (pure)', () => {
  it('lands a position on the same id, or on its mapped id, when that is a top-level step of the same type', () => {
    assert.deepEqual(checkMigrationPosition(v1, v2, hash, 'greet', undefined, 'position'), { ok: true, at: 'greet' });
    assert.deepEqual(checkMigrationPosition(v1, v2, hash, 'call', { call: 'add' }, 'position'), { ok: true, at: 'add' });
  });

  it('refuses a position that is not a top-level step of the target, naming the mapping to add', () => {
    assert.deepEqual(checkMigrationPosition(v1, v2, hash, 'call', undefined, 'position'), {
      ok: false,
      refusal: `the run's position call is not a top-level step of version ${hash}; map it with "mapping": { "call": "<step id in the target>" }`,
    });
    assert.deepEqual(checkMigrationPosition(v1, v2, hash, 'call', { call: 'gone' }, 'next step'), {
      ok: false,
      refusal: `the run's next step call (mapped to gone) is not a top-level step of version ${hash}; map it with "mapping": { "call": "<step id in the target>" }`,
    });
  });

  it('refuses a position whose step type differs in the target', () => {
    assert.deepEqual(checkMigrationPosition(v1, v2, hash, 'after', undefined, 'next step'), {
      ok: false,
      refusal: 'step after is a return step but after in the target is a assign step',
    });
  });

  it('carries completed steps by mapped id and drops the rest', () => {
    assert.deepEqual(carriedSteps(v2, { call: 'add' }, ['greet', 'call', 'old']), { carried: ['greet', 'add'], dropped: ['old'] });
    assert.deepEqual(carriedOutputs(v2, { call: 'add' }, { greet: 1, call: 2, old: 3 }), { greet: 1, add: 2 });
  });
});
