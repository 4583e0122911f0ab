-- Filtering the run list by metadata: `GET /runs?meta.<key>=<value>` asks
-- `run_details.metadata @> '{"<key>": <value>}'`. jsonb_path_ops indexes
-- exactly that containment operator, smaller and faster than the default
-- jsonb_ops (which also serves key-existence operators pinflow does not use).

CREATE INDEX run_details_metadata_idx ON run_details USING gin (metadata jsonb_path_ops);
