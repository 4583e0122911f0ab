-- API keys with scopes per tenant, and the append-only audit log.
--
-- A key is shown once as `pf_<id>_<secret>`: it is looked up by `id` and
-- verified with scrypt over the secret (`hash`, `salt`); the secret itself is
-- never stored. `tenant` NULL: the key acts on every tenant.
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  prefix text NOT NULL,
  hash text NOT NULL,
  salt text NOT NULL,
  scopes text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'operate', 'publish', 'admin']),
  tenant text,
  name text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  revoked_by text,
  revoke_reason text,
  last_used_at timestamptz
);

-- Every write action of the API (and the key commands of the CLI), after the
-- action was accepted or refused: who (key id, and the body's informational
-- `by`), what (action, target), on which runs, why (reason), when, and the
-- outcome (accepted, denied: no or wrong key/scope/tenant, refused: a 4xx,
-- failed: a 5xx).
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  key_id text,
  by text,
  action text NOT NULL,
  method text,
  route text,
  target_kind text,
  target_ids text[] NOT NULL DEFAULT '{}',
  run_ids text[] NOT NULL DEFAULT '{}',
  tenant text,
  reason text,
  request jsonb,
  outcome text NOT NULL CHECK (outcome IN ('accepted', 'denied', 'refused', 'failed')),
  status integer
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_key_idx ON audit_log (key_id, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, id DESC);
CREATE INDEX audit_log_runs_idx ON audit_log USING gin (run_ids);

-- Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE for every role
-- (a superuser can still drop the trigger; that is a visible schema change).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
