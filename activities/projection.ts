/** Run-level projection activities. Idempotent upserts; Temporal retries them freely. */
import type { ProjectionStore } from '../projection/store';
import type { RunClosed, RunStarted } from '../workflows/types';

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
      });
    },
    async projectRunClosed(c: RunClosed): Promise<void> {
      await store.recordRunClosed(c);
    },
  };
}
