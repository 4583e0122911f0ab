-- Batches: one operator action (cancel, retry or skip stalls, migrate, ...)
-- applied to every run a run filter selected, in the background, at a rate.
-- Not part of the projection: a batch is an operator's request and its
-- progress, never rebuilt from Temporal. Temporal stays the authority on what
-- each run did; an item says whether this batch has acted on its run.
CREATE TABLE batches (
  id text PRIMARY KEY,
  action text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}'::jsonb,
  filter jsonb NOT NULL,
  by text NOT NULL,
  reason text NOT NULL,
  state text NOT NULL CHECK (state IN ('RUNNING', 'PAUSED', 'CANCELLED', 'COMPLETED')),
  rate_per_second double precision NOT NULL CHECK (rate_per_second > 0),
  concurrency integer NOT NULL CHECK (concurrency > 0),
  selected integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- Who changed the state last (pause, resume, cancel), and why.
  state_by text,
  state_reason text
);
CREATE INDEX batches_created_idx ON batches (created_at DESC, id DESC);
CREATE INDEX batches_unfinished_idx ON batches (state) WHERE state IN ('RUNNING', 'PAUSED');

-- The runs a batch selected, snapshot at creation (in the run list's order).
-- PENDING → APPLYING (claimed under a lease, attempts counted) → DONE,
-- SKIPPED (with a code and reason) or FAILED (with a code and reason).
CREATE TABLE batch_items (
  batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  run_id text NOT NULL,
  temporal_run_id text,
  run_status text NOT NULL,
  status text NOT NULL CHECK (status IN ('PENDING', 'APPLYING', 'DONE', 'SKIPPED', 'FAILED')),
  attempts integer NOT NULL DEFAULT 0,
  lease_until timestamptz,
  claimed_by text,
  code text,
  message text,
  result jsonb,
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (batch_id, seq),
  UNIQUE (batch_id, run_id)
);
CREATE INDEX batch_items_open_idx ON batch_items (batch_id, seq) WHERE status IN ('PENDING', 'APPLYING');
CREATE INDEX batch_items_status_idx ON batch_items (batch_id, status, seq);
