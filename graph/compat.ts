/**
 * Compatibility: does a run's position fit another version's graph? Pure and
 * sandbox-safe (no Node, no Ajv): the interpreter's migrate update validator,
 * its between-steps migration at a step boundary, and a client-side migrate
 * pre-check all ask the same question here, so they refuse with one wording.
 */
import type { Step } from './schema';

/** The part of a graph the position check reads: its top-level steps. */
export interface TopLevelSteps {
  steps: ReadonlyArray<Pick<Step, 'id' | 'type'>>;
}

/** Old step id → new step id, for renames. A missing id maps to itself. */
export type StepMapping = Readonly<Record<string, string>>;

/**
 * How the refusal names the run's position: `position` when the run is
 * stalled or waiting at the step, `next step` when it is between steps.
 */
export type PositionWording = 'position' | 'next step';

export type PositionCheck = { ok: true; at: string } | { ok: false; refusal: string };

/**
 * Where a run at top-level step `position` of `current` lands in `target`:
 * the mapped step id (`mapping[position]`, else `position`), which must be a
 * top-level step of the target of the same step type. The refusal carries no
 * `MIGRATION_REFUSED:` prefix; callers add it.
 *
 * @example
 * checkMigrationPosition(v1, v2, hash, 'charge', { charge: 'pay' }, 'position')
 * // { ok: true, at: 'pay' } when v2 has an rpc step `pay` and v1's `charge` is an rpc step
 */
export function checkMigrationPosition(
  current: TopLevelSteps,
  target: TopLevelSteps,
  targetVersion: string,
  position: string,
  mapping: StepMapping | undefined,
  wording: PositionWording,
): PositionCheck {
  const at = mapping?.[position] ?? position;
  const targetStep = target.steps.find((s) => s.id === at);
  if (!targetStep) {
    return {
      ok: false,
      refusal: `the run's ${wording} ${position}${at !== position ? ` (mapped to ${at})` : ''} is not a top-level step of version ${targetVersion}; map it with "mapping": { "${position}": "<step id in the target>" }`,
    };
  }
  const currentStep = current.steps.find((s) => s.id === position);
  if (currentStep && currentStep.type !== targetStep.type) {
    return { ok: false, refusal: `step ${position} is a ${currentStep.type} step but ${at} in the target is a ${targetStep.type} step` };
  }
  return { ok: true, at };
}

/**
 * Which completed steps a migration carries to the target (under their mapped
 * ids) and which it drops (their mapped id is not a top-level step of the target).
 */
export function carriedSteps(target: TopLevelSteps, mapping: StepMapping | undefined, completed: readonly string[]): { carried: string[]; dropped: string[] } {
  const map = mapping ?? {};
  const targetIds = new Set(target.steps.map((s) => s.id));
  return {
    carried: completed.filter((id) => targetIds.has(map[id] ?? id)).map((id) => map[id] ?? id),
    dropped: completed.filter((id) => !targetIds.has(map[id] ?? id)),
  };
}

/** The outputs a migration carries, keyed by their step id in the target. */
export function carriedOutputs(target: TopLevelSteps, mapping: StepMapping | undefined, outputs: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const map = mapping ?? {};
  const targetIds = new Set(target.steps.map((s) => s.id));
  const steps: Record<string, unknown> = {};
  for (const [id, out] of Object.entries(outputs)) if (targetIds.has(map[id] ?? id)) steps[map[id] ?? id] = out;
  return steps;
}
