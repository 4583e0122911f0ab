-- Projection reliability (issue #11): one COMPLETED row per step dispatch.
-- An attempt whose outcome Temporal never accepted, because a later attempt of
-- the same dispatch started, is SUPERSEDED (error type AttemptSuperseded),
-- whatever it wrote: RUNNING (worker lost, timed out) or COMPLETED (its
-- completion was lost). 0.5 marked only the RUNNING ones, as FAILED with
-- AttemptAbandoned, and left a second COMPLETED row when a completion was lost.

ALTER TABLE run_steps DROP CONSTRAINT run_steps_status_check;
ALTER TABLE run_steps ADD CONSTRAINT run_steps_status_check
  CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'SUPERSEDED'));

-- Existing rows follow the new rule: abandoned attempts are superseded ones ...
UPDATE run_steps SET status = 'SUPERSEDED',
  error = jsonb_set(error, '{type}', '"AttemptSuperseded"') || jsonb_build_object('details', jsonb_build_object('wrote', 'RUNNING'))
WHERE status = 'FAILED' AND error->>'type' = 'AttemptAbandoned';

-- ... and so is a COMPLETED attempt with a later attempt in its dispatch.
UPDATE run_steps s SET status = 'SUPERSEDED', error = jsonb_build_object('type', 'AttemptSuperseded', 'message',
    'attempt ' || s.attempt || ' completed, but its completion never reached Temporal; a later attempt of the same dispatch replaced it',
    'details', jsonb_build_object('wrote', 'COMPLETED'))
WHERE s.status = 'COMPLETED'
  AND EXISTS (SELECT 1 FROM run_steps l WHERE l.run_id = s.run_id AND l.step_instance = s.step_instance AND l.dispatch = s.dispatch AND l.attempt > s.attempt);
