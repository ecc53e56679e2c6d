#!/usr/bin/env bash
# The Secret cmf-secrets of the dev overlay, with random values (the dev servers of deps.yaml
# take theirs from it too); never written to disk. Needs kubectl pointed at the dev cluster.
#   deploy/k8s/overlays/dev/make-secret.sh [namespace]
set -euo pipefail
namespace=${1:-cmf-dev}
random() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-32; }
pg=$(random)
neo4j=$(random)
s3_key="cmf-$(random | cut -c1-16)"
s3_secret=$(random)
url="postgresql://cmf:${pg}@postgres:5432/cmf"
kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
kubectl -n "$namespace" create secret generic cmf-secrets \
  --from-literal=postgres-password="$pg" \
  --from-literal=metadata-database-url="$url" \
  --from-literal=lineage-database-url="$url" \
  --from-literal=artifacts-database-url="$url" \
  --from-literal=gateway-database-url="$url" \
  --from-literal=neo4j-password="$neo4j" \
  --from-literal=neo4j-auth="neo4j/$neo4j" \
  --from-literal=s3-access-key-id="$s3_key" \
  --from-literal=s3-secret-access-key="$s3_secret" \
  --from-literal=s3-config="{\"identities\": [{\"name\": \"cmf\", \"credentials\": [{\"accessKey\": \"$s3_key\", \"secretKey\": \"$s3_secret\"}], \"actions\": [\"Admin\", \"Read\", \"List\", \"Tagging\", \"Write\"]}]}" \
  --from-literal=principal-secret="$(random)$(random)" \
  --from-literal=metahub-secret-key="$(random)$(random)"
