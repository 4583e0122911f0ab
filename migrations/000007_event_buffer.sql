-- Events: one signal per (event, run, wait), and events buffered for waits
-- that open later.
--
-- Deliveries are claimed before they are signalled: SENDING, with who claimed
-- it and when. Concurrent routings of the same event (duplicate submissions,
-- the sweeper) each claim a disjoint set of deliveries, so no delivery is
-- signalled twice; a claim older than the claim timeout (its claimer died)
-- is taken over by the sweeper. `via = 'buffer'` is a buffered event that a
-- wait consumed when it opened.
ALTER TABLE event_deliveries DROP CONSTRAINT event_deliveries_status_check;
ALTER TABLE event_deliveries ADD CONSTRAINT event_deliveries_status_check CHECK (status IN ('PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'RUN_CLOSED'));
ALTER TABLE event_deliveries DROP CONSTRAINT event_deliveries_via_check;
ALTER TABLE event_deliveries ADD CONSTRAINT event_deliveries_via_check CHECK (via IN ('signal', 'lookback', 'buffer'));
ALTER TABLE event_deliveries ADD COLUMN claimed_by text;
ALTER TABLE event_deliveries ADD COLUMN claimed_at timestamptz;

-- An event with a time to live that matched no open wait is BUFFERED until
-- `expires_at`; the first wait that opens for its tenant, name and key (and
-- accepts it) consumes it. The sweeper moves it to EXPIRED after that.
ALTER TABLE events DROP CONSTRAINT events_status_check;
ALTER TABLE events ADD CONSTRAINT events_status_check CHECK (status IN ('RECEIVED', 'ROUTED', 'UNMATCHED', 'BUFFERED', 'EXPIRED', 'FAILED', 'REJECTED'));
ALTER TABLE events ADD COLUMN ttl_ms bigint CHECK (ttl_ms IS NULL OR ttl_ms > 0);
ALTER TABLE events ADD COLUMN expires_at timestamptz;
-- A wait opening looks for buffered events of its (tenant, name, key).
CREATE INDEX events_buffered_idx ON events (tenant, name, correlation_key, received_at) WHERE status = 'BUFFERED';
-- The sweeper's expiry pass.
CREATE INDEX events_expiry_idx ON events (expires_at) WHERE status = 'BUFFERED';

-- The default time to live of an event name, kept with its correlation rule.
ALTER TABLE correlation_rules ADD COLUMN ttl_ms bigint CHECK (ttl_ms IS NULL OR ttl_ms > 0);
