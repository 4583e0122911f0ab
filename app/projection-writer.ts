/**
 * The worker's projection writer (projection/writer.ts) on its own small pool,
 * so projection writes blocked on a slow or locked projection never hold the
 * connections the catalog reads and the correlation index need. PGlite is one
 * connection: there the writer shares it (and its limit still bounds how many
 * writes wait in line at once).
 */
import { createProjectionWriter } from '../activities';
import { connectPg, type Db } from '../db/connection';
import { ProjectionStore } from '../projection/store';
import type { ProjectionLag, ProjectionWriter } from '../projection/writer';
import type { PinflowConfig } from './config';

export interface ProjectionWriterHandle {
  writer: ProjectionWriter;
  /** Drain queued writes (up to `drainMs`), stop the writer, close its pool. */
  close(drainMs?: number): Promise<void>;
}

export function openProjectionWriter(config: PinflowConfig, db: Db, log: (line: string) => void): ProjectionWriterHandle {
  const own = config.databaseUrl && db.kind === 'pg' ? connectPg(config.databaseUrl, { max: config.projection.poolMax, connectTimeoutMs: config.database.connectTimeoutMs }) : undefined;
  const writer = createProjectionWriter(new ProjectionStore(own ?? db), {
    concurrency: config.projection.poolMax,
    maxQueued: config.projection.queueMax,
    syncWaitMs: config.projection.syncWaitMs,
    log,
  });
  return {
    writer,
    async close(drainMs = 10_000) {
      const drained = await writer.drain(drainMs);
      if (!drained) log(`projection writer: ${writer.lag().queued} writes still queued at shutdown`);
      writer.close();
      await own?.close();
    },
  };
}

/** One line describing a non-zero lag, or undefined when the projection is caught up. */
export function describeLag(lag: ProjectionLag): string | undefined {
  if (lag.queued === 0 && lag.dropped === 0 && lag.rejected === 0) return undefined;
  const parts = [`${lag.queued} writes queued`, `oldest ${Math.round(lag.oldestAgeMs / 1000)}s`];
  if (lag.dropped) parts.push(`${lag.dropped} dropped`);
  if (lag.rejected) parts.push(`${lag.rejected} refused`);
  if (lag.lastError) parts.push(`last error at ${lag.lastError.at} (run ${lag.lastError.runId}): ${lag.lastError.message}`);
  return `projection lag: ${parts.join(', ')}`;
}
