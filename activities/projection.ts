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
      await project({ kind: 'steps', runId: p.runId, steps: p.trail });
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
      const migration = { runId: p.runId, from: p.version, to: target.hash, upTo: p.at, at: p.at, by: 'onContinueAsNew: latest', stallId: null, decidedAt: migratedAt, lineage, trail: [] };
      await project({ kind: 'migration', runId: p.runId, migration });
      return { moved: true, version: target.hash, graph: target.graph, contracts: target.contracts, lineage };
    },
    async projectRunStarted(r: RunStarted): Promise<void> {
      await project({
        kind: 'runStarted',
        runId: r.runId,
        run: {
        id: r.runId,
        definition: r.definition,
        version: r.version,
        tenant: r.tenant,
        temporalRunId: r.temporalRunId,
        startedAt: r.startedAt,
        input: r.input,
        metadata: r.metadata,
        parent: r.parent,
        },
      });
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
      await project({ kind: 'stall', runId: p.runId, stall: { ...p.stall, details: { message: p.stall.message, ...(p.stall.details as object | undefined) } }, trail: p.trail });
    },
    /** The run holds paused at a top-level step boundary (FLAGS.PAUSE): PAUSED in the projection. */
    async projectPause(p: { runId: string; pause: PauseInfo; trail: StepRecord[] }): Promise<void> {
      await project({ kind: 'pause', runId: p.runId, pause: p.pause, trail: p.trail });
    },
    /** The run was resumed and goes on: RUNNING in the projection. */
    async projectResume(p: { runId: string; since: string; by: string; reason?: string; resumedAt: string }): Promise<void> {
      await project({ kind: 'resume', runId: p.runId, since: p.since });
    },
    /** An operator decision was applied by the run: recorded with its outcome; the stall is cleared. */
    async projectDecision(p: { runId: string; decision: StallDecision; decidedAt: string; outcome: string }): Promise<void> {
      await project({
        kind: 'decision',
        runId: p.runId,
        decision: {
        runId: p.runId,
        stallId: p.decision.stallId,
        action: p.decision.action,
        by: p.decision.by,
        reason: p.decision.reason,
        output: p.decision.output,
        decidedAt: p.decidedAt,
        outcome: p.outcome,
        },
      });
    },
    /** The run migrated to another version (continue-as-new follows): decision, version, lineage. */
    async projectMigration(m: MigrationRecord): Promise<void> {
      await project({ kind: 'migration', runId: m.runId, migration: m });
    },
    async projectRunClosed(c: RunClosed): Promise<void> {
      await project({ kind: 'runClosed', runId: c.runId, closed: c });
    },
  };
}
