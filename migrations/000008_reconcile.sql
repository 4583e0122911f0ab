-- Runs changed from Temporal (terminate, reset, cancel, a retention delete)
-- are reconciled: the reconciler (projection/reconcile.ts) closes in the
-- projection what Temporal closed without the run's own projection write.
--
-- TERMINATED: the run was ended by Temporal, not by its graph: terminated
-- from the Temporal UI or CLI, timed out by a workflow timeout, or no longer
-- known to Temporal (deleted, e.g. by namespace retention).
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('RUNNING', 'STALLED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED'));
