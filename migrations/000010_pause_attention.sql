-- Pause and resume (0.8.0, FLAGS.PAUSE).
--
-- PAUSED: the run holds at a top-level step boundary until resumed (or
-- cancelled). Written by the run's own projection activity once it holds,
-- so the projection follows what Temporal accepted.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('RUNNING', 'STALLED', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED'));
ALTER TABLE runs ADD COLUMN paused_at timestamptz;
ALTER TABLE runs ADD COLUMN paused_by text;
ALTER TABLE runs ADD COLUMN paused_reason text;
ALTER TABLE runs ADD COLUMN paused_before text;

-- A paused definition: its new runs start paused (RunInput.pause) and its
-- open runs were paused. One row per paused definition; resume deletes it.
CREATE TABLE definition_pauses (
  definition  text PRIMARY KEY,
  paused_by   text NOT NULL,
  reason      text,
  since       timestamptz NOT NULL DEFAULT now()
);

-- Runs that need attention (client/attention.ts): one row per run and reason
-- while the condition lasts; `cleared_at` is set when it ends (kept for the
-- record). NO_WORKER is global: one row with run_id '*' and the count of open
-- runs in `detail`, not one row per run.
CREATE TABLE run_attention (
  id          bigserial PRIMARY KEY,
  run_id      text NOT NULL,
  reason      text NOT NULL CHECK (reason IN ('NO_WORKER', 'NO_PROGRESS', 'RPC_RETRYING', 'WORKFLOW_TASK_FAILING', 'WAIT_OVERDUE')),
  detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
  since       timestamptz NOT NULL DEFAULT now(),
  checked_at  timestamptz NOT NULL DEFAULT now(),
  cleared_at  timestamptz
);
CREATE UNIQUE INDEX run_attention_open_idx ON run_attention (run_id, reason) WHERE cleared_at IS NULL;
CREATE INDEX run_attention_reason_idx ON run_attention (reason) WHERE cleared_at IS NULL;
