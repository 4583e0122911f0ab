-- Events: the correlation index (one row per wait a run opened), the event
-- log with each event's resolved key and routing outcome, one row per
-- delivery of an event to a waiting run, and correlation rules configured
-- through the API. Temporal stays the authority: a wait ends only when the
-- run's own workflow code accepts a signalled event (or its timer fires).

-- The correlation index. Written by the run's openWait activity before it
-- blocks, closed by its closeWait activity (or when the run closes).
CREATE TABLE run_waits (
  run_id             text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  -- `<step instance>@<seq>`: unique within the run, kept across a migration at the wait.
  wait_id            text NOT NULL,
  step_instance      text NOT NULL,
  tenant             text NOT NULL,
  event_name         text NOT NULL,
  correlation_key    text NOT NULL,
  has_filter         boolean NOT NULL DEFAULT false,
  status             text NOT NULL CHECK (status IN ('OPEN', 'RESOLVED', 'TIMED_OUT', 'CANCELLED')),
  -- When the run reached the step (workflow time): the mailbox looks back to here.
  reached_at         timestamptz NOT NULL,
  opened_at          timestamptz NOT NULL DEFAULT now(),
  timeout_at         timestamptz,
  resolved_event_id  text,
  closed_at          timestamptz,
  PRIMARY KEY (run_id, wait_id)
);
-- Candidate lookup at routing time: only open waits are indexed.
CREATE INDEX run_waits_open_idx ON run_waits (tenant, event_name, correlation_key) WHERE status = 'OPEN';

-- The event log. Keyed by (tenant, event_id): an eventId is deduplicated per tenant.
CREATE TABLE events (
  tenant           text NOT NULL,
  event_id         text NOT NULL,
  name             text NOT NULL,
  payload          jsonb,
  -- The resolved correlation key (stored for audit), and where it came from.
  correlation_key  text,
  key_source       text CHECK (key_source IN ('explicit', 'rule')),
  -- sha256 of name, payload and explicit key: a reused eventId with other content is refused.
  fingerprint      text NOT NULL,
  source           text NOT NULL CHECK (source IN ('library', 'api', 'stream')),
  status           text NOT NULL CHECK (status IN ('RECEIVED', 'ROUTED', 'UNMATCHED', 'FAILED', 'REJECTED')),
  error            jsonb,
  -- Set once the candidate waits were looked up and recorded as deliveries.
  candidates_at    timestamptz,
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  received_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant, event_id)
);
-- The mailbox look-back of a wait that just opened.
CREATE INDEX events_mailbox_idx ON events (tenant, name, correlation_key, received_at) WHERE correlation_key IS NOT NULL;
-- The sweeper: failed deliveries and routings a crash interrupted.
CREATE INDEX events_sweep_idx ON events (next_attempt_at) WHERE status IN ('RECEIVED', 'FAILED');
CREATE INDEX events_received_idx ON events (received_at DESC, event_id DESC);
CREATE INDEX events_status_idx ON events (status, received_at DESC);

-- One row per (event, waiting run): signalled through the index, or handed
-- over by the mailbox look-back when the wait opened.
CREATE TABLE event_deliveries (
  tenant        text NOT NULL,
  event_id      text NOT NULL,
  run_id        text NOT NULL,
  wait_id       text NOT NULL,
  via           text NOT NULL CHECK (via IN ('signal', 'lookback')),
  status        text NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED', 'RUN_CLOSED')),
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  delivered_at  timestamptz,
  PRIMARY KEY (tenant, event_id, run_id, wait_id),
  FOREIGN KEY (tenant, event_id) REFERENCES events (tenant, event_id) ON DELETE CASCADE
);
CREATE INDEX event_deliveries_run_idx ON event_deliveries (run_id);

-- Correlation rules set through the API (rules configured in code live in the process).
CREATE TABLE correlation_rules (
  event_name  text PRIMARY KEY,
  expression  text NOT NULL,
  updated_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
