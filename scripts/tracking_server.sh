#!/usr/bin/env bash
# A team MLflow tracking server: PostgreSQL for runs, registry and users, artifacts on local disk,
# MLflow's basic authentication so that only known users can write. Everything listens on loopback.
#
#   scripts/tracking_server.sh start     install PostgreSQL if missing (as root), start it and MLflow
#   scripts/tracking_server.sh stop      stop both
#   scripts/tracking_server.sh status    say what runs
#   scripts/tracking_server.sh install   only install PostgreSQL if missing (as root; what .ci/run does)
#
# Settings (environment):
#   AMBULANCE_TRACKING_DIR   state folder: database cluster, artifacts, passwords, logs (default mlruns/server)
#   MLFLOW_SERVER_PORT       MLflow's port (default 5000);  AMBULANCE_PG_PORT  PostgreSQL's (default 5433)
#   MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD   a team user to create (optional); clients
#                            use the same two variables to log in
#   AMBULANCE_ADMIN_PASSWORD the admin's password (default: generated once, kept in <dir>/admin_password)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$(mkdir -p "${AMBULANCE_TRACKING_DIR:-$ROOT/mlruns/server}" && cd "${AMBULANCE_TRACKING_DIR:-$ROOT/mlruns/server}" && pwd)"
MLFLOW_PORT="${MLFLOW_SERVER_PORT:-5000}"
PG_PORT="${AMBULANCE_PG_PORT:-5433}"
VENV_BIN="${AMBULANCE_VENV_BIN:-$ROOT/.venv/bin}"
PGDATA="$STATE/pgdata"
SOCKETS="$STATE/sockets"
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"

log() { echo "tracking-server: $*" >&2; }

pg_bin() {
    # Debian keeps the server binaries out of PATH, one folder per major version.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
    return 1
}

ensure_postgres_installed() {
    pg_bin >/dev/null && return
    if [[ "$(id -u)" != 0 ]]; then
        log "PostgreSQL is not installed; run as root or: sudo apt-get install -y postgresql"
        exit 1
    fi
    log "installing PostgreSQL (Debian package postgresql)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# PostgreSQL refuses to run as root: as root, run its commands as the package's postgres user.
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

secret() {  # a password kept in the state folder, generated on first use
    local file="$STATE/$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && "$VENV_BIN/python" -c 'import secrets; print(secrets.token_urlsafe(18))' >"$file")
    fi
    cat "$file"
}

start_postgres() {
    local bin
    bin="$(pg_bin)"
    mkdir -p "$PGDATA" "$SOCKETS"
    chmod 700 "$PGDATA" "$SOCKETS"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$PGDATA" "$SOCKETS"
        if ! runuser -u postgres -- test -x "$PGDATA"; then
            log "the postgres user cannot reach $PGDATA: choose AMBULANCE_TRACKING_DIR in a folder others may enter"
            exit 1
        fi
    fi
    if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
        log "creating the database cluster in $PGDATA"
        # Local socket (folder only its owner can open) trusted; TCP needs a password.
        as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    fi
    if ! as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start \
            -o "-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1" >/dev/null
    fi
    local db_password psql=("$bin/psql" -h "$SOCKETS" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
    db_password="$(secret db_password)"
    if [[ "$(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'")" != 1 ]]; then
        as_pg "${psql[@]}" -c "CREATE ROLE mlflow LOGIN PASSWORD '$db_password'"
    fi
    for db in mlflow mlflow_auth; do
        if [[ "$(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
            as_pg "${psql[@]}" -c "CREATE DATABASE $db OWNER mlflow"
        fi
    done
}

mlflow_pid() { [[ -s "$STATE/mlflow.pid" ]] && kill -0 "$(cat "$STATE/mlflow.pid")" 2>/dev/null && cat "$STATE/mlflow.pid"; }

start_mlflow() {
    if mlflow_pid >/dev/null; then log "MLflow already runs (pid $(mlflow_pid))"; return; fi
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the pinned driver is psycopg2.
    local db="postgresql+psycopg2://mlflow:$(secret db_password)@127.0.0.1:$PG_PORT"
    local admin_password="${AMBULANCE_ADMIN_PASSWORD:-$(secret admin_password)}"
    mkdir -p "$STATE/artifacts"
    # The auth app reads its settings from this file: users live in PostgreSQL too; a known user
    # may read and edit the team's experiments and models, an unknown one gets 401.
    (umask 077 && cat >"$STATE/basic_auth.ini" <<EOF
[mlflow]
default_permission = EDIT
database_uri = $db/mlflow_auth
admin_username = admin
admin_password = $admin_password
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
    )
    log "starting MLflow with basic auth on http://127.0.0.1:$MLFLOW_PORT"
    # The auth app's CSRF protection needs a key that stays the same across restarts and workers.
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(secret flask_secret_key)" \
        MLFLOW_AUTH_CONFIG_PATH="$STATE/basic_auth.ini" PATH="$VENV_BIN:$PATH" setsid \
        "$VENV_BIN/mlflow" server --app-name basic-auth \
        --backend-store-uri "$db/mlflow" \
        --artifacts-destination "$STATE/artifacts" --serve-artifacts \
        --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2 \
        >"$STATE/mlflow.log" 2>&1 </dev/null &
    echo $! >"$STATE/mlflow.pid"
    local url="http://127.0.0.1:$MLFLOW_PORT"
    for _ in $(seq 240); do
        if curl -sf -o /dev/null "$url/health"; then break; fi
        if ! mlflow_pid >/dev/null; then log "MLflow failed to start:"; tail -n 30 "$STATE/mlflow.log" >&2; exit 1; fi
        sleep 0.5
    done
    curl -sf -o /dev/null "$url/health" || { log "no answer from $url:"; tail -n 30 "$STATE/mlflow.log" >&2; exit 1; }
    if [[ -n "${MLFLOW_TRACKING_USERNAME:-}" && -n "${MLFLOW_TRACKING_PASSWORD:-}" \
        && "$MLFLOW_TRACKING_USERNAME" != admin ]]; then
        local code
        code="$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$admin_password" \
            "$url/api/2.0/mlflow/users/get?username=$MLFLOW_TRACKING_USERNAME")"
        if [[ "$code" != 200 ]]; then
            curl -sf -o /dev/null -u "admin:$admin_password" -H 'Content-Type: application/json' \
                -d "{\"username\": \"$MLFLOW_TRACKING_USERNAME\", \"password\": \"$MLFLOW_TRACKING_PASSWORD\"}" \
                "$url/api/2.0/mlflow/users/create"
            log "created user $MLFLOW_TRACKING_USERNAME"
        fi
    fi
    log "ready: export MLFLOW_TRACKING_URI=$url MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<password>"
    log "then run any app with tracking=server; admin password in $STATE/admin_password"
}

stop_all() {
    local pid
    if pid="$(mlflow_pid)"; then
        # setsid made MLflow the leader of its own group: stop it with its workers.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        log "MLflow stopped"
    fi
    rm -f "$STATE/mlflow.pid"
    local bin
    if bin="$(pg_bin)" && [[ -s "$PGDATA/PG_VERSION" ]] && as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
        log "PostgreSQL stopped"
    fi
}

case "${1:-}" in
    install) ensure_postgres_installed ;;
    start) ensure_postgres_installed; start_postgres; start_mlflow ;;
    stop) stop_all ;;
    status)
        if pid="$(mlflow_pid)"; then echo "MLflow: running (pid $pid) on http://127.0.0.1:$MLFLOW_PORT"; else echo "MLflow: stopped"; fi
        if bin="$(pg_bin)" && as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
            echo "PostgreSQL: running on 127.0.0.1:$PG_PORT"
        else
            echo "PostgreSQL: stopped"
        fi
        ;;
    *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
