-- Retention and pruning (issue 17): how long closed runs and the event log
-- are kept in the projection, legal holds, and the sweeps that delete what
-- is due (client/retention.ts, README "Data lifecycle").
--
-- None of these tables is part of the projection: a policy, a hold and a
-- sweep are an operator's settings and requests, never rebuilt from
-- Temporal. A hold is keyed by run id with no foreign key, so it outlives a
-- rebuild of the projection (which deletes and writes runs again).

-- One row per rule. `subject` runs: closed runs, by definition (NULL: every
-- definition) and closed status (NULL: every closed status); the most
-- specific rule wins: (definition, status), (definition, any), (any,
-- status), then the global default (any, any), which always exists.
-- `subject` events: the event log and its deliveries (one rule, no
-- definition or status). `days` NULL: kept forever.
CREATE TABLE retention_policies (
  subject     text NOT NULL CHECK (subject IN ('runs', 'events')),
  definition  text,
  status      text CHECK (status IS NULL OR status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED')),
  days        integer CHECK (days IS NULL OR (days > 0 AND days <= 36500)),
  updated_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (subject = 'runs' OR (definition IS NULL AND status IS NULL))
);
CREATE UNIQUE INDEX retention_policies_rule_idx ON retention_policies (subject, COALESCE(definition, ''), COALESCE(status, ''));

-- The defaults: every closed status 30 days, FAILED 90 days, the event log 30 days.
INSERT INTO retention_policies (subject, definition, status, days, updated_by) VALUES
  ('runs', NULL, NULL, 30, 'migration 000015'),
  ('runs', NULL, 'FAILED', 90, 'migration 000015'),
  ('events', NULL, NULL, 30, 'migration 000015');

-- Legal holds: a held run is never pruned, whatever its age.
CREATE TABLE run_holds (
  run_id  text PRIMARY KEY,
  by      text NOT NULL,
  reason  text NOT NULL,
  since   timestamptz NOT NULL DEFAULT now()
);

-- A sweep: the policies and the time it computes "due" from (a snapshot
-- taken when it starts, so a resumed sweep deletes by the same rules), where
-- it is (the last key it examined, runs in (closed_at, id) order, then
-- events in (received_at, tenant, event_id) order) and its totals. One
-- unfinished sweep at a time (the unique index). A process drives it while
-- its lease (`lease_until`) runs; a sweep whose process died is taken over
-- by the next sweeper tick once the lease ran out.
CREATE TABLE retention_sweeps (
  id                  text PRIMARY KEY,
  by                  text NOT NULL,
  reason              text,
  state               text NOT NULL CHECK (state IN ('RUNNING', 'DONE', 'FAILED')),
  phase               text NOT NULL CHECK (phase IN ('runs', 'events', 'done')),
  as_of               timestamptz NOT NULL,
  policies            jsonb NOT NULL,
  batch_size          integer NOT NULL CHECK (batch_size > 0),
  pause_ms            integer NOT NULL CHECK (pause_ms >= 0),
  last_closed_at      timestamptz,
  last_run_id         text,
  last_received_at    timestamptz,
  last_event_tenant   text,
  last_event_id       text,
  batches             integer NOT NULL DEFAULT 0,
  runs_examined       bigint NOT NULL DEFAULT 0,
  runs_deleted        bigint NOT NULL DEFAULT 0,
  steps_deleted       bigint NOT NULL DEFAULT 0,
  exempt_retain       bigint NOT NULL DEFAULT 0,
  exempt_open_children bigint NOT NULL DEFAULT 0,
  exempt_legal_hold   bigint NOT NULL DEFAULT 0,
  events_examined     bigint NOT NULL DEFAULT 0,
  events_deleted      bigint NOT NULL DEFAULT 0,
  events_exempt       bigint NOT NULL DEFAULT 0,
  deliveries_deleted  bigint NOT NULL DEFAULT 0,
  error               text,
  owner               text,
  lease_until         timestamptz,
  started_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  finished_at         timestamptz
);
CREATE UNIQUE INDEX retention_sweeps_one_idx ON retention_sweeps ((true)) WHERE state = 'RUNNING';
CREATE INDEX retention_sweeps_started_idx ON retention_sweeps (started_at DESC, id DESC);

-- The sweep walks closed runs oldest first, and the preview reads them by close time.
CREATE INDEX runs_closed_idx ON runs (closed_at, id) WHERE closed_at IS NOT NULL;
-- The event log oldest first (the sweep's walk of the event log).
CREATE INDEX events_age_idx ON events (received_at, tenant, event_id);
