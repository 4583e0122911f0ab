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
