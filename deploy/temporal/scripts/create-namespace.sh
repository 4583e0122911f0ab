#!/bin/sh
# The namespace pinflow runs in, for docker-compose.temporal.yml (service
# temporal-namespace, image temporalio/admin-tools). Waits for the server,
# then creates the namespace with its retention: how long Temporal keeps a
# closed run's history (and so how long it can be read, rerun or replayed).
#
# 90 days by default: the longest of pinflow's default projection retention
# policies (failed runs; completed, cancelled and terminated runs are kept
# 30 days), so a run the projection still lists is still in Temporal (README,
# "Data lifecycle").
#
# Idempotent: an existing namespace is left as it is, its retention included.
# To change the retention of an existing namespace:
#   temporal operator namespace update --namespace default --retention 90d
#
# The temporal CLI reads TEMPORAL_ADDRESS itself, and for TLS
# TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY (or --tls flags).
set -eu

NAMESPACE="${PINFLOW_NAMESPACE:-default}"
RETENTION="${PINFLOW_NAMESPACE_RETENTION:-90d}"
: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is not set}"

attempt=1
until temporal operator cluster health >/dev/null 2>&1; do
  if [ "${attempt}" -ge 60 ]; then
    echo "[temporal-namespace] the server at ${TEMPORAL_ADDRESS} did not become healthy" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

if out=$(temporal operator namespace create --namespace "${NAMESPACE}" --retention "${RETENTION}" 2>&1); then
  echo "[temporal-namespace] created namespace ${NAMESPACE}, retention ${RETENTION}"
elif printf '%s\n' "${out}" | grep -qi 'already exists'; then
  echo "[temporal-namespace] namespace ${NAMESPACE} exists; left as it is:"
  temporal operator namespace describe --namespace "${NAMESPACE}" | grep -i 'retention' || true
else
  printf '%s\n' "${out}" >&2
  exit 1
fi
