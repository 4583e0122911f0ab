/**
 * Run-level projection activities and child pinning. The writes (run started,
 * closed, stall, decision, migration, the trail before a continue-as-new) go
 * through the projection writer (projection/writer.ts): waited for briefly,
 * then queued with retries; a write the projection refuses for good is logged
 * with the run id and never fails the activity, so it never keeps a run from
 * closing. The reads the run depends on (the catalog for continue-as-new and
 * child versions) stay synchronous: Temporal retries them.
 */
import { checkCarriedOutputs } from '../catalog/contracts';
import { checkMigrationPosition } from '../graph/compat';
import type { VersionStore } from '../catalog/versions';
import type { ProjectionWrite, ProjectionWriter } from '../projection/writer';
import { continueAsNewMigration, continueAsNewTrailWrite, decisionWrite, migrationWrite, pauseWrite, resumeWrite, runClosedWrite, runStartedWrite, stallWrite } from '../projection/derive';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ChildTarget, ContinueAsNewPlan, ContinueAsNewTarget, MigrationRecord, PauseInfo, ResolvedChild, RunClosed, RunStarted, StallDecision, StallInfo, StepRecord } from '../graph/wire';


export function createProjectionActivities({ writer, catalog }: { writer: ProjectionWriter; catalog: VersionStore }) {
  const project = async (write: ProjectionWrite): Promise<void> => {
    let signal: AbortSignal | undefined;
    try {
      signal = Context.current().cancellationSignal;
    } catch {
      // called outside an activity (tests, scripts)
    }
    await writer.submit(write, signal ? { signal } : {});
  };
  return {
    /**
     * Before a continue-as-new: project pending step records, and with the
     * `latest` policy decide whether the latest version can take the run's
     * state (same checks as migrate). If it cannot, the run stays pinned,
     * so a policy of `latest` never loops on a version that does not fit.
     */
    async planContinueAsNew(p: ContinueAsNewPlan): Promise<ContinueAsNewTarget> {
      await project(continueAsNewTrailWrite(p));
      if (p.policy !== 'latest') return { moved: false, lineage: p.lineage };
      const def = await catalog.getDefinition(p.definition);
      if (!def || def.latestVersion === p.version) return { moved: false, lineage: p.lineage };
      const [target, current] = await Promise.all([catalog.getVersion(def.latestVersion), catalog.getVersion(p.version)]);
      const stay = (why: string): ContinueAsNewTarget => ({ moved: false, stayedBecause: why, lineage: p.lineage });
      if (!target) return stay(`latest version ${def.latestVersion} not found`);
      // The same position check as a migration (graph/compat.ts), with no mapping.
      const position = checkMigrationPosition(current?.graph ?? { steps: [] }, target.graph, target.hash, p.at, undefined, 'next step');
      if (!position.ok) return stay(position.refusal);
      const [misfit] = checkCarriedOutputs(target, p.steps);
      if (misfit) return stay(`the output of step ${misfit.stepId} does not satisfy the latest contract`);
      const migratedAt = new Date().toISOString();
      const lineage = [...p.lineage, { version: p.version, upTo: p.at, migratedAt, by: 'onContinueAsNew: latest' }];
      const migration = continueAsNewMigration(p, target.hash, lineage);
      if (migration) await project(migrationWrite(migration));
      return { moved: true, version: target.hash, graph: target.graph, contracts: target.contracts, lineage };
    },
    async projectRunStarted(r: RunStarted): Promise<void> {
      await project(runStartedWrite(r));
    },
    /**
     * Pin a child run: the exact version, or the definition's latest one at
     * this moment. The result is recorded in the parent's history, so replay
     * never reads the database again.
     */
    async resolveChildVersion(t: ChildTarget): Promise<ResolvedChild> {
      const def = await catalog.getDefinition(t.definition);
      if (!def) throw ApplicationFailure.nonRetryable(`child definition ${JSON.stringify(t.definition)} does not exist`, 'ChildDefinitionNotFound');
      const hash = t.version ?? def.latestVersion;
      const version = await catalog.getVersionOf(t.definition, hash);
      if (!version) {
        const tombstone = await catalog.getTombstone(hash);
        if (tombstone?.definitions.some((d) => d.definition === t.definition)) {
          throw ApplicationFailure.nonRetryable(
            `version ${hash} of definition ${JSON.stringify(t.definition)} was removed from the catalog by the version GC at ${tombstone.removedAt}; publish its graph again to bring it back`,
            'ChildVersionNotFound',
          );
        }
        throw ApplicationFailure.nonRetryable(`version ${hash} was never published under definition ${JSON.stringify(t.definition)}`, 'ChildVersionNotFound');
      }
      return { version: hash, seq: version.seq, graph: version.graph, contracts: version.contracts };
    },
    /** The run stalled: STALLED in the projection, with the reason and the step. */
    async projectStall(p: { runId: string; stall: StallInfo; trail: StepRecord[] }): Promise<void> {
      await project(stallWrite(p));
    },
    /** The run holds paused at a top-level step boundary (FLAGS.PAUSE): PAUSED in the projection. */
    async projectPause(p: { runId: string; pause: PauseInfo; trail: StepRecord[] }): Promise<void> {
      await project(pauseWrite(p));
    },
    /** The run was resumed and goes on: RUNNING in the projection. */
    async projectResume(p: { runId: string; since: string; by: string; reason?: string; resumedAt: string }): Promise<void> {
      await project(resumeWrite(p));
    },
    /** An operator decision was applied by the run: recorded with its outcome; the stall is cleared. */
    async projectDecision(p: { runId: string; decision: StallDecision; decidedAt: string; outcome: string }): Promise<void> {
      await project(decisionWrite(p));
    },
    /** The run migrated to another version (continue-as-new follows): decision, version, lineage. */
    async projectMigration(m: MigrationRecord): Promise<void> {
      await project(migrationWrite(m));
    },
    async projectRunClosed(c: RunClosed): Promise<void> {
      await project(runClosedWrite(c));
    },
  };
}
