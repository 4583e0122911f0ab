/** Run-level projection activities (idempotent upserts; Temporal retries them freely) and child pinning. */
import type { ProjectionStore } from '../projection/store';
import { ApplicationFailure } from '@temporalio/activity';
import type { ChildTarget, MigrationRecord, ResolvedChild, RunClosed, RunStarted, StallDecision, StallInfo, StepRecord } from '../workflows/types';

export function createProjectionActivities({ store }: { store: ProjectionStore }) {
  return {
    async projectRunStarted(r: RunStarted): Promise<void> {
      await store.recordRunStarted({
        id: r.runId,
        definition: r.definition,
        version: r.version,
        tenant: r.tenant,
        temporalRunId: r.temporalRunId,
        startedAt: r.startedAt,
        input: r.input,
        metadata: r.metadata,
        parent: r.parent,
      });
    },
    /**
     * Pin a child run: the exact version, or the definition's latest one at
     * this moment. The result is recorded in the parent's history, so replay
     * never reads the database again.
     */
    async resolveChildVersion(t: ChildTarget): Promise<ResolvedChild> {
      const def = await store.getDefinition(t.definition);
      if (!def) throw ApplicationFailure.nonRetryable(`child definition ${JSON.stringify(t.definition)} does not exist`, 'ChildDefinitionNotFound');
      const hash = t.version ?? def.latestVersion;
      const version = await store.getVersion(hash);
      const seq = version?.definitions.find((d) => d.definition === t.definition)?.seq;
      if (!version || seq === undefined) {
        throw ApplicationFailure.nonRetryable(`version ${hash} was never published under definition ${JSON.stringify(t.definition)}`, 'ChildVersionNotFound');
      }
      return { version: hash, seq, graph: version.graph, contracts: version.contracts };
    },
    /** The run stalled: STALLED in the projection, with the reason and the step. */
    async projectStall(p: { runId: string; stall: StallInfo; trail: StepRecord[] }): Promise<void> {
      await store.recordStall(p.runId, { ...p.stall, details: { message: p.stall.message, ...(p.stall.details as object | undefined) } }, p.trail);
    },
    /** An operator decision was applied by the run: recorded with its outcome; the stall is cleared. */
    async projectDecision(p: { runId: string; decision: StallDecision; decidedAt: string; outcome: string }): Promise<void> {
      await store.recordDecision({
        runId: p.runId,
        stallId: p.decision.stallId,
        action: p.decision.action,
        by: p.decision.by,
        reason: p.decision.reason,
        output: p.decision.output,
        decidedAt: p.decidedAt,
        outcome: p.outcome,
      });
    },
    /** The run migrated to another version (continue-as-new follows): decision, version, lineage. */
    async projectMigration(m: MigrationRecord): Promise<void> {
      await store.recordMigration(m);
    },
    async projectRunClosed(c: RunClosed): Promise<void> {
      await store.recordRunClosed(c);
    },
  };
}
