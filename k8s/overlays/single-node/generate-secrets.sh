#!/usr/bin/env bash
# Generates this installation's credentials as env files for the overlay's secretGenerator:
#   secrets/warehouse.env         username=streamflow, password=<random>
#   secrets/airflow-db.env        username=airflow,    password=<random>
#   secrets/airflow-metadata.env  connection=postgresql://airflow:<same>@<warehouse rw service>/airflow
#   secrets/airflow-keys.env      fernet-key, api-secret-key, jwt-secret
#   secrets/airflow-connections.env  streamflow-postgres=postgres://streamflow:<warehouse password>@<rw service>/warehouse
#                                 (AIRFLOW_CONN_STREAMFLOW_POSTGRES: Cosmos' dbt profile)
# Idempotent: existing files are kept (delete one to rotate it). Files are mode 600 and git-ignored.
# Then writes cluster/api-server.env (detect-api-server.sh): the address the NetworkPolicies allow.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets"
PG_RW_HOST="streamflow-warehouse-rw.streamflow-data.svc"
umask 077
mkdir -p "$DIR"

rand() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }   # hex: safe in URIs and env files
write() {  # write FILE only if it does not exist yet; content on stdin
  local file="$DIR/$1"
  if [[ -s "$file" ]]; then cat >/dev/null; return; fi
  cat > "$file.tmp" && mv "$file.tmp" "$file"
  printf '[secrets] generated %s\n' "${file#"$PWD"/}" >&2
}

write warehouse.env <<ENV
username=streamflow
password=$(rand)
ENV

write airflow-db.env <<ENV
username=airflow
password=$(rand)
ENV
# The metadata URI must carry the same password as airflow-db.env: derive it from that file.
airflow_pw="$(sed -n 's/^password=//p' "$DIR/airflow-db.env")"
write airflow-metadata.env <<ENV
connection=postgresql://airflow:${airflow_pw}@${PG_RW_HOST}:5432/airflow?sslmode=require
ENV

# The warehouse as an Airflow connection, with the password of warehouse.env (derived, never typed twice).
warehouse_pw="$(sed -n 's/^password=//p' "$DIR/warehouse.env")"
write airflow-connections.env <<ENV
streamflow-postgres=postgres://streamflow:${warehouse_pw}@${PG_RW_HOST}:5432/warehouse?sslmode=require
ENV

write airflow-keys.env <<ENV
fernet-key=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
api-secret-key=$(rand)
jwt-secret=$(rand)
ENV

"$(dirname "${BASH_SOURCE[0]}")/detect-api-server.sh"
