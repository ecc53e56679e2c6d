#!/usr/bin/env bash
# The secrets docker-compose.yml reads, as files in deploy/secrets/ (never in git: .gitignore):
# random passwords and keys, made once; an existing file is kept, so running it again changes
# nothing. `deploy/compose-secrets.sh DIR` writes them elsewhere.
set -euo pipefail
dir=${1:-"$(dirname "$0")/secrets"}
# The folder is the owner's alone; the files in it are readable by all, because compose mounts
# them as they are and the CMF containers run as a user of their own (uid 10001).
mkdir -p "$dir"
chmod 700 "$dir"
umask 022

random() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-32; }

# write NAME VALUE: the file NAME holds VALUE unless it exists already.
write() {
  if [[ ! -s "$dir/$1" ]]; then
    printf '%s\n' "$2" > "$dir/$1"
    echo "wrote $dir/$1"
  fi
}
# read NAME: the value of the file NAME.
value() { head -n 1 "$dir/$1"; }

write postgres_password "$(random)"
# A role of its own per service (deploy/postgres/init-roles.sh makes them from these URLs).
for service in metadata lineage artifacts gateway; do
  write "${service}_database_url" "postgresql://cmf_${service}:$(random)@postgres:5432/cmf"
done
write neo4j_password "$(random)"
write neo4j_auth "neo4j/$(value neo4j_password)"
write s3_access_key_id "cmf-$(random | cut -c1-16)"
write s3_secret_access_key "$(random)"
write s3_config "{\"identities\": [{\"name\": \"cmf\", \"credentials\": [{\"accessKey\": \"$(value s3_access_key_id)\", \"secretKey\": \"$(value s3_secret_access_key)\"}], \"actions\": [\"Admin\", \"Read\", \"List\", \"Tagging\", \"Write\"]}]}"
write principal_secret "$(random)$(random)"
write metahub_secret_key "$(random)$(random)"
write grafana_admin_password "$(random)"
