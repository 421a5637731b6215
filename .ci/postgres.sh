#!/usr/bin/env bash
# A PostgreSQL server on 127.0.0.1 with a role and database `fdawatch_test`, for the tests that
# run the history against PostgreSQL. Prints the SQLAlchemy URL on stdout (everything else goes
# to stderr), so callers can do:
#
#   export FDAWATCH_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"
#
# Idempotent: installs Debian's `postgresql` with apt only when it is missing, creates the
# cluster, role and database only when they do not exist, and starts the cluster only when it is
# down. Must run as root (CI does); as another user it only prints what to do.
set -euo pipefail

ROLE=fdawatch_test
DATABASE=fdawatch_test
PASSWORD=fdawatch_test
CLUSTER=main

log() { echo "postgres.sh: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "run me as root (I install and start PostgreSQL), or set FDAWATCH_TEST_POSTGRES_URL"
  log "to an existing database you own, e.g. postgresql+psycopg://user:pw@127.0.0.1:5432/db"
  exit 1
fi

# The server binary, not just the client (a machine may ship psql alone).
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing postgresql with apt"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h "$VERSION" "$CLUSTER" >/dev/null 2>&1 \
  || [ -z "$(pg_lsclusters -h "$VERSION" "$CLUSTER" 2>/dev/null)" ]; then
  log "creating cluster $VERSION/$CLUSTER"
  pg_createcluster "$VERSION" "$CLUSTER" >&2
fi

# Columns of `pg_lsclusters -h`: version cluster port status owner datadir logfile.
read -r _ _ PORT STATUS _ < <(pg_lsclusters -h "$VERSION" "$CLUSTER")
if [ "$STATUS" != "online" ]; then
  log "starting cluster $VERSION/$CLUSTER on port $PORT"
  pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

psql_admin() { runuser -u postgres -- psql --port "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"; }

for _ in $(seq 1 30); do  # the server may need a moment before it accepts connections
  psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 1
done

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  log "creating role $ROLE"
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD' CREATEDB" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
  log "creating database $DATABASE"
  psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE" >&2
fi

echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
