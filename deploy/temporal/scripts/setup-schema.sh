#!/bin/sh
# Temporal's schema on Postgres, for docker-compose.temporal.yml (service
# temporal-schema, image temporalio/admin-tools). Creates the two databases
# the server uses, `temporal` and `temporal_visibility`, and brings each schema
# to the newest version this admin-tools image carries.
#
# Every step is idempotent: create-database tolerates an existing database,
# setup-schema -v 0.0 leaves a schema that is already past 0.0 alone, and
# update-schema applies only the versions a database does not have yet. So it
# runs on every `docker compose up`, and upgrading Temporal is: raise the
# server and admin-tools image tags together, then `up` (schema first, then
# the server). Temporal upgrades one minor version at a time (1.28 -> 1.29 ->
# 1.30); read its release notes for each.
#
# The connection comes from the environment temporal-sql-tool reads itself:
# SQL_PLUGIN (postgres12), SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD, and for
# TLS to Postgres SQL_TLS=true with SQL_TLS_CA_FILE (SQL_TLS_CERT_FILE and
# SQL_TLS_KEY_FILE for client certificates, SQL_TLS_SERVER_NAME).
set -eu

: "${SQL_HOST:?SQL_HOST is not set}"
: "${SQL_USER:?SQL_USER is not set}"
: "${SQL_PLUGIN:?SQL_PLUGIN is not set (postgres12)}"
SCHEMA_DIR="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
DB="${TEMPORAL_DB:-temporal}"
VISIBILITY_DB="${TEMPORAL_VISIBILITY_DB:-temporal_visibility}"

setup() {
  db="$1"
  versioned="$2"
  echo "[temporal-schema] ${db}: create the database, set up versioning, update to the newest schema in ${versioned}"
  temporal-sql-tool --db "${db}" create-database
  temporal-sql-tool --db "${db}" setup-schema -v 0.0
  temporal-sql-tool --db "${db}" update-schema -d "${versioned}"
}

setup "${DB}" "${SCHEMA_DIR}/temporal/versioned"
setup "${VISIBILITY_DB}" "${SCHEMA_DIR}/visibility/versioned"
echo "[temporal-schema] done"
