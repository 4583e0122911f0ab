-- Deploy safety: stalled runs, operator decisions, contract-drift notes, and
-- re-dispatches of a step after a stall (each dispatch numbers its attempts from 1).

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('RUNNING', 'STALLED', 'COMPLETED', 'FAILED', 'CANCELLED'));
ALTER TABLE runs ADD COLUMN stall_id text;
ALTER TABLE runs ADD COLUMN stall_reason text;
ALTER TABLE runs ADD COLUMN stall_rpc text;
ALTER TABLE runs ADD COLUMN stall_step text;
ALTER TABLE runs ADD COLUMN stall_details jsonb;
ALTER TABLE runs ADD COLUMN stalled_at timestamptz;
CREATE INDEX runs_stalls_idx ON runs (stall_rpc, stall_reason) WHERE status = 'STALLED';

ALTER TABLE run_steps ADD COLUMN dispatch integer NOT NULL DEFAULT 1 CHECK (dispatch > 0);
ALTER TABLE run_steps ADD COLUMN notes jsonb;
ALTER TABLE run_steps DROP CONSTRAINT run_steps_pkey;
ALTER TABLE run_steps ADD PRIMARY KEY (run_id, step_instance, dispatch, attempt);

-- Every operator decision: who, when, what, and its outcome.
CREATE TABLE run_decisions (
  id          bigserial PRIMARY KEY,
  run_id      text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  stall_id    text,
  action      text NOT NULL CHECK (action IN ('retry', 'skip', 'migrate', 'cancel')),
  decided_by  text NOT NULL,
  reason      text,
  output      jsonb,
  decided_at  timestamptz NOT NULL,
  outcome     text NOT NULL,
  UNIQUE (run_id, stall_id, action)
);
CREATE INDEX run_decisions_run_idx ON run_decisions (run_id, decided_at);

-- Migrations between versions: which versions a run ran, and up to which step.
ALTER TABLE run_details ADD COLUMN lineage jsonb NOT NULL DEFAULT '[]'::jsonb;
