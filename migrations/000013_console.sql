-- The operator console (issue 15): per-step counts of a version, kept in the
-- same transactions as the rows they count, and the indexes of the run list's
-- new filters.
--
-- What a count is (README "Step counts", docs/architecture.md): the number of
-- RUNS now pinned to the version (and of the tenant) that
--   running  have an attempt row of the step that is RUNNING (a wait step aside),
--   waiting  have an OPEN wait (run_waits) at an instance of the step,
--   stalled  are STALLED at an instance of the step,
--   passed   have an attempt row of the step that COMPLETED (not by a skip),
--   failed   have an attempt row of the step that FAILED (a stall's failed
--            attempt is not counted: the run shows as stalled, or skipped),
--   skipped  have a COMPLETED row written by a skip decision (notes kind skipped).
-- A run counts once per step and bucket however many instances (forEach
-- items, `#2` occurrences) or attempts it has; it may count in several
-- buckets of one step (an attempt failed, a later one passed).
--
-- Counts are sharded by a hash of the run id (16 shards), so concurrent runs
-- rarely update the same counter row; a read sums the shards.

-- The step id of a step instance (`charge`, `charge#2`, `charge[3]`): graph/redact.ts stepIdOfInstance.
CREATE FUNCTION pinflow_step_of(instance text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(substring(instance from '^[A-Za-z][A-Za-z0-9_-]*'), instance)
$$;

-- The finished-or-running bucket of one step attempt row, NULL when it counts nowhere.
-- A wait step's RUNNING row is not `running`: its open wait counts it as `waiting`.
CREATE FUNCTION pinflow_step_bucket(status text, step_type text, error jsonb, notes jsonb) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN status = 'RUNNING' AND step_type <> 'wait' THEN 'running'
    WHEN status = 'COMPLETED' AND COALESCE(notes @> '[{"kind": "skipped"}]'::jsonb, false) THEN 'skipped'
    WHEN status = 'COMPLETED' THEN 'passed'
    WHEN status = 'FAILED' AND COALESCE(error->>'type', '') <> 'RpcStall' THEN 'failed'
  END
$$;

CREATE TABLE step_counts (
  version  text NOT NULL,
  tenant   text NOT NULL,
  step_id  text NOT NULL,
  bucket   text NOT NULL CHECK (bucket IN ('running', 'waiting', 'stalled', 'passed', 'failed', 'skipped')),
  shard    smallint NOT NULL,
  runs     bigint NOT NULL,
  PRIMARY KEY (version, tenant, step_id, bucket, shard)
);

-- Runs per version, tenant and status (totalRuns and openRuns of the step counts).
CREATE TABLE run_counts (
  version  text NOT NULL,
  tenant   text NOT NULL,
  status   text NOT NULL,
  shard    smallint NOT NULL,
  runs     bigint NOT NULL,
  PRIMARY KEY (version, tenant, status, shard)
);

-- Counters are updated in place all day: room on each page for HOT updates,
-- and vacuumed after every 1000 dead rows rather than 20% of a tiny table, so
-- a read never wades through a backlog of dead versions.
ALTER TABLE step_counts SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
ALTER TABLE run_counts SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);

-- Backfill: what the rows say now.
INSERT INTO run_counts (version, tenant, status, shard, runs)
  SELECT version, tenant, status, hashtext(id) & 15, count(*) FROM runs GROUP BY 1, 2, 3, 4;
INSERT INTO step_counts (version, tenant, step_id, bucket, shard, runs)
  SELECT r.version, r.tenant, b.step_id, b.bucket, hashtext(r.id) & 15, count(*)
  FROM (SELECT DISTINCT run_id, step_id, pinflow_step_bucket(status, step_type, error, notes) AS bucket FROM run_steps
        UNION
        SELECT DISTINCT run_id, pinflow_step_of(step_instance), 'waiting' FROM run_waits WHERE status = 'OPEN') b
  JOIN runs r ON r.id = b.run_id
  WHERE b.bucket IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5;
INSERT INTO step_counts (version, tenant, step_id, bucket, shard, runs)
  SELECT version, tenant, pinflow_step_of(stall_step), 'stalled', hashtext(id) & 15, count(*)
  FROM runs WHERE status = 'STALLED' AND stall_step IS NOT NULL GROUP BY 1, 2, 3, 4, 5;

-- run_steps and run_waits: after each statement, the (run, step, bucket)
-- sets before and after it are compared; a bucket a run entered adds 1, one
-- it left subtracts 1. Statement-level with transition tables, so a statement
-- touching several rows of one run and step (closing its open attempts) is
-- counted once; an upsert that changes nothing changes no count. The row's
-- run gives version, tenant and shard; a row whose run is gone (a cascade
-- from a deleted run) changes nothing: the run's delete subtracted it.
CREATE FUNCTION step_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cols text;
  none text;
BEGIN
  IF TG_TABLE_NAME = 'run_steps' THEN
    cols := $$run_id, step_id, pinflow_step_bucket(status, step_type, error, notes) AS bucket, concat_ws('/', step_instance, dispatch, attempt) AS k$$;
  ELSE
    cols := $$run_id, pinflow_step_of(step_instance) AS step_id, CASE WHEN status = 'OPEN' THEN 'waiting' END AS bucket, wait_id AS k$$;
  END IF;
  none := format('(SELECT * FROM %I WHERE false) AS none', TG_TABLE_NAME);
  EXECUTE format($q$
    WITH o AS (SELECT %1$s FROM %2$s), n AS (SELECT %1$s FROM %3$s),
    keys AS (SELECT run_id, step_id FROM o UNION SELECT run_id, step_id FROM n),
    cur AS (SELECT t.* FROM (SELECT %1$s FROM %4$I) t JOIN keys USING (run_id, step_id)),
    now_b AS (SELECT run_id, step_id, bucket FROM cur WHERE bucket IS NOT NULL),
    was_b AS (SELECT run_id, step_id, bucket FROM cur c WHERE bucket IS NOT NULL AND NOT EXISTS (SELECT 1 FROM n WHERE n.run_id = c.run_id AND n.k = c.k)
              UNION SELECT run_id, step_id, bucket FROM o WHERE bucket IS NOT NULL),
    delta AS (SELECT run_id, step_id, bucket, 1 AS d FROM (SELECT * FROM now_b EXCEPT SELECT * FROM was_b) x
              UNION ALL
              SELECT run_id, step_id, bucket, -1 FROM (SELECT * FROM was_b EXCEPT SELECT * FROM now_b) x)
    INSERT INTO step_counts AS c (version, tenant, step_id, bucket, shard, runs)
    SELECT r.version, r.tenant, d.step_id, d.bucket, hashtext(r.id) & 15, sum(d.d)
    FROM delta d JOIN runs r ON r.id = d.run_id
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.d) <> 0
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (version, tenant, step_id, bucket, shard) DO UPDATE SET runs = c.runs + EXCLUDED.runs
  $q$, cols,
    CASE WHEN TG_OP = 'INSERT' THEN none ELSE 'old_rows' END,
    CASE WHEN TG_OP = 'DELETE' THEN none ELSE 'new_rows' END,
    TG_TABLE_NAME);
  RETURN NULL;
END;
$fn$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['run_steps', 'run_waits'] LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION step_counts_follow()', t || '_counts_insert', t);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION step_counts_follow()', t || '_counts_update', t);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION step_counts_follow()', t || '_counts_delete', t);
  END LOOP;
END;
$$;

-- Adds `sign` times one run's contribution under (version, tenant): its
-- status in run_counts, and with `steps` its stall and every bucket of its
-- step rows and open waits in step_counts.
CREATE FUNCTION run_counts_add(r runs, sign int, steps boolean) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO run_counts AS c (version, tenant, status, shard, runs) VALUES (r.version, r.tenant, r.status, hashtext(r.id) & 15, sign)
    ON CONFLICT (version, tenant, status, shard) DO UPDATE SET runs = c.runs + EXCLUDED.runs;
  IF r.status = 'STALLED' AND r.stall_step IS NOT NULL THEN
    INSERT INTO step_counts AS c (version, tenant, step_id, bucket, shard, runs) VALUES (r.version, r.tenant, pinflow_step_of(r.stall_step), 'stalled', hashtext(r.id) & 15, sign)
      ON CONFLICT (version, tenant, step_id, bucket, shard) DO UPDATE SET runs = c.runs + EXCLUDED.runs;
  END IF;
  IF steps THEN
    INSERT INTO step_counts AS c (version, tenant, step_id, bucket, shard, runs)
      SELECT r.version, r.tenant, b.step_id, b.bucket, hashtext(r.id) & 15, sign
      FROM (SELECT step_id, pinflow_step_bucket(status, step_type, error, notes) AS bucket FROM run_steps WHERE run_id = r.id
            UNION SELECT pinflow_step_of(step_instance), 'waiting' FROM run_waits WHERE run_id = r.id AND status = 'OPEN') b
      WHERE b.bucket IS NOT NULL
      ORDER BY 3, 4
      ON CONFLICT (version, tenant, step_id, bucket, shard) DO UPDATE SET runs = c.runs + EXCLUDED.runs;
  END IF;
END;
$fn$;

-- runs: a status, stall, version or tenant change moves the run's counts
-- (a migration moves its step buckets to the version it now runs); a delete
-- subtracts them, before the cascade removes its step rows.
CREATE FUNCTION run_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  moved boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM run_counts_add(NEW, 1, false);
    RETURN NULL;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM run_counts_add(OLD, -1, true);
    RETURN OLD;
  END IF;
  moved := NEW.version IS DISTINCT FROM OLD.version OR NEW.tenant IS DISTINCT FROM OLD.tenant;
  IF NOT moved AND NEW.status IS NOT DISTINCT FROM OLD.status AND NEW.stall_step IS NOT DISTINCT FROM OLD.stall_step THEN
    RETURN NULL;
  END IF;
  PERFORM run_counts_add(OLD, -1, moved);
  PERFORM run_counts_add(NEW, 1, moved);
  RETURN NULL;
END;
$fn$;

CREATE TRIGGER runs_counts_insert AFTER INSERT ON runs FOR EACH ROW EXECUTE FUNCTION run_counts_follow();
CREATE TRIGGER runs_counts_update AFTER UPDATE OF status, version, tenant, stall_step ON runs FOR EACH ROW EXECUTE FUNCTION run_counts_follow();
CREATE TRIGGER runs_counts_delete BEFORE DELETE ON runs FOR EACH ROW EXECUTE FUNCTION run_counts_follow();

-- GET /stalls groups the open stalls by version, RPC and reason.
CREATE INDEX runs_stalled_version_idx ON runs (version, stall_rpc, stall_reason) WHERE status = 'STALLED';
-- `step` + `stepState` of the run list look up one run's rows of one step.
CREATE INDEX run_steps_step_idx ON run_steps (run_id, step_id);
