#!/bin/sh
# First start of the compose PostgreSQL: one role and one database per service (the portal's
# holds its web sessions), each database
# owned by its service's role and closed to the others (database per service), and the same
# for Keycloak (database keycloak, its store of realms, users and sessions).
set -eu

for service in inventory leasing notifications portal keycloak; do
  variable="$(echo "${service}_DB_PASSWORD" | tr '[:lower:]' '[:upper:]')"
  password="$(printenv "$variable" || true)"
  if [ -z "$password" ]; then
    echo "init-databases: $variable is not set" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v service="$service" -v password="$password" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
SQL
  echo "init-databases: database and role $service created"
done
