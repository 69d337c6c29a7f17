#!/usr/bin/env bash
# PostgreSQL for the instance tests (and README "Production instance"): installs Debian's
# `postgresql` package, starts its cluster on 127.0.0.1:5432 and creates the login role and
# database the shipped instance files name by default. Idempotent: a second run changes nothing.
# Runs as root (CI does); the server itself runs as the `postgres` user.
#
#   DAGSTER_PG_USERNAME / DAGSTER_PG_PASSWORD / DAGSTER_PG_DB   default dagster / dagster / dagster
set -euo pipefail

user=${DAGSTER_PG_USERNAME:-dagster}
password=${DAGSTER_PG_PASSWORD:-dagster}
db=${DAGSTER_PG_DB:-dagster}

# 1. the server, from Debian's packages
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

# 2. one cluster, listening on localhost only
if ! pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    pg_createcluster "$version" main >/dev/null
fi
printf "listen_addresses = '127.0.0.1'\n" >"/etc/postgresql/$version/main/conf.d/diffusion_assets.conf"
pg_ctlcluster "$version" main status >/dev/null 2>&1 || pg_ctlcluster "$version" main start
for _ in $(seq 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
done
pg_isready -h 127.0.0.1 -p 5432

# 3. the role (CREATEDB: each test makes a database of its own) and the database
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -v user="$user" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password') \gexec
SQL
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -v user="$user" -v db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "PostgreSQL $version on 127.0.0.1:5432: role $user, database $db"
