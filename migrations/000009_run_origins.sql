-- Rerun from a step and replay (0.8.0): a run started from another run's
-- history records where it came from. The run's own start input carries the
-- same facts (RunInput.origin), so this row is a derived view like the rest
-- of the projection. One row per new run; the source run lists its reruns
-- and replays through source_run_id.
CREATE TABLE run_origins (
  run_id        text PRIMARY KEY,
  source_run_id text NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('rerun', 'replay')),
  from_step     text,
  occurrence    integer,
  source_version text NOT NULL,
  by            text NOT NULL,
  reason        text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_origins_source_idx ON run_origins (source_run_id, created_at);
