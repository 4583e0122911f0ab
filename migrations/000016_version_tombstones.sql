-- Version garbage collection (issue 17): a version no definition, open run,
-- child reference or unfinished batch needs can be removed from the catalog
-- (client/version-gc.ts). Its row stays as a tombstone: the hash, and through
-- definition_versions the definitions, numbers and publish times it had; the
-- graph and the contracts (the space) go, and removed_at/by/reason say when,
-- who and why.
--
-- A tombstone row rather than a separate table: runs.version,
-- definition_versions.version and definitions.latest_version keep their
-- foreign keys to versions, so old runs still name what they ran, a
-- projection rebuilt from Temporal history can still insert a run of a
-- removed version, and the numbers (seq) of a definition are never reused.
-- Publishing the same graph again (or a rerun/replay that restores it from
-- the run's history) fills the row in again and clears the tombstone.
ALTER TABLE versions ALTER COLUMN graph DROP NOT NULL;
ALTER TABLE versions ALTER COLUMN contracts DROP NOT NULL;
ALTER TABLE versions ADD COLUMN removed_at timestamptz;
ALTER TABLE versions ADD COLUMN removed_by text;
ALTER TABLE versions ADD COLUMN removed_reason text;
ALTER TABLE versions ADD CONSTRAINT versions_tombstone_check CHECK (
  (removed_at IS NULL AND graph IS NOT NULL AND contracts IS NOT NULL AND removed_by IS NULL AND removed_reason IS NULL)
  OR (removed_at IS NOT NULL AND graph IS NULL AND contracts IS NULL AND removed_by IS NOT NULL)
);

-- The latest version of a definition is never a tombstone: the GC does not
-- remove one, and these two triggers make that hold whatever writes the rows
-- (a concurrent publish serialises with the GC on the version row).
CREATE FUNCTION pinflow_latest_not_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM versions WHERE hash = NEW.latest_version AND removed_at IS NOT NULL) THEN
    RAISE EXCEPTION 'version % was removed from the catalog; it cannot be the latest version of definition %', NEW.latest_version, NEW.name
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER definitions_latest_not_removed BEFORE INSERT OR UPDATE OF latest_version ON definitions
  FOR EACH ROW EXECUTE FUNCTION pinflow_latest_not_removed();

CREATE FUNCTION pinflow_removed_not_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.removed_at IS NOT NULL AND OLD.removed_at IS NULL AND EXISTS (SELECT 1 FROM definitions WHERE latest_version = NEW.hash) THEN
    RAISE EXCEPTION 'version % is the latest version of a definition; it cannot be removed', NEW.hash
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER versions_removed_not_latest BEFORE UPDATE OF removed_at ON versions
  FOR EACH ROW EXECUTE FUNCTION pinflow_removed_not_latest();

-- The definitions of a version (GET /versions/:hash, the GC) without a scan.
CREATE INDEX definition_versions_version_idx ON definition_versions (version);
-- Unfinished batches that target a version (migrate, rerun or replay onto it).
CREATE INDEX batches_target_version_idx ON batches ((params->>'targetVersion')) WHERE state IN ('RUNNING', 'PAUSED');
