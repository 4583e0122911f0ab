-- pinflow projection schema, first cut.
-- Temporal history is the only execution authority; every table here is a
-- derived view written idempotently and rebuildable from history.

-- A definition is a name pointing at its latest published version.
CREATE TABLE definitions (
  name            text PRIMARY KEY,
  latest_version  text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Content-addressed versions: the graph JSON is stored once per version,
-- never once per run.
CREATE TABLE versions (
  hash        text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
  graph       jsonb NOT NULL,
  contracts   jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE definitions
  ADD CONSTRAINT definitions_latest_version_fkey FOREIGN KEY (latest_version) REFERENCES versions (hash);

-- Which versions were published under which definition, numbered 1, 2, 3...
CREATE TABLE definition_versions (
  definition    text NOT NULL REFERENCES definitions (name),
  version       text NOT NULL REFERENCES versions (hash),
  seq           integer NOT NULL CHECK (seq > 0),
  published_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (definition, version),
  UNIQUE (definition, seq)
);

-- The narrow list table. Large payloads live in run_details.
CREATE TABLE runs (
  id               text PRIMARY KEY,
  definition       text NOT NULL,
  version          text NOT NULL REFERENCES versions (hash),
  tenant           text NOT NULL,
  status           text NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  temporal_run_id  text,
  current_step     text,
  error_summary    text,
  started_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  closed_at        timestamptz
);

-- Keyset pagination is (started_at DESC, id DESC) under every filter.
CREATE INDEX runs_started_idx    ON runs (started_at DESC, id DESC);
CREATE INDEX runs_status_idx     ON runs (status, started_at DESC, id DESC);
CREATE INDEX runs_definition_idx ON runs (definition, started_at DESC, id DESC);
CREATE INDEX runs_version_idx    ON runs (version, started_at DESC, id DESC);
CREATE INDEX runs_tenant_idx     ON runs (tenant, started_at DESC, id DESC);

CREATE TABLE run_details (
  run_id    text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  input     jsonb,
  output    jsonb,
  error     jsonb,
  metadata  jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- One row per step instance and attempt. Keyed deterministically so retried
-- and replayed activities upsert rather than duplicate.
CREATE TABLE run_steps (
  run_id         text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_instance  text NOT NULL,
  attempt        integer NOT NULL CHECK (attempt > 0),
  step_id        text NOT NULL,
  step_type      text NOT NULL,
  seq            integer NOT NULL,
  status         text NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  started_at     timestamptz NOT NULL,
  finished_at    timestamptz,
  input          jsonb,
  output         jsonb,
  error          jsonb,
  PRIMARY KEY (run_id, step_instance, attempt)
);

CREATE INDEX run_steps_order_idx ON run_steps (run_id, seq, attempt);
