-- The full graph language: cancelled step instances (failFast parallel
-- branches, cancelled runs) and parent/child run links.

ALTER TABLE run_steps DROP CONSTRAINT run_steps_status_check;
ALTER TABLE run_steps ADD CONSTRAINT run_steps_status_check
  CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'));

ALTER TABLE runs ADD COLUMN parent_run_id text;
ALTER TABLE runs ADD COLUMN parent_step text;
CREATE INDEX runs_parent_idx ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
