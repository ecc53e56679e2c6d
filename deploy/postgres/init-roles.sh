#!/usr/bin/env bash
# The PostgreSQL of docker-compose.yml, on its first start: a login role per CMF service, from
# the secrets /run/secrets/<service>_database_url (postgresql://cmf_<service>:<password>@...),
# each allowed to create its own schema in the database and to see nothing of the others'
# (cmf-server migrate then creates each schema as its service's role, so that role owns it).
set -euo pipefail
secrets=${CMF_SECRETS_DIR:-/run/secrets}
for service in metadata lineage artifacts gateway; do
  url=$(head -n 1 "$secrets/${service}_database_url")
  credentials=${url#*://}
  credentials=${credentials%%@*}
  role=${credentials%%:*}
  password=${credentials#*:}
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$role" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', current_database(), :'role') \gexec
SQL
done
# No role but the owner may create objects in public.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c 'REVOKE CREATE ON SCHEMA public FROM PUBLIC'
